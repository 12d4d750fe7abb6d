"""The layout's promises (README: "The layout"): the layers contract holds, no module imports
upward or in a circle, and no module of ``harness/`` grows past ~400 lines unaccounted for.

The contracts live in pyproject.toml (``[tool.importlinter]``) and are checked by import-linter's
``lint-imports``, run here on the real tree, and once on a copy with an upward import planted,
which it must refuse (so a contract that stopped checking anything would fail this test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: modules allowed past the size limit, each with the reason it must stay one piece
LARGE_MODULES: dict[str, str] = {}
MAX_LINES = 400


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the tree at ``root`` (its own copy of the packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "_packages")])}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_the_layers_and_no_circles_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken" in result.stdout, result.stdout[-2000:]


def _copy_tree(tmp_path: Path) -> Path:
    """The packages as import-linter sees them: harness/, and plugins/ and benchmarks/ under
    their installed names."""
    root = tmp_path / "tree"
    shutil.copytree(ROOT / "harness", root / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", root / "_packages" / "harness_plugins", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks", root / "_packages" / "harness_benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_an_upward_import_breaks_the_build(tmp_path):
    root = _copy_tree(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy itself is clean
    # the contract importing the runner, inside a function (a lazy import counts)
    policy = root / "harness" / "api" / "policy.py"
    policy.write_text(policy.read_text() + "\n\ndef _upward():\n    from harness.running import runner  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "harness.api.policy -> harness.running.runner" in result.stdout, result.stdout[-3000:]


def test_a_circle_inside_a_layer_breaks_the_build(tmp_path):
    root = _copy_tree(tmp_path)
    sampling = root / "harness" / "lm" / "sampling.py"
    sampling.write_text(sampling.read_text() + "\n\ndef _circle():\n    from harness.lm import fast_gpt2  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "No import circles" in result.stdout, result.stdout[-3000:]


def test_a_plugin_importing_an_internal_module_breaks_the_build(tmp_path):
    root = _copy_tree(tmp_path)
    plugin = root / "_packages" / "harness_plugins" / "baselines.py"
    plugin.write_text(plugin.read_text() + "\n\ndef _internal():\n    from harness.store import Store  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "harness_plugins.baselines -> harness.store" in result.stdout, result.stdout[-3000:]


def test_no_module_of_the_harness_is_over_the_size_limit():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in sorted((ROOT / "harness").rglob("*.py"))}
    over = {path: n for path, n in sizes.items() if n > MAX_LINES and path not in LARGE_MODULES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job, or list them in LARGE_MODULES with the reason): {over}"
    assert not set(LARGE_MODULES) - set(sizes), "LARGE_MODULES names a module that is gone"
