"""The results store on both backends: an SQLite file, and PostgreSQL when
$HARNESS_TEST_POSTGRES_URL names a database on a server where the tests may create databases
(.ci/run starts one; each test gets a fresh database). Round trips, claims, orphans and
heartbeats, errors a user can make, the schema-2 migration, two real processes writing at once,
and kill -9 in the middle of a write."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.api import UsageError
from harness.errors import FaultError
from harness.store import SCHEMA_VERSION, STALE_AFTER_S, Store, is_url
from tests.conftest import make_spec

POSTGRES_URL = os.environ.get("HARNESS_TEST_POSTGRES_URL")
REPO = Path(__file__).resolve().parents[1]


def _admin_engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path: Path):
    """Where a fresh store goes: a file path, or the URL of a database created for this test."""
    if request.param == "sqlite":
        yield str(tmp_path / "sub" / "store.sqlite")
        return
    if not POSTGRES_URL:
        pytest.skip("HARNESS_TEST_POSTGRES_URL is unset: no PostgreSQL server to test on (.ci/run starts one)")
    name = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(POSTGRES_URL)
    with admin.connect() as conn:
        try:  # a human collation ('a' < 'b' < 'B', as most servers'): the store must not depend on it
            conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        except sa.exc.DBAPIError:  # a server built without ICU
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def store(location: str):
    with Store(location) as s:
        yield s


def new_run(store: Store, run_id: str | None = None, **spec_fields) -> str:
    run_id = run_id or uuid.uuid4().hex[:12]
    claim = store.claim_run(make_spec(**spec_fields), run_id=run_id, name="n", manifest={"packages": {}}, run_dir=None)
    assert claim.claimed, claim.holder
    return run_id


def sql(store: Store, statement: str, **params) -> list[tuple]:
    """Run ``statement`` (named parameters, either dialect) in one write transaction."""
    with store._write() as tx:
        result = tx.execute(sa.text(statement), params)
        return [tuple(row) for row in result] if result.returns_rows else []


# -----------------------------------------------------------------------------
# behaviour, on both backends
# -----------------------------------------------------------------------------


def test_round_trip_nan_order_and_prefixes(store: Store):
    run_id = new_run(store, run_id="abc123")
    new_run(store, run_id="abd456", seed=1)
    # keys in byte order on both backends (a server's locale would put 'a' before 'B')
    store.log_curve(run_id, [(0, {"b": 1.0, "B": math.nan, "a": math.inf}), (1, {"b": 2.0})])
    store.log_curve(run_id, [(1, {"b": 3.0})])  # an upsert
    store.log_curve(run_id, [])
    store.add_samples(run_id, [{"prompt": "p0", "response": "r0", "gold": 1.5, "proxy": math.nan, "length": 3}])
    store.add_samples(run_id, [{"prompt": "p1", "response": "r1"}])
    assert store.finish_run(run_id, status="finished", metrics={"eval/gold": 0.7, "eval/kl": -math.inf, "eval/x": math.nan},
                            higher_is_better={"eval/gold": True, "eval/kl": False}, budget_used={"episodes_used": 64}) == "finished"  # fmt: skip
    curves = store.curves(run_id)
    assert list(curves.columns) == ["step", "B", "a", "b"] and curves["step"].tolist() == [0, 1]
    assert curves["b"].tolist() == [1.0, 3.0] and curves.loc[0, "a"] == math.inf and curves["B"].isna().all()
    assert sql(store, "SELECT COUNT(*) FROM curves WHERE value IS NULL") == [(1,)]  # NaN stored as NULL, on both
    assert sql(store, "SELECT COUNT(*) FROM metrics WHERE value IS NULL") == [(1,)]
    first, second = store.samples(run_id)
    assert first["gold"] == 1.5 and math.isnan(first["proxy"]) and first["length"] == 3 and math.isnan(second["gold"])
    assert len(store.samples(run_id, limit=1)) == 1
    run = store.get_run("abc")
    assert run.run_id == run_id and run.status == "finished" and run.budget_used == {"episodes_used": 64}
    assert run.metrics["eval/kl"] == -math.inf and math.isnan(run.metrics["eval/x"])
    store.finish_run("abd456", status="failed", metrics={"b": 1.0, "B": 2.0, "a": 3.0})
    assert list(store.metrics("abd456")) == ["B", "a", "b"]  # byte order, as SQLite's, whatever the server's collation
    assert run.higher_is_better == {"eval/gold": True, "eval/kl": False}
    assert store.finished_run(make_spec()).run_id == run_id and store.finished_run(make_spec(seed=1)) is None
    frame = store.metrics_frame()
    assert frame["run_id"].tolist() == [run_id] and frame.loc[0, "eval/gold"] == 0.7 and frame.loc[0, "spec"] == make_spec()
    assert frame.attrs["higher_is_better"] == {"eval/gold": True, "eval/kl": False}
    assert store.metrics_frame(status=None)["run_id"].tolist() == ["abc123", "abd456"]
    assert [r.run_id for r in store.list_runs(key=make_spec().key[:6], status="failed")] == ["abd456"]
    assert store.list_runs(benchmark="alpaca") == []
    with pytest.raises(UsageError, match="ambiguous.*abc123.*abd456"):
        store.get_run("ab")
    with pytest.raises(UsageError, match="no run 'xyz' in "):
        store.get_run("xyz")
    with pytest.raises(UsageError, match="already exists"):
        new_run(store, run_id="abc123", seed=2)
    for call in (lambda: store.log_curve("nope", [(0, {"x": 1.0})]), lambda: store.add_samples("nope", [{"prompt": "p", "response": "r"}]),
                 lambda: store.finish_run("nope", status="failed"), lambda: store.heartbeat("nope")):  # fmt: skip
        with pytest.raises(UsageError, match="no run 'nope'"):
            call()


def test_claimed_once_finished_once(store: Store):
    first = new_run(store)
    busy = store.claim_run(make_spec(), run_id="second", name="n", manifest={}, run_dir=None)
    assert not busy.claimed and busy.holder.run_id == first  # this process is alive
    store.finish_run(first, status="finished", metrics={"eval/gold": 1.0})
    assert store.claim_run(make_spec(), run_id="third", name="n", manifest={}, run_dir=None).holder.status == "finished"
    # The partial unique index under the claim: a taken-over claim that finishes second is failed.
    sql(store, "UPDATE runs SET status = 'interrupted' WHERE run_id = :r", r=first)
    second = new_run(store)
    sql(store, "UPDATE runs SET status = 'finished' WHERE run_id = :r", r=first)
    assert store.finish_run(second, status="finished", metrics={"eval/gold": 2.0}) == "failed"
    run = store.get_run(second)
    assert f"finished first by run {first}" in run.error and run.metrics == {}
    with pytest.raises(sa.exc.IntegrityError):
        sql(store, "UPDATE runs SET status = 'finished' WHERE run_id = :r", r=second)


def test_a_failing_write_changes_nothing_and_deletes_cascade(store: Store):
    run_id = new_run(store)
    with pytest.raises(ValueError):
        store.finish_run(run_id, status="finished", metrics={"eval/gold": 1.0, "eval/kl": "oops"})
    assert store.get_run(run_id).status == "running" and store.metrics(run_id) == {}
    with pytest.raises(ValueError):
        store.log_curve(run_id, [(0, {"x": 1.0}), (1, {"x": "oops"})])
    assert list(store.curves(run_id).columns) == ["step"]
    store.log_curve(run_id, [(0, {"x": 1.0})])
    store.add_samples(run_id, [{"prompt": "p", "response": "r"}])
    store.finish_run(run_id, status="finished", metrics={"eval/gold": 1.0})
    sql(store, "DELETE FROM runs WHERE run_id = :r", r=run_id)
    for table in ("curves", "metrics", "samples"):
        assert sql(store, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_orphans_on_this_host_and_heartbeats_from_others(store: Store):
    gone = new_run(store, seed=0)
    sql(store, "UPDATE runs SET process_start = '1' WHERE run_id = :r", r=gone)  # our pid, another process: gone
    alive = new_run(store, seed=1)
    quiet, fresh, ancient = new_run(store, seed=2), new_run(store, seed=3), new_run(store, seed=4)
    long_ago = (datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER_S + 60)).isoformat()
    sql(store, "UPDATE runs SET host = 'node-7', pid = 999999, heartbeat_at = :t WHERE run_id = :r", t=long_ago, r=quiet)
    sql(store, "UPDATE runs SET host = 'node-7', pid = 999999, heartbeat_at = :t WHERE run_id = :r", t=long_ago, r=fresh)
    store.heartbeat(fresh)  # a beat now: alive, wherever it runs
    sql(
        store, "UPDATE runs SET host = 'node-7', pid = 999999, heartbeat_at = NULL WHERE run_id = :r", r=ancient
    )  # an older harness
    assert sorted(store.interrupt_orphans()) == sorted([gone, quiet])
    assert store.get_run(alive).status == store.get_run(fresh).status == store.get_run(ancient).status == "running"
    assert "ended without finishing" in store.get_run(gone).error
    error = store.get_run(quiet).error
    assert "no heartbeat for 11 min" in error and "node-7" in error and f"after {STALE_AFTER_S / 60:g} min" in error
    assert store.interrupt_orphans(stale_after_s=0) == [fresh]  # the limit is the caller's
    assert new_run(store, seed=2) and new_run(store, seed=3)  # released (key, seed)s are claimed again
    # the next claim of a (key, seed) judges its holder the same way
    sql(store, "UPDATE runs SET heartbeat_at = :t WHERE run_id = :r", t=long_ago, r=ancient)
    assert new_run(store, seed=4) and store.get_run(ancient).status == "interrupted"


# -----------------------------------------------------------------------------
# opening: what a user can get wrong
# -----------------------------------------------------------------------------


def test_locations_and_errors(tmp_path: Path, monkeypatch):
    assert is_url("postgresql://u@h/db") and not is_url("results/store.sqlite") and not is_url(Path("a://b"))
    with Store(tmp_path / "a.sqlite") as a:  # a Path, a str, an sqlite:// URL: the same file
        new_run(a)
    with Store(str(tmp_path / "a.sqlite")) as b, Store(f"sqlite:///{tmp_path / 'a.sqlite'}") as c:
        assert len(b.list_runs()) == len(c.list_runs()) == 1 and repr(c) == f"Store('{tmp_path / 'a.sqlite'}')"
    with pytest.raises(UsageError, match=r"the store .*/d is a directory; --store takes an SQLite file"):
        (tmp_path / "d").mkdir()
        Store(tmp_path / "d")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(UsageError, match=r"^.*garbage\.sqlite is not a harness store: it is not an SQLite database"):
        Store(garbage)
    with pytest.raises(UsageError, match=r"cannot open the store .*/file/store\.sqlite: "):
        (tmp_path / "file").write_text("")
        Store(tmp_path / "file" / "store.sqlite")
    supported = r"--store takes a file path \(SQLite\), sqlite:///PATH, or postgresql://USER@HOST\[:PORT\]/DB"
    with pytest.raises(UsageError, match=r"unknown kind of store mysql:// in mysql://u@h/db; " + supported):
        Store("mysql://u@h/db")
    with pytest.raises(UsageError, match=r"unknown database driver postgresql\+nosuch://"):
        Store("postgresql+nosuch://u@h/db")
    with pytest.raises(UsageError, match=r"^cannot parse the store URL postgresql://u:\*\*\*@h:port/db \(invalid literal"):
        Store("postgresql://u:secret@h:port/db")
    with pytest.raises(UsageError, match=r"names no file"):
        Store("sqlite://")
    # No server there: one line, the password hidden.
    with pytest.raises(  # the environment's fault (exit 1), not the command's
        FaultError, match=r"^cannot connect to the store postgresql://u:\*\*\*@127\.0\.0\.1:1/db: connection failed"
    ) as err:
        Store("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    with pytest.raises(UsageError, match=r"driver \(psycopg\) is not installed; pip install rlhf-harness\[postgres\]$"):
        Store("postgresql://u@h/db")


def test_a_database_with_other_tables_is_not_taken(location: str):
    if is_url(location):
        with _admin_engine(location).connect() as conn:
            conn.exec_driver_sql("CREATE TABLE people (name TEXT)")
    else:
        Path(location).parent.mkdir(parents=True)
        with sqlite3.connect(location) as conn:
            conn.execute("CREATE TABLE people (name TEXT)")
        conn.close()
    with pytest.raises(UsageError, match=r"is not a harness store: it holds other tables \(people\)"):
        Store(location)


# -----------------------------------------------------------------------------
# the schema-2 migration (SQLite files written before heartbeats)
# -----------------------------------------------------------------------------

#: a store written by the schema-2 code (its DDL, and rows as it wrote them)
SCHEMA_2 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (2);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, spec_key TEXT NOT NULL,
    experiment_key TEXT NOT NULL, code_version TEXT NOT NULL, benchmark TEXT NOT NULL, algorithm TEXT NOT NULL,
    reward_model TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')), error TEXT,
    created_at TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, wall_seconds REAL, budget_used TEXT,
    manifest TEXT NOT NULL, run_dir TEXT, pid INTEGER, host TEXT, process_start TEXT);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_key ON runs (spec_key, seed);
CREATE INDEX runs_experiment ON runs (experiment_key);
CREATE UNIQUE INDEX runs_one_finished ON runs (spec_key, seed) WHERE status = 'finished' AND spec_key NOT LIKE 'legacy-%';
CREATE TABLE curves (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, step INTEGER NOT NULL,
    key TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, step, key)) WITHOUT ROWID;
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, key TEXT NOT NULL, value REAL,
    higher_is_better INTEGER, PRIMARY KEY (run_id, key)) WITHOUT ROWID;
CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE, idx INTEGER NOT NULL,
    prompt TEXT NOT NULL, response TEXT NOT NULL, gold REAL, proxy REAL, extra TEXT NOT NULL, PRIMARY KEY (run_id, idx));
"""


def test_a_schema_2_store_gains_heartbeats_without_losing_a_row(tmp_path: Path):
    path = tmp_path / "v2.sqlite"
    spec0, spec1 = make_spec(seed=0), make_spec(seed=1)
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_2)
        for run_id, spec, status, host in [("fin0", spec0, "finished", "vm"), ("run1", spec1, "running", "node-7")]:
            conn.execute(
                "INSERT INTO runs VALUES (?, 'n', ?, ?, ?, 'c0ffee', 'sentiment', 'ppo', 'pairwise', ?, ?, NULL, "
                "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', NULL, 1.0, NULL, '{\"m\": 1}', 'r0', 999999, ?, '1')",
                (run_id, json.dumps(spec.to_dict()), spec.key, spec.experiment_key, spec.seed, status, host),
            )
        conn.execute("INSERT INTO curves VALUES ('fin0', 0, 'x', 1.0), ('fin0', 1, 'x', NULL)")
        conn.execute("INSERT INTO metrics VALUES ('fin0', 'eval/gold', 0.5, 1)")
        conn.execute("INSERT INTO samples VALUES ('fin0', 0, 'p', 'r', 1.0, NULL, '{\"k\": 2}')")
    conn.close()
    with Store(path) as store:
        assert sql(store, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)] == [(3,)]
        fin0, run1 = store.get_run("fin0"), store.get_run("run1")
        assert fin0.metrics == {"eval/gold": 0.5} and fin0.higher_is_better == {"eval/gold": True} and fin0.spec == spec0
        assert store.curves("fin0")["x"].tolist()[0] == 1.0 and math.isnan(store.curves("fin0")["x"].tolist()[1])
        (sample,) = store.samples("fin0")
        assert (sample["prompt"], sample["gold"], sample["k"]) == ("p", 1.0, 2) and math.isnan(sample["proxy"])
        assert fin0.heartbeat_at is None and run1.heartbeat_at is None
        assert store.interrupt_orphans() == []  # an old run elsewhere, without heartbeats: not judged
        store.heartbeat("run1")
        assert store.get_run("run1").heartbeat_at is not None
        assert not store.claim_run(spec0, run_id="again", name="n", manifest={}, run_dir=None).claimed  # the index holds
        new_run(store, seed=2)
    with Store(path) as again:  # opening it again is a no-op
        assert len(again.list_runs()) == 3


# -----------------------------------------------------------------------------
# real processes: two writers at once; kill -9 in the middle of a write
# -----------------------------------------------------------------------------

WRITER = """
import json, os, sys, time
import harness.store.leases as store_module
from harness.store import Store
from harness.specs import RunSpec

location, worker, shared, go = sys.argv[1], int(sys.argv[2]), RunSpec.from_dict(json.loads(sys.argv[3])), sys.argv[4]
runs, batches, steps, samples = (int(n) for n in sys.argv[5:9])
insert = store_module._insert

def slow_insert(*args):  # widen the window between looking for a holder and inserting the claim
    time.sleep(0.3)
    return insert(*args)

store = Store(location)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.005)
store_module._insert = slow_insert
won = store.claim_run(shared, run_id=f"shared-{worker}", name="n", manifest={}, run_dir=None)
store_module._insert = insert
start = time.time()
for r in range(runs):
    run_id = f"w{worker}-{r}"
    assert store.claim_run(shared.with_seed(1000 * (worker + 1) + r), run_id=run_id, name="n", manifest={}, run_dir=None).claimed
    for b in range(batches):
        store.log_curve(run_id, [(b * steps + s, {"loss": float(worker), "reward": float(s)}) for s in range(steps)])
        store.heartbeat(run_id)
        store.add_samples(run_id, [{"prompt": f"{run_id}/{b}/{i}", "response": "r", "gold": 1.0} for i in range(samples)])
        time.sleep(0.002)  # a run trains between writes: without a pause, SQLite's lock goes back to the same writer
    store.finish_run(run_id, status="finished", metrics={"eval/gold": float(worker), "eval/run": float(r)})
end = time.time()
if won.claimed:
    store.log_curve(f"shared-{worker}", [(0, {"loss": 1.0})])
    store.finish_run(f"shared-{worker}", status="finished", metrics={"eval/gold": 1.0})
print(json.dumps({"won": won.claimed, "holder": None if won.claimed else won.holder.run_id, "start": start, "end": end}), flush=True)
store.close()
"""


def _python(script: str, *args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)


def test_two_processes_at_once_lose_nothing_and_claim_a_key_once(location: str, tmp_path: Path):
    runs, batches, steps, samples = 3, 40, 10, 5
    go = tmp_path / "go"  # no store yet: both processes create it at once, and one schema results
    procs = [
        _python(WRITER, location, w, json.dumps(make_spec(seed=7).to_dict()), go, runs, batches, steps, samples) for w in (0, 1)
    ]
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    go.touch()
    reports = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert max(r["start"] for r in reports) < min(r["end"] for r in reports), "the writers did not overlap"
    assert sorted(r["won"] for r in reports) == [False, True]  # exactly one claim of the shared (key, seed)
    winner = next(f"shared-{w}" for w, r in enumerate(reports) if r["won"])
    assert [r["holder"] for r in reports if not r["won"]] == [winner]
    with Store(location) as store:
        ids = sorted(r.run_id for r in store.list_runs())
        assert ids == sorted([winner] + [f"w{w}-{r}" for w in (0, 1) for r in range(runs)])
        assert {r.status for r in store.list_runs()} == {"finished"}
        for w in (0, 1):
            for r in range(runs):
                run_id = f"w{w}-{r}"
                curves = store.curves(run_id)
                assert curves["step"].tolist() == list(range(batches * steps)) and (curves["loss"] == w).all()
                got = [s["prompt"] for s in store.samples(run_id)]
                assert got == [f"{run_id}/{b}/{i}" for b in range(batches) for i in range(samples)]
                assert store.metrics(run_id) == {"eval/gold": float(w), "eval/run": float(r)}
        assert sql(store, "SELECT COUNT(*) FROM curves") == [(2 * runs * batches * steps * 2 + 1,)]  # nothing duplicated
        assert sql(store, "SELECT COUNT(*) FROM samples") == [(2 * runs * batches * samples,)]
        assert len(store.metrics_frame()) == 2 * runs + 1


DOOMED = """
import os, signal, sys
import harness.store.writing as store_module
from harness.store import Store
from harness.specs import RunSpec
import json

location, spec, die_in = sys.argv[1], RunSpec.from_dict(json.loads(sys.argv[2])), int(sys.argv[3])
executemany, calls = store_module._executemany, [0]

def dying_executemany(*args):  # the rows sent, the transaction not yet committed: SIGKILL
    executemany(*args)
    calls[0] += 1
    if calls[0] == die_in:
        os.kill(os.getpid(), signal.SIGKILL)

store_module._executemany = dying_executemany
store = Store(location)
store.claim_run(spec, run_id="doomed", name="n", manifest={}, run_dir=None)
for b in range(10**6):
    store.log_curve("doomed", [(b * 50 + s, {f"k{k}": float(b) for k in range(10)}) for s in range(50)])
    store.add_samples("doomed", [{"prompt": "p" * 500, "response": "r" * 500, "batch": b} for i in range(20)])
    print(b, flush=True)
"""


@pytest.mark.parametrize("how", ["parent-kills-at-random", "killed-inside-a-transaction"])
def test_kill_9_in_the_middle_of_writing(location: str, how: str):
    with Store(location) as store:
        done = new_run(store, seed=1)
        store.finish_run(done, status="finished", metrics={"eval/gold": 1.0})
    die_in = 0 if how == "parent-kills-at-random" else 2 * 7 + 1  # the 8th curve batch, after 7 full rounds
    proc = _python(DOOMED, location, json.dumps(make_spec().to_dict()), die_in)
    if die_in:
        committed = len(proc.communicate(timeout=120)[0].split())
        assert committed == 7
    else:
        for _ in range(5):
            assert proc.stdout.readline(), "the writer ended early"
        time.sleep(random.uniform(0, 0.05))  # somewhere in its loop, most likely inside a transaction
        proc.send_signal(signal.SIGKILL)
        committed = 5 + len(proc.communicate(timeout=60)[0].split())
    assert proc.returncode == -signal.SIGKILL  # reaped: its pid is gone
    if not is_url(location):
        with sqlite3.connect(location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()
    with Store(location) as store:
        # every transaction whole or absent: full batches of 500 points and 20 samples, in order
        points = sql(
            store, "SELECT step / 50, COUNT(*) FROM curves WHERE run_id = 'doomed' GROUP BY step / 50 ORDER BY step / 50"
        )
        batches = [b for b, _ in points]
        assert batches == list(range(len(batches))) and all(n == 500 for _, n in points) and len(batches) >= committed
        samples = store.samples("doomed")
        assert [s["batch"] for s in samples] == [b for b in range(len(samples) // 20) for _ in range(20)]
        assert len(samples) // 20 in (len(batches), len(batches) - 1)
        if die_in:
            assert len(batches) == 7 and len(samples) == 7 * 20  # the 8th curve batch died with its transaction
        assert store.get_run("doomed").status == "running"
        assert store.interrupt_orphans() == ["doomed"]
        doomed = store.get_run("doomed")
        assert doomed.status == "interrupted" and f"pid {proc.pid}" in doomed.error
        assert store.get_run(done).metrics == {"eval/gold": 1.0} and store.metrics_frame()["run_id"].tolist() == [done]
