"""The results store on a real SQLite file: round trips, lookups, NaN, concurrency, crashes."""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import UsageError
from harness.store import RUN_FRAME_COLUMNS, Store


def new_run(store: Store, **overrides) -> str:
    fields = dict(
        name="sentiment__ppo__0__t",
        benchmark="sentiment",
        benchmark_version="1",
        benchmark_config={"n_prompts": 8},
        algorithm="ppo",
        algo_config={"kl_coef": 0.05, "lr": 1e-5},
        config_hash="c0ffee1234",
        reward_model="bradley-terry",
        rm_config={"epochs": 1},
        rm_is_oracle=False,
        seed=0,
        budget={"episodes": 64},
        manifest={"git_commit": "abc", "packages": {"torch": "2.13"}},
        run_dir="results/runs/x",
    )
    return store.create_run(**(fields | overrides))


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "sub" / "store.sqlite") as s:
        yield s


def test_round_trip(store: Store):
    run_id = new_run(store)
    assert len(run_id) == 12
    assert store.get_run(run_id).status == "running"

    store.log_metrics(run_id, 0, {"losses/policy": 1.0, "rollout/reward": 0.1})
    store.log_metrics(run_id, 1, {"losses/policy": 0.5, "rollout/reward": 0.3})
    store.log_metrics(run_id, 1, {"losses/policy": 0.4})  # an upsert, not a second row
    store.add_samples(run_id, [{"prompt": "p0", "response": "r0", "gold": 1.5, "proxy": 0.5, "length": 3}])
    store.add_samples(run_id, [{"prompt": "p1", "response": "r1"}])
    store.finish_run(
        run_id,
        status="finished",
        metrics={"eval/gold": 0.7, "eval/kl": 2.0},
        higher_is_better={"eval/gold": True, "eval/kl": False},
        budget_used={"episodes_used": 64, "rm_queries": 64},
    )

    run = store.get_run(run_id)
    assert run.status == "finished" and run.error is None
    assert run.algo_config == {"kl_coef": 0.05, "lr": 1e-5}
    assert run.manifest["packages"] == {"torch": "2.13"}
    assert run.budget == {"episodes": 64} and run.budget_used["episodes_used"] == 64
    assert run.rm_is_oracle is False and run.seed == 0
    assert run.finished_at >= run.started_at and run.wall_seconds >= 0
    assert run.metrics == {"eval/gold": 0.7, "eval/kl": 2.0}
    assert run.higher_is_better == {"eval/gold": True, "eval/kl": False}
    assert store.metrics(run_id) == run.metrics

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
    assert frame.loc[0, "algo_config"] == {"kl_coef": 0.05, "lr": 1e-5}
    assert frame.attrs["higher_is_better"] == {"eval/gold": True, "eval/kl": False}


def test_list_runs_filters_and_order(store: Store):
    a = new_run(store, run_id="aaa")
    b = new_run(store, run_id="bbb", algorithm="rm-ranking")
    c = new_run(store, run_id="ccc", benchmark="alpaca")
    store.finish_run(b, status="finished")
    assert [r.run_id for r in store.list_runs()] == [a, b, c]
    assert [r.run_id for r in store.list_runs(benchmark="sentiment")] == [a, b]
    assert [r.run_id for r in store.list_runs(algorithm="rm-ranking", status="finished")] == [b]
    assert store.list_runs(status="failed") == []
    assert store.metrics_frame()["run_id"].tolist() == [b]
    assert store.metrics_frame(status=None)["run_id"].tolist() == [a, b, c]


def test_prefix_lookup_and_errors(store: Store):
    new_run(store, run_id="abc123")
    new_run(store, run_id="abd456")
    assert store.get_run("abc").run_id == "abc123"
    assert store.get_run("abd456").run_id == "abd456"
    with pytest.raises(UsageError, match=r"no run 'xyz' in .*store\.sqlite; `harness runs` lists them"):
        store.get_run("xyz")
    with pytest.raises(UsageError, match="ambiguous.*abc123.*abd456"):
        store.get_run("ab")
    with pytest.raises(UsageError, match="already exists"):
        new_run(store, run_id="abc123")
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.finish_run("nope", status="finished")
    with pytest.raises(UsageError, match="no run 'nope'"):
        store.log_metrics("nope", 0, {"x": 1.0})


def test_non_finite_values(store: Store):
    run_id = new_run(store)
    store.log_metrics(run_id, 0, {"loss": math.nan, "reward": math.inf})
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
            (b, a)[i % 2].log_metrics(ids[-1], 0, {"x": float(i)})
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
            store.log_metrics(run_id, 0, {"x": 1.0})
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


def _dies_mid_run(path: str) -> None:
    store = Store(path)
    run_id = new_run(store, run_id="doomed")
    store.log_metrics(run_id, 0, {"x": 1.0})
    os._exit(1)  # no finish, no close, no checkpoint: like a SIGKILL


def test_a_run_whose_process_dies_stays_running(tmp_path: Path):
    path = str(tmp_path / "store.sqlite")
    with Store(path) as store:
        done = new_run(store)
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
