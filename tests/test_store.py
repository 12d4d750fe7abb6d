"""The results store on a real SQLite file: round trips, claims, lookups, NaN, concurrency,
crashes, and the migration of a schema-1 store."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from harness.api import UsageError
from harness.store import LEGACY_PREFIX, RUN_FRAME_COLUMNS, Store
from tests.conftest import make_spec

MANIFEST = {"packages": {"torch": "2.13"}}


def new_run(store: Store, run_id: str | None = None, **spec_fields) -> str:
    """Claim a run of a spec built from ``spec_fields``; return its id."""
    run_id = run_id or os.urandom(6).hex()
    claim = store.claim_run(make_spec(**spec_fields), run_id=run_id, name="sentiment__ppo__0__t", manifest=MANIFEST,
                            run_dir="results/runs/x")  # fmt: skip
    assert claim.claimed, claim.holder
    return run_id


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "sub" / "store.sqlite") as s:
        yield s


def test_round_trip(store: Store):
    run_id = new_run(store)
    run = store.get_run(run_id)
    assert run.status == "running" and run.pid == os.getpid() and run.spec == make_spec()
    assert run.spec_key == make_spec().key and run.experiment_key == make_spec().experiment_key

    store.log_curve(run_id, [(0, {"losses/policy": 1.0, "rollout/reward": 0.1})])
    store.log_curve(run_id, [(1, {"losses/policy": 0.5, "rollout/reward": 0.3})])
    store.log_curve(run_id, [(1, {"losses/policy": 0.4})])  # an upsert, not a second row
    store.add_samples(run_id, [{"prompt": "p0", "response": "r0", "gold": 1.5, "proxy": 0.5, "length": 3}])
    store.add_samples(run_id, [{"prompt": "p1", "response": "r1"}])
    status = store.finish_run(
        run_id,
        status="finished",
        metrics={"eval/gold": 0.7, "eval/kl": 2.0},
        higher_is_better={"eval/gold": True, "eval/kl": False},
        budget_used={"episodes_used": 64, "rm_queries": 64},
    )
    assert status == "finished"

    run = store.get_run(run_id)
    assert run.status == "finished" and run.error is None
    assert run.algo_config == {"kl_coef": 0.05, "lr": 1e-5} and run.budget == 64
    assert run.manifest["packages"] == {"torch": "2.13"}
    assert run.budget_used["episodes_used"] == 64
    assert run.rm_is_oracle is False and run.seed == 0
    assert run.finished_at >= run.started_at and run.wall_seconds >= 0
    assert run.metrics == {"eval/gold": 0.7, "eval/kl": 2.0}
    assert run.higher_is_better == {"eval/gold": True, "eval/kl": False}
    assert store.metrics(run_id) == run.metrics
    assert store.finished_run(make_spec()).run_id == run_id

    curves = store.curves(run_id)
    assert list(curves.columns) == ["step", "losses/policy", "rollout/reward"]
    assert curves["step"].tolist() == [0, 1]
    assert curves["losses/policy"].tolist() == [1.0, 0.4]

    first, second = store.samples(run_id)
    assert first == {"prompt": "p0", "response": "r0", "gold": 1.5, "proxy": 0.5, "length": 3}
    assert second["prompt"] == "p1" and math.isnan(second["gold"]) and math.isnan(second["proxy"])  # missing → NaN, as metrics
    assert len(store.samples(run_id, limit=1)) == 1

    frame = store.metrics_frame()
    assert list(frame.columns) == [*RUN_FRAME_COLUMNS, "eval/gold", "eval/kl"]
    assert frame.loc[0, "spec"] == make_spec() and frame.loc[0, "benchmark_version"] == "1"
    assert frame.attrs["higher_is_better"] == {"eval/gold": True, "eval/kl": False}


def test_a_key_and_seed_is_claimed_once_and_finished_once(store: Store):
    first = new_run(store)
    busy = store.claim_run(make_spec(), run_id="second", name="n", manifest={}, run_dir=None)
    assert not busy.claimed and busy.holder.run_id == first and busy.holder.status == "running"  # this process is alive
    assert new_run(store, seed=1)  # another seed is another run
    store.finish_run(first, status="finished", metrics={"eval/gold": 1.0})
    done = store.claim_run(make_spec(), run_id="third", name="n", manifest={}, run_dir=None)
    assert not done.claimed and done.holder.status == "finished"
    store.finish_run(new_run(store, seed=2), status="failed", error="boom")
    assert new_run(store, seed=2)  # a failed run does not hold its (key, seed)
    assert len(store.list_runs(status="finished")) == 1


def test_a_reused_pid_or_another_host_and_releasing_by_hand(store: Store):
    first = new_run(store)
    with store._write() as conn:  # the same pid, but another process (started at another time): gone
        conn.execute("UPDATE runs SET process_start = '1' WHERE run_id = ?", (first,))
    second = new_run(store)
    assert store.get_run(first).status == "interrupted" and store.get_run(second).status == "running"
    with store._write() as conn:  # a holder on another host cannot be checked from here: it holds
        conn.execute("UPDATE runs SET host = 'node-7', pid = 999999 WHERE run_id = ?", (second,))
    assert not store.claim_run(make_spec(), run_id="third", name="n", manifest={}, run_dir=None).claimed
    assert store.mark_interrupted(second, "node-7 was lost").status == "interrupted"  # released by hand
    assert new_run(store)
    with pytest.raises(UsageError, match="is interrupted, not running"):
        store.mark_interrupted(second, "again")


def test_the_database_refuses_a_second_finished_run(store: Store):
    """Belt and braces under the claim: a second finished row for a (key, seed) is stored as
    failed, with the reason, and its metrics are not kept."""
    first = new_run(store)
    store.finish_run(first, status="finished", metrics={"eval/gold": 1.0})
    with store._write() as conn:  # as if it were still running, in a process that looks dead: it is taken over
        conn.execute("UPDATE runs SET status = 'running', pid = ? WHERE run_id = ?", (_dead_pid(), first))
    second = new_run(store)
    with store._write() as conn:  # ... but it was alive after all, and finished first
        conn.execute("UPDATE runs SET status = 'finished' WHERE run_id = ?", (first,))
    assert store.finish_run(second, status="finished", metrics={"eval/gold": 2.0}) == "failed"
    run = store.get_run(second)
    assert run.status == "failed" and f"finished first by run {first}" in run.error and run.metrics == {}
    with pytest.raises(sqlite3.IntegrityError):
        with store._write() as conn:
            conn.execute("UPDATE runs SET status = 'finished' WHERE run_id = ?", (second,))


def _dead_pid() -> int:
    proc = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_list_runs_filters_and_order(store: Store):
    a = new_run(store, run_id="aaa")
    b = new_run(store, run_id="bbb", algorithm="rm-ranking")
    c = new_run(store, run_id="ccc", benchmark="alpaca")
    store.finish_run(b, status="finished")
    assert [r.run_id for r in store.list_runs()] == [a, b, c]
    assert [r.run_id for r in store.list_runs(benchmark="sentiment")] == [a, b]
    assert [r.run_id for r in store.list_runs(algorithm="rm-ranking", status="finished")] == [b]
    assert [r.run_id for r in store.list_runs(key=make_spec(algorithm="rm-ranking").key[:6])] == [b]
    assert [r.run_id for r in store.list_runs(key=make_spec(benchmark="alpaca").experiment_key[:6])] == [c]
    assert store.list_runs(status="failed") == []
    with pytest.raises(UsageError, match="unknown status 'bogus'; valid: running, finished, failed, interrupted"):
        store.list_runs(status="bogus")
    assert store.metrics_frame()["run_id"].tolist() == [b]
    assert store.metrics_frame(status=None)["run_id"].tolist() == [a, b, c]


def test_prefix_lookup_and_errors(store: Store):
    new_run(store, run_id="abc123")
    new_run(store, run_id="abd456", seed=1)
    assert store.get_run("abc").run_id == "abc123"
    assert store.get_run("abd456").run_id == "abd456"
    with pytest.raises(UsageError, match=r"no run 'xyz' in .*store\.sqlite; `harness runs` lists them"):
        store.get_run("xyz")
    with pytest.raises(UsageError, match="ambiguous.*abc123.*abd456"):
        store.get_run("ab")
    with pytest.raises(UsageError, match="already exists"):
        new_run(store, run_id="abc123", seed=2)
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.finish_run("nope", status="finished")
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.log_curve("nope", [(0, {"x": 1.0})])


def test_non_finite_values(store: Store):
    run_id = new_run(store)
    store.log_curve(run_id, [(0, {"loss": math.nan, "reward": math.inf})])
    store.finish_run(run_id, status="finished", metrics={"eval/gold": math.nan, "eval/kl": -math.inf})
    metrics = store.get_run(run_id).metrics
    assert math.isnan(metrics["eval/gold"]) and metrics["eval/kl"] == -math.inf
    assert math.isnan(store.metrics(run_id)["eval/gold"])
    curves = store.curves(run_id)
    assert math.isnan(curves.loc[0, "loss"]) and curves.loc[0, "reward"] == math.inf
    assert math.isnan(store.metrics_frame().loc[0, "eval/gold"])


def test_failed_run_keeps_its_error(store: Store):
    run_id = new_run(store)
    store.finish_run(run_id, status="failed", error="Traceback ...\nRuntimeError: boom")
    run = store.get_run(run_id)
    assert run.status == "failed" and run.error.endswith("RuntimeError: boom")
    assert run.finished_at is not None
    assert store.metrics_frame().empty  # failed runs stay off the leaderboard
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish_run(run_id, status="done")


def test_a_failing_write_changes_nothing(store: Store):
    run_id = new_run(store)
    # The second value fails to convert half-way through the transaction.
    with pytest.raises(ValueError):
        store.finish_run(run_id, status="finished", metrics={"eval/gold": 1.0, "eval/kl": "oops"})
    run = store.get_run(run_id)
    assert run.status == "running" and run.finished_at is None and run.metrics == {}


def test_two_stores_on_one_file_keep_every_row(tmp_path: Path):
    path = tmp_path / "store.sqlite"
    with Store(path) as a, Store(path) as b:
        ids = []
        for i in range(10):
            writer = (a, b)[i % 2]
            ids.append(new_run(writer, seed=i))
            (b, a)[i % 2].log_curve(ids[-1], [(0, {"x": float(i)})])
        for i, run_id in enumerate(ids):
            (a, b)[i % 2].finish_run(run_id, status="finished", metrics={"eval/gold": float(i)})
    with Store(path) as check:
        frame = check.metrics_frame()
        assert sorted(frame["seed"]) == list(range(10))
        assert sorted(frame["eval/gold"]) == [float(i) for i in range(10)]
        assert all(check.curves(r)["x"].tolist() == [float(i)] for i, r in enumerate(ids))


def _writer(path: str, worker: int, n: int) -> None:
    with Store(path) as store:
        for i in range(n):
            run_id = new_run(store, seed=worker * 100 + i)
            store.log_curve(run_id, [(0, {"x": 1.0})])
            store.finish_run(run_id, status="finished", metrics={"eval/gold": float(i)})


def test_concurrent_processes_lose_no_row(tmp_path: Path):
    path = str(tmp_path / "store.sqlite")
    Store(path).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store(path) as store:
        assert len(store.metrics_frame()) == 60
        assert len(store.list_runs()) == 60


def _claimer(path: str, results, start, release) -> None:
    import time

    import harness.store.leases as store_module

    insert = store_module._insert

    def slow_insert(*args):  # widen the window between looking for a holder and inserting the claim
        time.sleep(0.2)
        return insert(*args)

    store_module._insert = slow_insert
    with Store(path) as store:
        start.wait(60)
        claim = store.claim_run(make_spec(seed=7), run_id=os.urandom(6).hex(), name="n", manifest={}, run_dir=None)
        results.put(claim.claimed)
        release.wait(60)  # stay alive, as a running run does, until every process has tried


def test_racing_claims_of_one_key_and_seed_give_one_run(tmp_path: Path):
    path = str(tmp_path / "store.sqlite")
    Store(path).close()
    ctx = multiprocessing.get_context("fork")
    results, start, release = ctx.Queue(), ctx.Barrier(6), ctx.Event()
    procs = [ctx.Process(target=_claimer, args=(path, results, start, release)) for _ in range(6)]
    for p in procs:
        p.start()
    claimed = sorted(results.get(timeout=60) for _ in procs)
    release.set()
    for p in procs:
        p.join(60)
    assert claimed == [False] * 5 + [True]


def _dies_mid_run(path: str) -> None:
    store = Store(path)
    run_id = new_run(store, run_id="doomed")
    store.log_curve(run_id, [(0, {"x": 1.0})])
    os._exit(1)  # no finish, no close, no checkpoint: like a SIGKILL


def test_a_run_whose_process_died_is_marked_interrupted_by_the_next_claim(tmp_path: Path):
    path = str(tmp_path / "store.sqlite")
    with Store(path) as store:
        done = new_run(store, seed=1)
        store.finish_run(done, status="finished", metrics={"eval/gold": 1.0})
    proc = multiprocessing.get_context("fork").Process(target=_dies_mid_run, args=(path,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 1
    with Store(path) as store:
        assert store.get_run("doomed").status == "running"
        assert store.curves("doomed")["x"].tolist() == [1.0]
        assert store.get_run(done).metrics == {"eval/gold": 1.0}
        assert store.metrics_frame()["run_id"].tolist() == [done]
        again = new_run(store)  # the same (key, seed): the dead holder does not block it
        doomed = store.get_run("doomed")
        assert doomed.status == "interrupted" and f"pid {proc.pid}" in doomed.error
        assert store.get_run(again).status == "running"


SCHEMA_1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, benchmark TEXT NOT NULL, benchmark_version TEXT,
    benchmark_config TEXT NOT NULL, algorithm TEXT NOT NULL, algo_config TEXT NOT NULL, config_hash TEXT NOT NULL,
    reward_model TEXT, rm_config TEXT NOT NULL, rm_is_oracle INTEGER NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')), error TEXT,
    created_at TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, wall_seconds REAL, budget TEXT NOT NULL,
    budget_used TEXT, manifest TEXT NOT NULL, run_dir TEXT);
CREATE TABLE curves (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, step INTEGER NOT NULL,
    key TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, step, key)) WITHOUT ROWID;
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, key TEXT NOT NULL, value REAL,
    higher_is_better INTEGER, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    prompt TEXT NOT NULL, response TEXT NOT NULL, gold REAL, proxy REAL, extra TEXT NOT NULL, PRIMARY KEY (run_id, idx));
"""


def test_a_schema_1_store_is_migrated_without_losing_a_row(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1)
        for run_id, seed, budget in [("old0", 0, 64), ("old1", 0, 64), ("old2", 1, 128)]:  # old0/old1: one seed twice
            conn.execute(
                "INSERT INTO runs VALUES (?, 'n', 'sentiment', '1', '{}', 'ppo', '{\"kl\": true}', 'h', 'pairwise', '{}', 0, ?, "
                "'finished', NULL, '2026-01-01', '2026-01-01', '2026-01-01', 1.0, ?, '{\"episodes_used\": 64}', ?, NULL)",
                (run_id, seed, json.dumps({"episodes": budget}), json.dumps({"git": {"commit": "abcdef1234567890"}})),
            )
            conn.execute("INSERT INTO metrics VALUES (?, 'eval/gold', 0.5, 1)", (run_id,))
            conn.execute("INSERT INTO curves VALUES (?, 0, 'x', 1.0)", (run_id,))
            conn.execute("INSERT INTO samples VALUES (?, 0, 'p', 'r', 0.1, 0.2, '{}')", (run_id,))
    conn.close()
    with Store(path) as store:
        runs = {r.run_id: r for r in store.list_runs()}
        assert set(runs) == {"old0", "old1", "old2"}
        assert all(r.metrics == {"eval/gold": 0.5} and store.curves(r.run_id)["x"].tolist() == [1.0] for r in runs.values())
        assert all(store.samples(r.run_id)[0]["prompt"] == "p" for r in runs.values())
        assert runs["old0"].spec_key == runs["old1"].spec_key != runs["old2"].spec_key  # the budget is in the key
        assert runs["old0"].spec_key.startswith(LEGACY_PREFIX) and runs["old0"].code_version == "legacy abcdef123456"
        assert runs["old2"].spec.budget == 128 and runs["old0"].algo_config == {"kl": True}
        from harness.analysis.leaderboard import build_leaderboard

        board = build_leaderboard(store.metrics_frame())  # legacy rows: their stored keys, no made-up costs
        assert set(board["key"]) == {runs["old0"].experiment_key, runs["old2"].experiment_key}
        assert board["seeds"].tolist() == [1, 1] and board["samples_per_response"].isna().all()
        assert [r.run_id for r in store.list_runs(key=runs["old2"].experiment_key[:15])] == ["old2"]
        new_run(store)  # and it takes new runs
    with Store(path) as again:  # opening it again is a no-op
        assert len(again.list_runs()) == 4


def test_not_a_store(tmp_path: Path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(UsageError, match="garbage.sqlite is not a harness store: "):
        Store(garbage)

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    conn.close()
    with pytest.raises(UsageError, match="is not a harness store: it holds other tables"):
        Store(other)


def test_curves_of_a_run_without_any(store: Store):
    run_id = new_run(store)
    assert list(store.curves(run_id).columns) == ["step"]
    assert store.samples(run_id) == [] and store.metrics(run_id) == {}
    assert isinstance(store.metrics_frame(status=None), pd.DataFrame)
