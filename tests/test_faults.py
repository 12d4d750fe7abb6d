"""Faults leave nothing stuck: a run stopped by SIGTERM is stored as interrupted (as with
Ctrl-C), and one whose process was killed outright (kill -9) is marked interrupted by the next
command that opens the store — never `running` forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.results.store import Store
from tests.conftest import TINY_FLAGS


def start_run(tmp_path: Path) -> subprocess.Popen:
    """A long PPO run in a child process, on the tiny benchmark (cached by the fixtures)."""
    argv = [sys.executable, "-m", "harness.cli", "run", "--algo", "ppo", "--budget", "1000000", "--store", str(tmp_path / "store.sqlite"),
            "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def wait_until_running(tmp_path: Path, child: subprocess.Popen, timeout: float = 240) -> str:
    """The run id once the child has claimed its run and spent a first update."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        if (tmp_path / "store.sqlite").exists():
            with Store(tmp_path / "store.sqlite") as store:
                running = store.list_runs(status="running")
            if running and (Path(running[0].run_dir) / "log.txt").stat().st_size > 0:
                return running[0].run_id
        time.sleep(0.5)
    child.kill()
    pytest.fail("the child never started training")


def test_sigterm_stores_the_run_as_interrupted(tmp_path, tiny_proxy):
    child = start_run(tmp_path)
    run_id = wait_until_running(tmp_path, child)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err
    with Store(tmp_path / "store.sqlite") as store:
        run = store.get_run(run_id)
        curve = store.curves(run_id)
    assert run.status == "interrupted" and run.error == "interrupted by SIGTERM"
    assert len(curve) > 0  # what was logged before the signal is kept


def test_a_killed_runs_row_is_marked_interrupted_by_the_next_command(tmp_path, tiny_proxy, capsys):
    child = start_run(tmp_path)
    run_id = wait_until_running(tmp_path, child)
    child.kill()  # SIGKILL: no handler runs, the row stays `running`
    child.communicate(timeout=60)
    with Store(tmp_path / "store.sqlite") as store:
        assert store.get_run(run_id).status == "running"
    assert main(["runs", "--store", str(tmp_path / "store.sqlite")]) == 0
    captured = capsys.readouterr()
    assert f"run {run_id}: its process is gone; marked interrupted" in captured.err
    assert "interrupted" in captured.out
    with Store(tmp_path / "store.sqlite") as store:
        run = store.get_run(run_id)
    assert run.status == "interrupted" and f"pid {child.pid}" in run.error


# -------------------------------------------------------------------------
# the stage cache: garbage never wedges it
# -------------------------------------------------------------------------


def _damaged_cache(root: Path) -> tuple[Path, Path, Path]:
    """A cache with a stage whose stage.json is garbage, an abandoned build (its pid is gone) and
    a build in progress (this process)."""
    damaged = root / "sft" / "abc123"
    damaged.mkdir(parents=True)
    (damaged / "stage.json").write_bytes(b"\xff{not json")
    (damaged / "model.safetensors").write_bytes(b"truncated")
    abandoned = root / "sft" / ".def456-999999999-x1"  # no such pid: killed mid-build
    live = root / "sft" / f".def456-{os.getpid()}-x2"
    for folder in (abandoned, live):
        folder.mkdir()
        (folder / "part").write_text("half")
    return damaged, abandoned, live


def test_cache_ls_and_clear_survive_garbage_and_remove_abandoned_builds(tmp_path, capsys):
    damaged, abandoned, live = _damaged_cache(tmp_path / "cache")
    assert main(["cache", "ls", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "abc123" in out and "damaged" in out and ".def456-999999999-x1  abandoned build" in out
    assert f".def456-{os.getpid()}-x2" not in out  # a build in progress is nobody's garbage
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "removed 2 folder(s)" in capsys.readouterr().out
    assert not damaged.exists() and not abandoned.exists() and live.exists()


def test_a_damaged_stage_is_rebuilt_with_a_warning(tmp_path):
    from harness.pipeline.cache import StageCache, stage_info

    damaged, _, _ = _damaged_cache(tmp_path / "cache")
    built = []

    def build(folder: Path) -> None:
        built.append(folder)
        (folder / "model.safetensors").write_text("whole")

    cache = StageCache(tmp_path / "cache")
    with pytest.warns(UserWarning, match=r"abc123 is damaged .*rebuilding it"):
        folder = cache.get_or_build("sft", "abc123", build)
    assert folder == damaged and len(built) == 1 and (folder / "model.safetensors").read_text() == "whole"
    assert stage_info(folder)["key"] == "abc123"
    assert cache.get_or_build("sft", "abc123", build) == folder and len(built) == 1  # whole now: reused


# -------------------------------------------------------------------------
# user mistakes and the environment: one line, no traceback
# -------------------------------------------------------------------------


def test_a_reader_that_goes_away_gets_no_traceback():
    """`harness list | head -1`: the pipe closes before the listing is written."""
    child = subprocess.Popen([sys.executable, "-m", "harness.cli", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_metrics_measured_before_a_late_failure_are_kept_with_it(tmp_path, tiny_proxy, monkeypatch, capsys):
    """Saving the policy fails after evaluation: the run is failed, with its reason and the
    metrics it had measured; leaderboards (finished runs only) do not show it."""
    import harness.api as api
    from tests.test_runner import run, runs

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api.Policy, "save", full_disk)
    assert run(tmp_path, "--algo", "sft") == 1
    (failed,) = runs(tmp_path)
    assert failed.status == "failed" and "No space left on device" in failed.error
    with Store(tmp_path / "store.sqlite") as store:
        kept = store.metrics(failed.run_id)
        assert store.metrics_frame().empty
    assert kept["eval/kl"] == 0 and -1 < kept["eval/gold"] < 1
