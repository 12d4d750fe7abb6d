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
