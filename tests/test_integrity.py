"""Integrity (#27): the equal budget is enforced, not trusted; a plugin that exits is a failed run;
the store's disk filling up or its files turning unwritable end a run with one clear line.
(The Ray executor's half of the first two is in tests/test_ray.py, on its cluster.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import Store
from tests.conftest import TINY_FLAGS

#: an algorithm that samples around ``ctx.sample``, through every public sampler of the toolkit,
#: and scores around ``ctx.score`` with the proxy's own network
SNEAKY = '''
from dataclasses import dataclass

import harness.lm as lm
from harness.api import Policy, PolicyOptimizer, help_field, hookimpl


@dataclass
class SneakyConfig:
    around: int = help_field("responses drawn through harness.lm.sample_batch, around ctx.sample", 16)


class Sneaky(PolicyOptimizer):
    name = "sneaky"
    description = "draws samples and scores around the context"
    Config = SneakyConfig

    def train(self, ctx):
        prompts = ctx.train_prompts[:8]
        rollout = ctx.sample(prompts)  # 8, charged by the context
        lm.sample_batch(ctx.model, ctx.tokenizer, ctx.train_prompts[: self.config.around], ctx.generation, ctx.generator)
        lm.sample_rollout(ctx.model, ctx.tokenizer, prompts, ctx.generation, ctx.generator)  # 8
        Policy(ctx.model, ctx.tokenizer).sample(prompts, ctx.generation, ctx.generator)  # 8
        ctx.score(rollout)  # 8 RM queries, counted by the context
        lm.classifier_scores(ctx.reward_model.model, rollout)  # 8 more, on the proxy's own network
        return Policy(ctx.model, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(Sneaky)
'''

#: an algorithm whose train() exits the process (exit code 0)
EXITS = '''
from harness.api import PolicyOptimizer, hookimpl


class Exits(PolicyOptimizer):
    name = "exits"
    description = "calls sys.exit(0) in train"

    def train(self, ctx):
        import sys

        sys.exit(0)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(Exits)
'''

#: an algorithm that turns the store's files unwritable while it trains (chattr +i), as a remount would
FREEZES_THE_STORE = '''
import os
import subprocess

from harness.api import Policy, PolicyOptimizer, hookimpl


class Freezes(PolicyOptimizer):
    name = "freezes"
    description = "makes the store's WAL index immutable, then returns pi_sft"

    def train(self, ctx):
        subprocess.run(["chattr", "+i", os.environ["FROZEN_FILE"]], check=True)
        return Policy(ctx.model, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(Freezes)
'''


def _plugin(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def _run(tmp_path: Path, plugin: Path, algo: str, *extra: str, budget: int = 64) -> int:
    return main(["run", "--plugin", str(plugin), "--algo", algo, "--budget", str(budget), "--store", str(tmp_path / "s.sqlite"),
                 "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS, *extra])  # fmt: skip


def _only_run(tmp_path: Path):
    with Store(tmp_path / "s.sqlite") as store:
        (run,) = store.list_runs()
    return run


# -------------------------------------------------------------------------
# the budget: every sample through the toolkit is charged, every proxy score counted
# -------------------------------------------------------------------------


def test_a_plugin_sampling_around_ctx_sample_is_charged_what_it_drew(tmp_path, tiny_proxy):
    assert _run(tmp_path, _plugin(tmp_path, "sneaky", SNEAKY), "sneaky", "--around", "16") == 0
    run = _only_run(tmp_path)
    assert run.status == "finished", run.error
    # 8 through ctx.sample + 16 through sample_batch + 8 through sample_rollout + 8 through Policy.sample
    assert run.budget_used["episodes_used"] == 40
    assert run.budget_used["rm_queries"] == 16  # ctx.score's 8 and the proxy network's 8


def test_a_plugin_drawing_past_its_budget_fails_naming_where(tmp_path, tiny_proxy, capsys):
    plugin = _plugin(tmp_path, "sneaky", SNEAKY)
    assert _run(tmp_path, plugin, "sneaky", "--around", "100") == 1  # 8 + 100 > 64
    run = _only_run(tmp_path)
    assert run.status == "failed"
    assert "BudgetExceeded" in run.error and "not through ctx.sample" in run.error and f"{plugin}:" in run.error, run.error
    assert "asked for 100 episodes" in run.error and "56 left of 64" in run.error
    assert run.budget_used["episodes_used"] == 8  # refused before it sampled: the row holds what was drawn


def test_evaluation_is_not_charged_to_the_budget(tmp_path, tiny_proxy):
    """The meter covers training only: the runner's own evaluation samples (many) are not the optimizer's."""
    assert main(["run", "--algo", "sft", "--budget", "64", "--store", str(tmp_path / "s.sqlite"), "--results-dir",
                 str(tmp_path / "results"), "--quiet", *TINY_FLAGS]) == 0  # fmt: skip
    run = _only_run(tmp_path)
    assert run.status == "finished" and run.budget_used["episodes_used"] == 0 and run.budget_used["rm_queries"] == 0


# -------------------------------------------------------------------------
# a plugin that exits is a failed run
# -------------------------------------------------------------------------


def test_a_plugin_that_exits_is_a_failed_run_and_the_command_fails(tmp_path, tiny_proxy, capsys):
    plugin = _plugin(tmp_path, "exits", EXITS)
    assert _run(tmp_path, plugin, "exits") == 1
    run = _only_run(tmp_path)
    assert run.status == "failed"
    assert run.error.startswith("SystemExit(0) escaped algorithm 'exits' of plugin ") and str(plugin) in run.error, run.error
    assert "\n" not in run.error
    assert "failed" in capsys.readouterr().out


# -------------------------------------------------------------------------
# the store's disk: full, or its files turned unwritable mid-run
# -------------------------------------------------------------------------


def test_a_full_disk_under_the_store_is_one_line_and_loses_nothing(tmp_path, small_tmpfs, tiny_proxy):
    small_mount = small_tmpfs
    store = small_mount / "store.sqlite"
    with Store(store):  # the schema, then nearly all the space left taken: the run's samples will not fit
        pass
    free = os.statvfs(small_mount).f_bavail * os.statvfs(small_mount).f_frsize
    (small_mount / "filler").write_bytes(b"\0" * max(0, free - 48 * 1024))
    argv = [sys.executable, "-m", "harness.cli", "run", "--algo", "sft", "--store", str(store), "--results-dir",
            str(tmp_path / "results"), "--quiet", *TINY_FLAGS]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={**os.environ, "HARNESS_DEBUG": ""})
    err = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(err) == 1, done.stderr
    assert f"the disk under the store {store} is full" in err[0] and "nothing stored was lost" in err[0], err
    import sqlite3
    from contextlib import closing

    (small_mount / "filler").unlink()  # the space freed, as the message says: SQLite's checkpoint at close needs it
    with closing(sqlite3.connect(store)) as db:  # closed, so that the mount can go
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone() == (0,)


@pytest.fixture
def chattr(tmp_path):
    """Files made immutable in a test are made mutable again after it (root; skipped without chattr)."""
    frozen: list[Path] = []
    probe = tmp_path / "probe"
    probe.touch()
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not available here")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    yield frozen
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_store_files_turned_unwritable_mid_run_end_it_with_one_line_not_sigbus(tmp_path, tiny_proxy, chattr):
    store = tmp_path / "s.sqlite"
    shm = Path(f"{store}-shm")
    chattr.append(shm)
    plugin = _plugin(tmp_path, "freezes", FREEZES_THE_STORE)
    argv = [sys.executable, "-m", "harness.cli", "run", "--plugin", str(plugin), "--algo", "freezes", "--budget", "64",
            "--store", str(store), "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS]  # fmt: skip
    env = {**os.environ, "HARNESS_DEBUG": "", "FROZEN_FILE": str(shm)}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.returncode, done.stderr)  # SIGBUS would be -7
    assert len(err) == 1 and f"the store {store} can no longer be written: {shm.name}" in err[0], err
    assert "nothing stored was lost" in err[0]
