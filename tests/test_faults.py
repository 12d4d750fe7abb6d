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
from harness.store import Store
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


def _corrupt(folder: Path, how: str) -> str:
    """Damage the largest file of a stage folder ``how``: truncated, garbage or deleted."""
    victim = max((p for p in folder.rglob("*") if p.is_file() and p.name != "stage.json"), key=lambda p: p.stat().st_size)
    if how == "truncate":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif how == "garbage":
        size = victim.stat().st_size  # same size: only the checksum can tell
        victim.write_bytes((b"\x00garbage{" * size)[:size])
    else:
        victim.unlink()
    return str(victim.relative_to(folder))


def test_every_corrupted_stage_is_rebuilt_with_a_one_line_warning_naming_it(tmp_path):
    """Each stage kind damaged a different way (truncated weights, garbage JSON, a deleted file,
    a stage.json from an older harness): verified before loading, rebuilt bit-identically."""
    import json
    import warnings

    import torch
    from harness_benchmarks.sentiment import Sentiment
    from harness_plugins.reward_models import Pairwise, PairwiseConfig

    from harness.pipeline.cache import StageCache, verify
    from harness.pipeline.stages import prepare
    from harness.running.reward_fit import fit_proxy
    from tests.conftest import tiny_sentiment_config

    def build() -> None:
        prepared = prepare(Sentiment(tiny_sentiment_config()), StageCache(tmp_path / "cache"), quiet=True)
        fit_proxy(Pairwise(PairwiseConfig(epochs=2)), prepared, torch.device("cpu"))

    build()
    cache = StageCache(tmp_path / "cache")
    entries = {e["stage"]: Path(e["path"]) for e in cache.entries()}
    assert sorted(entries) == ["base_lm", "data", "judge", "preferences", "reward_model", "sft"]
    before = {stage: json.loads((folder / "stage.json").read_text())["files"] for stage, folder in entries.items()}
    damage = {"base_lm": "truncate", "sft": "garbage", "judge": "delete", "reward_model": "truncate", "preferences": "garbage"}
    for stage, how in damage.items():
        _corrupt(entries[stage], how)
        assert verify(entries[stage]) is not None
    legacy = json.loads((entries["data"] / "stage.json").read_text())
    del legacy["files"]  # as an older harness wrote it: nothing to verify against
    (entries["data"] / "stage.json").write_text(json.dumps(legacy))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    messages = [str(w.message) for w in caught if "cache:" in str(w.message)]
    for stage, folder in entries.items():
        assert any(f"{folder} is damaged" in m and "rebuilding it" in m and "\n" not in m for m in messages), (stage, messages)
        assert verify(folder) is None
    after = {stage: json.loads((folder / "stage.json").read_text())["files"] for stage, folder in entries.items()}
    assert after == before  # deterministic rebuilds: the same bytes as before the damage


# -------------------------------------------------------------------------
# user mistakes and the environment: one line, no traceback
# -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["list", "--help"])
def test_a_reader_that_goes_away_gets_no_traceback(command):
    """`harness list | head -1`: the pipe closes before the listing is written."""
    child = subprocess.Popen([sys.executable, "-m", "harness.cli", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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


def test_debug_shows_the_traceback_that_the_one_line_error_hides(tmp_path, monkeypatch, capsys):
    """A bug surfaces as one line and exit 1; --debug (or HARNESS_DEBUG=1) raises it whole."""
    plugin = tmp_path / "buggy.py"
    plugin.write_text("from harness import hookimpl\n\n@hookimpl\ndef harness_register_commands(commands):\n"
                      "    commands.add('buggy', lambda argv: 1 / 0, 'divides by zero')\n")  # fmt: skip
    monkeypatch.delenv("HARNESS_DEBUG", raising=False)
    assert main(["buggy", "--plugin", str(plugin)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError: division by zero (rerun with --debug" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["buggy", "--plugin", str(plugin), "--debug"])
    monkeypatch.setenv("HARNESS_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["buggy", "--plugin", str(plugin)])


def test_an_installed_plugin_whose_registration_raises_is_dropped_with_a_warning(tmp_path, monkeypatch, capsys):
    """Not named on the command line (an environment plugin): a warning, and the others still load —
    none of what it registered before raising stays behind."""
    plugin = tmp_path / "half.py"
    plugin.write_text("from harness import hookimpl\nfrom harness_plugins.baselines import SFT\n\n"
                      "class Half(SFT):\n    name = 'zz-half'\n\n@hookimpl\ndef harness_register_algorithms(registry):\n"
                      "    registry.add(Half)\n    raise RuntimeError('boom')\n")  # fmt: skip
    monkeypatch.setenv("HARNESS_PLUGINS", str(plugin))
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "harness_register_algorithms raised RuntimeError: boom" in captured.err
    assert "ppo" in captured.out and "zz-half" not in captured.out


def test_a_running_run_beats_and_a_silent_one_on_another_host_is_interrupted(tmp_path, monkeypatch):
    """The heartbeat thread renews heartbeat_at while the run trains; a run of another host whose
    heartbeat went quiet is marked interrupted by the next command (its pid cannot be checked)."""
    import sqlite3

    import harness.store.heartbeat as heartbeat
    from harness.store import STALE_AFTER_S
    from harness.store.heartbeat import Heartbeat
    from tests.conftest import make_spec

    store_path = tmp_path / "store.sqlite"
    with Store(store_path) as store:
        store.claim_run(make_spec(), run_id="abc", name="n", manifest={}, run_dir=None)
        first = store.get_run("abc").heartbeat_at
    beat = Heartbeat(store_path, "abc", every_s=0.05).start()
    deadline = time.monotonic() + 30
    while beat.beats < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    beat.stop()
    with Store(store_path) as store:
        assert beat.beats >= 2 and store.get_run("abc").heartbeat_at > first
        assert store.interrupt_orphans() == []  # this process, alive
    with sqlite3.connect(store_path) as db:  # as if another host ran it and went quiet long ago
        db.execute("UPDATE runs SET host = 'elsewhere', heartbeat_at = '2000-01-01T00:00:00+00:00'")
    with Store(store_path) as store:
        assert store.interrupt_orphans() == ["abc"]
        assert store.get_run("abc").status == "interrupted"
    assert heartbeat.HEARTBEAT_S < STALE_AFTER_S / 4  # several missed beats before a live run is judged dead


def test_a_real_full_disk_fails_the_run_in_one_line_and_keeps_the_store_consistent(tmp_path, small_tmpfs, tiny_proxy):
    full_disk = small_tmpfs  # the run folder fits, the policy's weights do not
    store = tmp_path / "store.sqlite"
    argv = [sys.executable, "-m", "harness.cli", "run", "--algo", "sft", "--store", str(store), "--results-dir", str(full_disk),
            "--quiet", *TINY_FLAGS]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={**os.environ, "HARNESS_DEBUG": ""})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    with Store(store) as opened:
        (failed,) = opened.list_runs()
        assert failed.status == "failed" and "space" in failed.error.lower(), failed.error
        assert opened.metrics(failed.run_id)["eval/kl"] == 0  # measured before the disk filled: kept
    import sqlite3

    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_write_check_survives_another_process_removing_the_folder_it_just_made(tmp_path, monkeypatch):
    """Two processes started at once (the ranks of a data-parallel run) check one fresh folder:
    one's clean-up may remove the folder between the other's mkdir and its probe file."""
    import tempfile

    from harness.cli import writable_folder

    real, calls = tempfile.NamedTemporaryFile, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the other process's rmdir lands here, once
            (tmp_path / "fresh").rmdir()
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", racing)
    assert writable_folder(tmp_path / "fresh", "--results-dir") == tmp_path / "fresh"
    assert len(calls) == 2 and not (tmp_path / "fresh").exists()  # checked again, and nothing left behind
