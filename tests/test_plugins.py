"""The plugin system, exercised the way third parties use it."""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

import pytest

from harness import hookspecs
from harness.cli import main
from harness.plugin_manager import load_plugins
from harness.registry import RegistrationError
from tests.conftest import TINY_FLAGS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: what a plugin or benchmark may import from the core: the contract, the LM toolkit, the dataset adapters
CONTRACT = {"harness", "harness.api", "harness.lm", "harness.data"}


def readme_example() -> str:
    text = README.read_text()
    block = re.search(r"<!-- example-plugin:start -->\s*```python\n(.*?)```\s*<!-- example-plugin:end -->", text, re.S)
    assert block, "README lost its example plugin"
    return block.group(1)


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_builtins_come_through_the_entry_point_group():
    host = load_plugins()
    assert not host.errors
    assert {"sft", "best-of-n"} <= set(host.algorithms.names())
    assert host.algorithms.get("sft").plugin == "rlhf-harness:baselines"
    assert {"pairwise", "ranking", "gold"} <= set(host.reward_models.names())
    assert host.reward_models.get("gold").plugin == "rlhf-harness:gold_oracle"  # the harness's own, not a plugin's
    assert {"ppo", "ppo-nokl", "rm-ranking", "rrhf"} <= set(host.algorithms.names())
    # the core's own commands come through the same hook, from the entry point core_commands (datasette's pattern)
    core = {c.name: c.plugin for c in host.commands.entries() if host.commands.is_core(c.name)}
    assert {"run", "list", "leaderboard", "sweep", "data", "cache"} <= set(core)
    assert set(core.values()) == {"rlhf-harness:core_commands"}
    assert [(c.name, c.plugin) for c in host.commands.entries() if not host.commands.is_core(c.name)] == [("bench ppo", "rlhf-harness:ppo")]
    assert "sentiment" in host.benchmarks.names()
    assert {"gold", "proxy", "kl", "win-rate", "diversity", "length"} <= set(host.evaluators.names())


def test_every_hook_is_documented():
    for name in dir(hookspecs):
        if name.startswith("harness_"):
            doc = getattr(hookspecs, name).__doc__ or ""
            assert "Called" in doc or "called" in doc, f"{name} does not say when it is called"
            assert ":returns:" in doc, f"{name} does not say what it returns"


def test_broken_plugin_is_reported_and_others_still_load(tmp_path):
    bad = write(tmp_path / "broken.py", "import no_such_module_anywhere\n")
    host = load_plugins([str(bad)])
    assert [e.plugin for e in host.errors] == [str(bad)]
    assert "no_such_module_anywhere" in host.errors[0].error
    assert "sft" in host.algorithms


def test_misspelt_hook_is_caught_at_start_up(tmp_path):
    typo = write(tmp_path / "typo.py", """
        def harness_register_algorithm(registry):  # missing "s"
            pass
    """)
    host = load_plugins([str(typo)])
    assert len(host.errors) == 1 and "harness_register_algorithm" in host.errors[0].error
    assert host.pm.get_plugin(str(typo)) is None


def test_name_registered_twice_names_both_plugins(tmp_path):
    clash = write(tmp_path / "clash.py", """
        from harness.api import PolicyOptimizer, hookimpl

        class Other(PolicyOptimizer):
            name = "sft"
            description = "a clash"

        @hookimpl
        def harness_register_algorithms(registry):
            registry.add(Other)
    """)
    with pytest.raises(RegistrationError, match=r"'sft' is registered twice: by plugin 'rlhf-harness:baselines' and by plugin '.*clash.py'"):
        load_plugins([str(clash)])


def test_wrong_base_class_is_rejected(tmp_path):
    bad = write(tmp_path / "bad.py", """
        from harness import hookimpl

        class NotAnAlgorithm:
            name = "x"

        @hookimpl
        def harness_register_algorithms(registry):
            registry.add(NotAnAlgorithm)
    """)
    with pytest.raises(RegistrationError, match="not a subclass"):
        load_plugins([str(bad)])


def _install_as_distribution(site: Path, module_source: str) -> None:
    """What `pip install` leaves behind: the module plus a .dist-info with entry_points.txt."""
    (site / "reinforce_plugin.py").write_text(module_source)
    info = site / "reinforce_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reinforce-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness]\nreinforce = reinforce_plugin\n")


def test_readme_plugin_installed_by_entry_point_lists_and_runs(tmp_path, monkeypatch, capsys, tiny_prepared, tiny_proxy):
    site = tmp_path / "site"
    site.mkdir()
    _install_as_distribution(site, readme_example())
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"reinforce\s+REINFORCE with a batch-mean baseline.*\[reinforce-plugin:reinforce\]", out)

    store = tmp_path / "store.sqlite"
    args = ["run", "--algo", "reinforce", "--budget", "64", "--batch-size", "32", "--store", str(store),
            "--results-dir", str(tmp_path / "results"), "--quiet"] + TINY_FLAGS
    assert main(args) == 0
    from harness.store import Store

    with Store(store) as s:
        (run,) = s.list_runs()
        assert run.status == "finished" and run.algorithm == "reinforce"
        assert run.budget_used["episodes_used"] == 64
        assert len(s.curves(run.run_id)) == 2  # two updates of 32 episodes
        assert (Path(run.run_dir) / "policy.safetensors").exists()
    sys.modules.pop("reinforce_plugin", None)


def test_readme_plugin_as_a_file(tmp_path, capsys, tiny_prepared, tiny_proxy):
    plugin = write(tmp_path / "reinforce.py", readme_example())
    assert main(["run", "--plugin", str(plugin), "--algo", "reinforce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--kl-coef FLOAT" in out and "(default: 0.05)" in out
    args = ["run", "--plugin", str(plugin), "--algo", "reinforce", "--budget", "32", "--kl-coef", "0.1",
            "--store", str(tmp_path / "s.sqlite"), "--results-dir", str(tmp_path / "r"), "--quiet"]
    assert main(args + TINY_FLAGS) == 0
    assert "finished" in capsys.readouterr().out


# -------------------------------------------------------------------------
# the contract: what plugins import, what the core imports
# -------------------------------------------------------------------------


def _imports(source: str) -> set[str]:
    """Every module a source imports: ``import a.b`` → a.b; ``from a import b`` → a.b when b is a
    module, else a."""
    import importlib.util

    def is_module(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if is_module(f"{node.module}.{alias.name}") else node.module)
    return found


def _core_imports_outside_the_contract(source: str) -> set[str]:
    return {m for m in _imports(source) if (m == "harness" or m.startswith("harness.")) and m not in CONTRACT}


def test_plugins_and_benchmarks_import_only_the_contract():
    offenders = {}
    for path in sorted((ROOT / "plugins").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py")):
        bad = _core_imports_outside_the_contract(path.read_text())
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"imports outside harness.api / harness.lm / harness.data: {offenders}"
    assert not _core_imports_outside_the_contract(readme_example())
    # the check itself catches an internal import, in both spellings
    assert _core_imports_outside_the_contract("from harness.pipeline.judge import Judge") == {"harness.pipeline.judge"}
    assert _core_imports_outside_the_contract("import harness.running.runner") == {"harness.running.runner"}
    assert _core_imports_outside_the_contract("from harness import config") == {"harness.config"}
    assert _core_imports_outside_the_contract("from harness.lm.fast_gpt2 import gpt2_sample") == {"harness.lm.fast_gpt2"}
    assert _core_imports_outside_the_contract("from harness.data.oasst import x") == {"harness.data.oasst"}
    assert not _core_imports_outside_the_contract("from harness.lm import sample_batch\nfrom harness import api, hookimpl")


def test_the_core_imports_no_plugin():
    offenders = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        bad = {m for m in _imports(path.read_text()) if m.split(".")[0] in ("harness_plugins", "harness_benchmarks")}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders


def test_a_plugin_adds_a_command(tmp_path, capsys):
    plugin = write(tmp_path / "hello.py", """
        from harness.api import hookimpl

        def hello(argv):
            print("hello", *argv)
            return 3

        @hookimpl
        def harness_register_commands(commands):
            commands.add("hello", hello, "says hello")
            commands.add("bench hello", hello, "a speed benchmark")
    """)
    assert main(["hello", "world", "--plugin", str(plugin)]) == 3
    assert capsys.readouterr().out == "hello world\n"  # the CLI's --plugin is not the command's
    assert main(["bench", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert "harness bench hello" in out and "harness bench ppo" in out
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert "harness hello" in capsys.readouterr().out
    clash = write(tmp_path / "clash_cmd.py", """
        from harness.api import hookimpl

        @hookimpl
        def harness_register_commands(commands):
            commands.add("run", print, "shadows the core")
    """)
    assert main(["hello", "--plugin", str(clash)]) == 2
    assert "'run' is a core command" in capsys.readouterr().err
    assert main(["helo"]) == 2
    assert "unknown command 'helo'" in capsys.readouterr().err


def test_bench_ppo_runs_from_the_ppo_plugin(capsys):
    import json

    assert main(["bench", "ppo", "--total-episodes", "64", "--batch-size", "32", "--n-layer", "1", "--n-embd", "32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 64 and result["ppo_updates"] == 2 and result["episodes_per_second"] > 0
