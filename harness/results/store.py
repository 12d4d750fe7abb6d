"""The results store: one embedded SQLite file holding runs, training curves, metrics and samples.

Every record a leaderboard is built from lives here (see :func:`Store.metrics_frame`):

- ``runs``    — one row per run: its full run spec (JSON) and the spec's two keys (``spec_key``:
  everything but the seed; ``experiment_key``: also without the code version), status, timings,
  the budget used, the manifest (packages, hardware) and the process that ran it;
- ``curves``  — ``(run_id, step, key) -> value``, logged while training;
- ``metrics`` — final evaluation ``(run_id, key) -> value`` with each metric's ``higher_is_better``;
- ``samples`` — a few evaluated responses per run, for eyeballing reward hacking.

A (spec_key, seed) is finished at most once: :meth:`Store.claim_run` refuses a second claim
while one is finished or running, and a unique index backs that up. Several processes (a sweep's
workers) may write to one store at once: the file is in WAL mode, writers wait up to 30 s for
the lock, and every write is a single transaction, so a crash or a Ctrl-C never leaves half a
write behind. A run whose process died on this host is marked ``interrupted`` when the next claim
for its (key, seed) finds it; one from another host cannot be checked from here
(:meth:`Store.mark_interrupted` releases it by hand: ``harness runs --mark-interrupted RUN``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UsageError, did_you_mean
from harness.running.spec import RunSpec

SCHEMA_VERSION = 2
STATUSES = ("running", "finished", "failed", "interrupted")
BUSY_TIMEOUT_S = 30.0
#: spec keys of runs migrated from a schema-1 store start with this (their specs are partial)
LEGACY_PREFIX = "legacy-"

#: The run columns of :meth:`Store.metrics_frame`; every other column there is a metric.
RUN_FRAME_COLUMNS = (
    "run_id",
    "created_at",
    "spec",
    "spec_key",
    "experiment_key",
    "code_version",
    "benchmark",
    "benchmark_version",
    "algorithm",
    "reward_model",
    "rm_is_oracle",
    "seed",
    "budget_used",
    "wall_seconds",
)

_RUNS_TABLE = """
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    spec           TEXT NOT NULL,  -- JSON: the full run spec (harness.running.spec.RunSpec)
    spec_key       TEXT NOT NULL,  -- the spec without its seed
    experiment_key TEXT NOT NULL,  -- the spec without its seed and code version
    code_version   TEXT NOT NULL,
    benchmark      TEXT NOT NULL,
    algorithm      TEXT NOT NULL,
    reward_model   TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    error          TEXT,
    created_at     TEXT NOT NULL,  -- ISO-8601 UTC
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    wall_seconds   REAL,
    budget_used    TEXT,           -- JSON
    manifest       TEXT NOT NULL,  -- JSON: code version, package versions, hardware
    run_dir        TEXT,
    pid            INTEGER,        -- the process that ran it, on host,
    host           TEXT,
    process_start  TEXT            -- started at this time (tells a reused pid apart)
)"""

_SCHEMA = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL);
{_RUNS_TABLE};
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_key ON runs (spec_key, seed);
CREATE INDEX runs_experiment ON runs (experiment_key);
CREATE UNIQUE INDEX runs_one_finished ON runs (spec_key, seed) WHERE status = 'finished' AND spec_key NOT LIKE '{LEGACY_PREFIX}%';
CREATE TABLE curves (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    key    TEXT NOT NULL,
    value  REAL,  -- NULL stands for NaN (SQLite cannot hold NaN)
    PRIMARY KEY (run_id, step, key)
) WITHOUT ROWID;
CREATE TABLE metrics (
    run_id           TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key              TEXT NOT NULL,
    value            REAL,  -- NULL stands for NaN
    higher_is_better INTEGER,  -- NULL: unknown
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE samples (
    run_id   TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    prompt   TEXT NOT NULL,
    response TEXT NOT NULL,
    gold     REAL,
    proxy    REAL,
    extra    TEXT NOT NULL,  -- JSON: every other key of the sample
    PRIMARY KEY (run_id, idx)
)
"""

_JSON_COLUMNS = ("budget_used", "manifest")


@dataclass
class RunRecord:
    """One row of ``runs``, JSON columns decoded, with the run's final metrics."""

    run_id: str
    name: str
    spec: RunSpec
    spec_key: str
    experiment_key: str
    code_version: str
    benchmark: str
    algorithm: str
    reward_model: str
    seed: int
    status: str
    error: str | None
    created_at: str
    started_at: str
    finished_at: str | None
    wall_seconds: float | None
    budget_used: dict[str, Any] | None
    manifest: dict[str, Any]
    run_dir: str | None
    pid: int | None
    host: str | None
    process_start: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    @property
    def algo_config(self) -> dict[str, Any]:
        return self.spec.algorithm.config

    @property
    def benchmark_version(self) -> str:
        return self.spec.benchmark.version

    @property
    def rm_is_oracle(self) -> bool:
        return self.spec.reward_model.oracle

    @property
    def budget(self) -> int:
        return self.spec.budget


@dataclass
class Claim:
    """What :meth:`Store.claim_run` found: ``claimed`` (a new ``running`` row is ours), or the
    finished or running run that already holds the (key, seed)."""

    claimed: bool
    holder: RunRecord | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _dumps(value: Any) -> str | None:
    # default=str: a stray Path or enum in a config is recorded, not fatal at the end of a run.
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _real(value: Any) -> float | None:
    """A float for a REAL column; NaN becomes NULL explicitly rather than by SQLite's accident."""
    x = float(value)
    return None if math.isnan(x) else x


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


class Store:
    """The results store at ``path`` (created with its schema when missing).

    One connection per object; use it from the thread that made it. ``with Store(p) as s:``
    closes it on exit.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are begun explicitly in _write (BEGIN IMMEDIATE).
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise UsageError(f"cannot open the store {self.path}: {e}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable against process crashes in WAL mode; only power loss can
            # drop the last commits, never corrupt the file.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._ensure_schema()
        except sqlite3.DatabaseError as e:
            self._conn.close()
            raise UsageError(f"{self.path} is not a harness store: {e}") from None
        except BaseException:
            self._conn.close()
            raise

    # -------------------------------------------------------------------------
    # plumbing
    # -------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._schema_version() == SCHEMA_VERSION:
            return
        if self._schema_version() == 1:
            self._migrate_from_1()
            return
        with self._write() as conn:  # re-checked under the lock: another process may have won
            version = self._schema_version()
            if version is None:
                # Statement by statement: executescript would commit the open transaction first.
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                raise UsageError(
                    f"{self.path} is a harness store of schema version {version}; this harness reads version {SCHEMA_VERSION}"
                )

    def _migrate_from_1(self) -> None:
        """Schema 1 stored a run's parts as columns, without a spec: each row keeps everything it
        had, with a legacy spec rebuilt from those columns (no evaluation settings were recorded,
        and the code version is the manifest's commit), so legacy runs form their own rows."""
        self._conn.execute("PRAGMA foreign_keys = OFF")  # the table swap below must not cascade
        try:
            with self._write() as conn:
                if self._schema_version() != 1:
                    return  # another process migrated it meanwhile
                conn.execute(_RUNS_TABLE.replace("CREATE TABLE runs", "CREATE TABLE runs_v2"))
                for row in conn.execute("SELECT * FROM runs").fetchall():
                    conn.execute(*_insert("runs_v2", _legacy_row(dict(row))))
                conn.execute("DROP TABLE runs")
                conn.execute("ALTER TABLE runs_v2 RENAME TO runs")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    if statement.strip().startswith("CREATE") and " INDEX " in statement:
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        finally:
            self._conn.execute("PRAGMA foreign_keys = ON")

    def _schema_version(self) -> int | None:
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise UsageError(f"{self.path} is not a harness store: it holds other tables ({', '.join(sorted(tables))})")
            return None
        row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        return None if row is None else int(row[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front, so concurrent writers
        queue on busy_timeout instead of failing on a read-to-write lock upgrade; any exception,
        KeyboardInterrupt included, rolls the whole transaction back."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _no_run(self, run_id: str) -> UsageError:
        return UsageError(f"no run '{run_id}' in {self.path}; `harness runs` lists them")

    # -------------------------------------------------------------------------
    # writing
    # -------------------------------------------------------------------------

    def claim_run(self, spec: RunSpec, *, run_id: str, name: str, manifest: dict[str, Any], run_dir: str | Path | None) -> Claim:
        """Record a new ``running`` run of ``spec`` unless its (key, seed) is already finished or
        running; one transaction, so two processes never both claim it. A ``running`` holder
        whose process is gone (same host: no such pid, or the pid now names another process) is
        marked ``interrupted`` first."""
        row = {
            "run_id": run_id,
            "name": name,
            "spec": _dumps(spec.to_dict()),
            "spec_key": spec.key,
            "experiment_key": spec.experiment_key,
            "code_version": spec.code_version,
            "benchmark": spec.benchmark.name,
            "algorithm": spec.algorithm.name,
            "reward_model": spec.reward_model.name,
            "seed": int(spec.seed),
            "status": "running",
            "created_at": _now(),
            "manifest": _dumps(manifest),
            "run_dir": None if run_dir is None else str(run_dir),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
        }
        row["started_at"] = row["created_at"]
        with self._write() as conn:
            holders = conn.execute(
                "SELECT * FROM runs WHERE spec_key = ? AND seed = ? AND status IN ('finished', 'running') ORDER BY status, created_at",
                (spec.key, int(spec.seed)),
            ).fetchall()
            for holder in holders:
                if holder["status"] == "running" and _interrupt_if_orphaned(conn, holder):
                    continue
                return Claim(False, self._records([holder])[0])
            try:
                conn.execute(*_insert("runs", row))
            except sqlite3.IntegrityError:
                raise UsageError(f"run id '{run_id}' already exists in {self.path}") from None
        return Claim(True)

    def interrupt_orphans(self) -> list[str]:
        """Mark ``interrupted`` every ``running`` run whose process is gone (on this host: no such
        pid, or the pid now names another process) — runs left behind by kill -9 or a crash of the
        machine. The CLI calls it whenever it opens a store for runs or listings; returns their ids."""
        with self._write() as conn:
            rows = conn.execute("SELECT * FROM runs WHERE status = 'running'").fetchall()
            return [row["run_id"] for row in rows if _interrupt_if_orphaned(conn, row)]

    def mark_interrupted(self, run_id: str, reason: str) -> RunRecord:
        """Mark a ``running`` run ``interrupted`` (a run whose process is known to be gone, e.g. on
        another host); its (key, seed) can then be run again. Any other status is left alone."""
        run = self.get_run(run_id)
        if run.status != "running":
            raise UsageError(f"run {run.run_id} is {run.status}, not running: nothing to mark")
        with self._write() as conn:
            conn.execute("UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? WHERE run_id = ? AND status = 'running'",
                         (reason, _now(), run.run_id))  # fmt: skip
        return self.get_run(run.run_id)

    def finished_run(self, spec: RunSpec) -> RunRecord | None:
        """The finished run of ``spec``'s (key, seed), if there is one."""
        rows = self._conn.execute(
            "SELECT * FROM runs WHERE spec_key = ? AND seed = ? AND status = 'finished' ORDER BY created_at DESC LIMIT 1",
            (spec.key, int(spec.seed)),
        ).fetchall()
        return self._records(rows)[0] if rows else None

    def log_curve(self, run_id: str, points: list[tuple[int, Mapping[str, float]]]) -> None:
        """Record a run's training curve, ``[(step, {key: value})]``, in one transaction (a
        repeated (step, key) overwrites)."""
        rows = [(run_id, int(step), key, _real(value)) for step, metrics in points for key, value in metrics.items()]
        try:
            with self._write() as conn:
                conn.executemany("INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:  # the foreign key: no such run
            raise self._no_run(run_id) from None

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: Mapping[str, float] | None = None,
        higher_is_better: Mapping[str, bool] | None = None,
        budget_used: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> str:
        """Close a run: set its status, finish time and wall time, and store its final metrics,
        all in one transaction. ``higher_is_better`` maps metric keys to their direction.

        Returns the status stored: ``failed`` instead of ``finished`` when another run finished
        the same (key, seed) first (only possible if a stale claim was taken over)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        hib = higher_is_better or {}
        try:
            with self._write() as conn:
                row = conn.execute("SELECT started_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise self._no_run(run_id)
                finished = _now()
                wall = (datetime.fromisoformat(finished) - datetime.fromisoformat(row["started_at"])).total_seconds()
                conn.execute(
                    "UPDATE runs SET status = ?, error = ?, finished_at = ?, wall_seconds = ?, budget_used = ? WHERE run_id = ?",
                    (status, error, finished, wall, _dumps(budget_used), run_id),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                    (
                        (run_id, key, _real(value), None if hib.get(key) is None else int(bool(hib[key])))
                        for key, value in (metrics or {}).items()
                    ),
                )
        except sqlite3.IntegrityError:
            if status != "finished":
                raise
            this = self.get_run(run_id)
            other = self.finished_run(this.spec)
            message = f"its (key, seed) was finished first by run {other.run_id if other else '?'}; these results are not kept"
            return self.finish_run(run_id, status="failed", budget_used=budget_used, error=message)
        return status

    def add_samples(self, run_id: str, samples: list[Mapping[str, Any]]) -> None:
        """Append samples: each has ``prompt`` and ``response``, optionally ``gold`` and
        ``proxy``; any other keys are kept as JSON."""

        def rows(start: int) -> Iterator[tuple]:
            for i, sample in enumerate(samples):
                extra = {k: v for k, v in sample.items() if k not in ("prompt", "response", "gold", "proxy")}
                gold, proxy = sample.get("gold"), sample.get("proxy")
                yield (
                    run_id,
                    start + i,
                    str(sample["prompt"]),
                    str(sample["response"]),
                    None if gold is None else _real(gold),
                    None if proxy is None else _real(proxy),
                    _dumps(extra),
                )

        try:
            with self._write() as conn:
                start = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
                conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows(start))
        except sqlite3.IntegrityError:
            raise self._no_run(run_id) from None

    # -------------------------------------------------------------------------
    # reading
    # -------------------------------------------------------------------------

    def _records(self, rows: list[sqlite3.Row]) -> list[RunRecord]:
        records = []
        for row in rows:
            data = dict(row)
            for col in _JSON_COLUMNS:
                data[col] = None if data[col] is None else json.loads(data[col])
            data["spec"] = RunSpec.from_dict(json.loads(data["spec"]))
            records.append(RunRecord(**data))
        by_id = {r.run_id: r for r in records}
        if by_id:
            marks = ", ".join("?" * len(by_id))
            for m in self._conn.execute(f"SELECT * FROM metrics WHERE run_id IN ({marks})", list(by_id)):
                record = by_id[m["run_id"]]
                record.metrics[m["key"]] = _float(m["value"])
                if m["higher_is_better"] is not None:
                    record.higher_is_better[m["key"]] = bool(m["higher_is_better"])
        return records

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id ``run_id``, or the only one whose id starts with it."""
        rows = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchall()
        if not rows and run_id:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY created_at, run_id", (len(run_id), run_id)
            ).fetchall()
        if not rows:
            raise self._no_run(run_id)
        if len(rows) > 1:
            matches = ", ".join(f"{r['run_id']} ({r['name']})" for r in rows[:10])
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            raise UsageError(f"run id prefix '{run_id}' is ambiguous: it matches {matches}{more}")
        return self._records(rows)[0]

    def list_runs(
        self, *, benchmark: str | None = None, algorithm: str | None = None, status: str | None = None, key: str | None = None
    ) -> list[RunRecord]:
        """Runs matching every filter given, oldest first. ``key``: a prefix of the spec key or
        of the experiment key (``harness runs`` shows both)."""
        if status is not None and status not in STATUSES:
            raise UsageError(f"unknown status {status!r}{did_you_mean(status, STATUSES)}; valid: {', '.join(STATUSES)}")
        filters = {"benchmark": benchmark, "algorithm": algorithm, "status": status}
        where = [f"{col} = :{col}" for col, value in filters.items() if value is not None]
        if key:
            where.append("(substr(spec_key, 1, :n) = :key OR substr(experiment_key, 1, :n) = :key)")
            filters.update(key=key, n=len(key))
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at, run_id"
        return self._records(self._conn.execute(sql, filters).fetchall())

    def curves(self, run_id: str) -> pd.DataFrame:
        """The training curves of a run, wide: a ``step`` column and one column per key."""
        sql = "SELECT step, key, value FROM curves WHERE run_id = ? ORDER BY step, key"
        long = pd.read_sql_query(sql, self._conn, params=(run_id,))
        if long.empty:
            return pd.DataFrame({"step": pd.Series(dtype="int64")})
        wide = long.pivot(index="step", columns="key", values="value").astype("float64").reset_index()
        wide.columns.name = None
        return wide

    def metrics(self, run_id: str) -> dict[str, float]:
        """The final metrics of a run (NaN where NaN was stored)."""
        rows = self._conn.execute("SELECT key, value FROM metrics WHERE run_id = ? ORDER BY key", (run_id,))
        return {key: _float(value) for key, value in rows}

    def samples(self, run_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A run's samples in the order they were added, as the dicts that were given."""
        rows = self._conn.execute(
            "SELECT prompt, response, gold, proxy, extra FROM samples WHERE run_id = ? ORDER BY idx LIMIT ?",
            (run_id, -1 if limit is None else int(limit)),
        )
        return [{"prompt": p, "response": r, "gold": _float(g), "proxy": _float(x), **json.loads(e)} for p, r, g, x, e in rows]

    def metrics_frame(self, *, benchmark: str | None = None, status: str | None = "finished") -> pd.DataFrame:
        """One row per run (``status=None``: any status) with :data:`RUN_FRAME_COLUMNS` plus one
        float column per metric key; ``spec`` holds the decoded :class:`RunSpec`.
        ``frame.attrs["higher_is_better"]`` maps metric keys to their direction, where the runs
        recorded one."""
        filters = {"benchmark": benchmark, "status": status}
        where = " AND ".join(f"{col} = :{col}" for col, value in filters.items() if value is not None)
        where = f"WHERE {where}" if where else ""
        cols = "run_id, created_at, spec, spec_key, experiment_key, code_version, benchmark, algorithm, reward_model, seed, budget_used, wall_seconds"
        runs = pd.read_sql_query(f"SELECT {cols} FROM runs {where} ORDER BY created_at, run_id", self._conn, params=filters)
        runs["spec"] = runs["spec"].map(lambda text: RunSpec.from_dict(json.loads(text)))
        runs["benchmark_version"] = [spec.benchmark.version for spec in runs["spec"]]
        runs["rm_is_oracle"] = [spec.reward_model.oracle for spec in runs["spec"]]
        runs["budget_used"] = runs["budget_used"].map(lambda s: json.loads(s) if isinstance(s, str) else {})
        runs["wall_seconds"] = runs["wall_seconds"].astype("float64")
        runs = runs[list(RUN_FRAME_COLUMNS)]

        metrics = pd.read_sql_query(
            f"SELECT m.run_id, m.key, m.value, m.higher_is_better FROM metrics m JOIN runs USING (run_id) {where}",
            self._conn,
            params=filters,
        )
        hib = {k: bool(v) for k, v in zip(metrics["key"], metrics["higher_is_better"]) if pd.notna(v)}
        if not metrics.empty:
            wide = metrics.pivot(index="run_id", columns="key", values="value").astype("float64")
            keys = sorted(k for k in wide.columns if k not in RUN_FRAME_COLUMNS)  # a clash would shadow a run column
            runs = runs.join(wide[keys], on="run_id")
        runs.attrs["higher_is_better"] = hib
        return runs


def _insert(table: str, row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def _interrupt_if_orphaned(conn: sqlite3.Connection, row: sqlite3.Row) -> bool:
    """Mark the ``running`` ``row`` interrupted when its process is gone; whether it was."""
    if _process_alive(row["pid"], row["host"], row["process_start"]):
        return False
    conn.execute("UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? WHERE run_id = ? AND status = 'running'",
                 (f"its process (pid {row['pid']} on {row['host']}) ended without finishing the run", _now(), row["run_id"]))  # fmt: skip
    return True


def _process_alive(pid: int | None, host: str | None, started: str | None) -> bool:
    """Whether the process that holds a ``running`` row may still be running it. Only a process
    on this host can be checked; one elsewhere counts as alive. A pid that now names another
    process (another start time: the pid was reused, e.g. after a container restart) is gone."""
    if pid is None:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _process_start(pid) in (None, started)


def _legacy_row(old: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 ``runs`` row as a schema-2 one (see :meth:`Store._migrate_from_1`)."""
    manifest = json.loads(old["manifest"] or "{}")
    git = manifest.get("git") or {}
    commit = (git.get("commit") or "unknown")[:12] + ("+dirty" if git.get("dirty") else "")
    budget = json.loads(old["budget"] or "{}")
    spec = RunSpec.from_dict({
        "benchmark": {"name": old["benchmark"], "config": json.loads(old["benchmark_config"]), "version": old["benchmark_version"] or ""},
        "algorithm": {"name": old["algorithm"], "config": json.loads(old["algo_config"])},
        "reward_model": {"name": old["reward_model"] or "", "config": json.loads(old["rm_config"]), "oracle": bool(old["rm_is_oracle"])},
        "budget": budget.get("episodes", 0),
        "evaluation": {},
        "code": {"harness": f"legacy {commit}"},
        "seed": old["seed"],
        "spec_version": 0,
    })  # fmt: skip
    return {
        "run_id": old["run_id"], "name": old["name"], "spec": _dumps(spec.to_dict()),
        "spec_key": LEGACY_PREFIX + spec.key, "experiment_key": LEGACY_PREFIX + spec.experiment_key,
        "code_version": spec.code_version, "benchmark": spec.benchmark.name, "algorithm": spec.algorithm.name,
        "reward_model": spec.reward_model.name, "seed": spec.seed, "status": old["status"], "error": old["error"],
        "created_at": old["created_at"], "started_at": old["started_at"], "finished_at": old["finished_at"],
        "wall_seconds": old["wall_seconds"], "budget_used": old["budget_used"], "manifest": old["manifest"],
        "run_dir": old["run_dir"], "pid": None, "host": None, "process_start": None,
    }  # fmt: skip
