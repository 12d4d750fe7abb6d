"""The results store: runs, training curves, metrics and samples, in an SQLite file (the default:
a plain path) or a PostgreSQL database (``--store postgresql://user@host/db``), through one
SQLAlchemy Core code path.

Every record a leaderboard is built from lives here (see :func:`Store.metrics_frame`):

- ``runs``    — one row per run: its full run spec (JSON) and the spec's two keys (``spec_key``:
  everything but the seed; ``experiment_key``: also without the code version), status, timings,
  the budget used, the manifest (packages, hardware), the process that ran it (pid, host, start
  time) and its last heartbeat;
- ``curves``  — ``(run_id, step, key) -> value``, logged while training;
- ``metrics`` — final evaluation ``(run_id, key) -> value`` with each metric's ``higher_is_better``;
- ``samples`` — a few evaluated responses per run, for eyeballing reward hacking.

NaN is stored as NULL on both backends. A (spec_key, seed) is finished at most once:
:meth:`Store.claim_run` refuses a second claim while one is finished or running, and a partial
unique index backs that up. Several processes (a sweep's workers; with PostgreSQL, on several
machines) may write to one store at once, and every write is a single transaction, so a crash,
kill -9 or Ctrl-C never leaves half a write behind. On SQLite the file is in WAL mode and writers
queue for its lock (up to 30 s); on PostgreSQL a claim takes an advisory lock on its (key, seed).

A ``running`` run whose process died is marked ``interrupted`` by :meth:`Store.interrupt_orphans`
or by the next claim of its (key, seed): on this host when its pid is gone (or now names another
process); on another host when its heartbeat (:meth:`Store.heartbeat`, sent while it trains) is
older than :data:`STALE_AFTER_S`. :meth:`Store.mark_interrupted` releases one by hand
(``harness runs --mark-interrupted RUN``). SQLite files of schema 1 and 2 are migrated on open.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import re
import socket
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.schema import CreateTable

from harness.errors import FaultError, UsageError, did_you_mean
from harness.running.spec import RunSpec

SCHEMA_VERSION = 3
STATUSES = ("running", "finished", "failed", "interrupted")
BUSY_TIMEOUT_S = 30.0
#: a ``running`` run on another host whose last heartbeat is older than this is presumed dead
STALE_AFTER_S = 600.0
#: spec keys of runs migrated from a schema-1 store start with this (their specs are partial)
LEGACY_PREFIX = "legacy-"
#: what ``--store`` takes, for error messages
SUPPORTED_STORES = "a file path (SQLite), sqlite:///PATH, or postgresql://USER@HOST[:PORT]/DB"

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

# Byte order on PostgreSQL, as SQLite's: ORDER BY and key prefixes agree on both backends,
# whatever the server's locale.
_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_ONE_FINISHED = sa.text(f"status = 'finished' AND spec_key NOT LIKE '{LEGACY_PREFIX}%'")

_metadata = sa.MetaData()
_versions = sa.Table("schema_version", _metadata, sa.Column("version", sa.Integer, nullable=False))
_runs = sa.Table(
    "runs",
    _metadata,
    sa.Column("run_id", _TEXT, primary_key=True),
    sa.Column("name", _TEXT, nullable=False),
    sa.Column("spec", _TEXT, nullable=False),  # JSON: the full run spec (harness.running.spec.RunSpec)
    sa.Column("spec_key", _TEXT, nullable=False),  # the spec without its seed
    sa.Column("experiment_key", _TEXT, nullable=False),  # the spec without its seed and code version
    sa.Column("code_version", _TEXT, nullable=False),
    sa.Column("benchmark", _TEXT, nullable=False),
    sa.Column("algorithm", _TEXT, nullable=False),
    sa.Column("reward_model", _TEXT, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("status", _TEXT, nullable=False),
    sa.Column("error", _TEXT),
    sa.Column("created_at", _TEXT, nullable=False),  # ISO-8601 UTC, as every time here
    sa.Column("started_at", _TEXT, nullable=False),
    sa.Column("finished_at", _TEXT),
    sa.Column("wall_seconds", sa.Float),
    sa.Column("budget_used", _TEXT),  # JSON
    sa.Column("manifest", _TEXT, nullable=False),  # JSON: code version, package versions, hardware
    sa.Column("run_dir", _TEXT),
    sa.Column("pid", sa.BigInteger),  # the process that ran it, on host,
    sa.Column("host", _TEXT),
    sa.Column("process_start", _TEXT),  # started at this time (tells a reused pid apart)
    sa.Column("heartbeat_at", _TEXT),  # its last sign of life (schema 3; NULL: an older harness)
    sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="runs_status"),
)
sa.Index("runs_created", _runs.c.created_at)
sa.Index("runs_key", _runs.c.spec_key, _runs.c.seed)
sa.Index("runs_experiment", _runs.c.experiment_key)
sa.Index(
    "runs_one_finished", _runs.c.spec_key, _runs.c.seed, unique=True, sqlite_where=_ONE_FINISHED, postgresql_where=_ONE_FINISHED
)


def _run_fk() -> sa.Column:
    return sa.Column("run_id", _TEXT, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True)


_curves = sa.Table(
    "curves",
    _metadata,
    _run_fk(),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("key", _TEXT, primary_key=True),
    sa.Column("value", sa.Float),  # NULL stands for NaN
    sqlite_with_rowid=False,
)
_metrics = sa.Table(
    "metrics",
    _metadata,
    _run_fk(),
    sa.Column("key", _TEXT, primary_key=True),
    sa.Column("value", sa.Float),  # NULL stands for NaN
    sa.Column("higher_is_better", sa.Integer),  # NULL: unknown
    sqlite_with_rowid=False,
)
_samples = sa.Table(
    "samples",
    _metadata,
    _run_fk(),
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("prompt", _TEXT, nullable=False),
    sa.Column("response", _TEXT, nullable=False),
    sa.Column("gold", sa.Float),
    sa.Column("proxy", sa.Float),
    sa.Column("extra", _TEXT, nullable=False),  # JSON: every other key of the sample
)

# Upserts (a repeated key overwrites): ON CONFLICT reads the same on SQLite and PostgreSQL.
_UPSERT_CURVE = sa.text(
    "INSERT INTO curves (run_id, step, key, value) VALUES (:run_id, :step, :key, :value) "
    "ON CONFLICT (run_id, step, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_METRIC = sa.text(
    "INSERT INTO metrics (run_id, key, value, higher_is_better) VALUES (:run_id, :key, :value, :higher_is_better) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, higher_is_better = excluded.higher_is_better"
)

_JSON_COLUMNS = ("budget_used", "manifest")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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
    heartbeat_at: str | None = None
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


def is_url(location: str | Path) -> bool:
    """Whether ``--store`` names a database URL (``scheme://…``) rather than an SQLite file."""
    return isinstance(location, str) and bool(_URL_RE.match(location))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _dumps(value: Any) -> str | None:
    # default=str: a stray Path or enum in a config is recorded, not fatal at the end of a run.
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _real(value: Any) -> float | None:
    """A float for a REAL column; NaN becomes NULL (SQLite cannot hold NaN; PostgreSQL would, but
    both backends read back the same)."""
    x = float(value)
    return None if math.isnan(x) else x


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class _Tx:
    """The connection of one write transaction (see :meth:`Store._write`). ``execute`` takes a
    SQLAlchemy statement, or a string of the driver's SQL with its parameters (``?`` on SQLite)
    whose errors are the driver's own (``sqlite3.IntegrityError``): a hand repair, or a test."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult:
        if not isinstance(statement, str):
            return self.conn.execute(statement, parameters)
        try:
            return self.conn.exec_driver_sql(statement, parameters or ())
        except sa.exc.DBAPIError as e:
            raise e.orig from None


class Store:
    """The results store at ``path``: an SQLite file (created with its schema when missing), or a
    database URL (``postgresql://user@host/db``; its tables are created when missing).

    Each call checks a connection out of a small pool and returns it; use an object from the
    thread that made it. ``with Store(p) as s:`` closes it on exit.
    """

    def __init__(self, path: str | Path):
        url, self.path = _parse_location(path)
        self._dialect = url.get_backend_name()
        try:
            if self._dialect == "sqlite":
                if self.path.is_dir():
                    raise UsageError(
                        f"the store {self.path} is a directory; --store takes an SQLite file (e.g. {self.path / 'store.sqlite'}) or a database URL"
                    )
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _check_foreign_file(self.path)  # before the engine's first connection switches the file to WAL
                self._engine = _sqlite_engine(url)
            else:
                self._engine = _server_engine(url, self.path)
        except (FileExistsError, NotADirectoryError) as e:  # a file where a folder of the path should be: a mistake
            raise UsageError(f"cannot open the store {self.path}: {e.strerror or e}") from None
        except OSError as e:  # a folder that cannot be made or written: the environment's fault
            raise FaultError(f"cannot open the store {self.path}: {e.strerror or e}") from None
        try:
            self._ensure_schema()
        except sa.exc.DBAPIError as e:
            self._engine.dispose()
            raise self._open_error(e.orig) from None
        except sqlite3.DatabaseError as e:  # raised by the connect hook, before SQLAlchemy wraps it
            self._engine.dispose()
            raise self._open_error(e) from None
        except BaseException:
            self._engine.dispose()
            raise

    def _open_error(self, error: BaseException) -> UsageError | FaultError:
        """One line for a database error while opening the store (``error``: the driver's): a file
        that is no database is the command's mistake; a store that cannot be reached or opened is
        the environment's fault."""
        if getattr(error, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return UsageError(f"{self.path} is not a harness store: it is not an SQLite database ({error})")
        if self._dialect != "sqlite" and getattr(error, "sqlstate", None) is None:  # no server's answer: unreachable
            return FaultError(f"cannot connect to the store {self.path}: {_one_line(error)}")
        return FaultError(f"cannot open the store {self.path}: {_one_line(error)}")

    # -------------------------------------------------------------------------
    # plumbing
    # -------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self._read() as conn:
            version = self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        if version == 1:
            self._migrate_from_1()
            return
        with self._write() as tx:  # re-checked under the lock: another process may have won
            self._lock(tx, "schema")
            version = self._schema_version(tx.conn)
            if version is None:
                _metadata.create_all(tx.conn)
                tx.execute(_versions.insert().values(version=SCHEMA_VERSION))
            elif version == 2:
                tx.execute(sa.text("ALTER TABLE runs ADD COLUMN heartbeat_at TEXT"))
                tx.execute(_versions.update().values(version=SCHEMA_VERSION))
            elif version != SCHEMA_VERSION:
                raise UsageError(
                    f"{self.path} is a harness store of schema version {version}; this harness reads version {SCHEMA_VERSION}"
                )

    def _migrate_from_1(self) -> None:
        """Schema 1 (SQLite only) stored a run's parts as columns, without a spec: each row keeps
        everything it had, with a legacy spec rebuilt from those columns (no evaluation settings
        were recorded, and the code version is the manifest's commit), so legacy runs form their
        own rows."""
        with self._write(foreign_keys=False) as tx:  # the table swap below must not cascade
            if self._schema_version(tx.conn) != 1:
                return  # another process migrated it meanwhile
            new = _runs.to_metadata(sa.MetaData(), name="runs_new")
            tx.execute(CreateTable(new))  # the table alone: the indexes keep their names, made below
            rows = [_legacy_row(dict(row)) for row in tx.execute(sa.text("SELECT * FROM runs")).mappings()]
            if rows:
                tx.execute(new.insert(), rows)
            tx.execute(sa.text("DROP TABLE runs"))
            tx.execute(sa.text("ALTER TABLE runs_new RENAME TO runs"))
            for index in _runs.indexes:
                index.create(tx.conn)
            tx.execute(_versions.update().values(version=SCHEMA_VERSION))

    def _schema_version(self, conn: Connection) -> int | None:
        tables = set(sa.inspect(conn).get_table_names())
        if "schema_version" not in tables:
            if tables:
                raise UsageError(f"{self.path} is not a harness store: it holds other tables ({', '.join(sorted(tables))})")
            return None
        version = conn.execute(sa.select(_versions.c.version)).scalar()
        return None if version is None else int(version)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reading; its transaction ends (rolled back) on exit."""
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, foreign_keys: bool = True) -> Iterator[_Tx]:
        """One write transaction: committed on success; any exception, KeyboardInterrupt included,
        rolls the whole of it back. On SQLite it begins IMMEDIATE (see :func:`_sqlite_engine`):
        the write lock is taken up front, so concurrent writers queue on the busy timeout instead
        of failing on a read-to-write lock upgrade."""
        with self._engine.connect() as conn:
            conn.execution_options(harness_write=True)
            driver = conn.connection.driver_connection if self._dialect == "sqlite" and not foreign_keys else None
            if driver is not None:  # a no-op inside a transaction: switched before it begins
                driver.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    yield _Tx(conn)
            finally:
                if driver is not None:
                    driver.execute("PRAGMA foreign_keys = ON")

    def _lock(self, tx: _Tx, *key: Any) -> None:
        """Serialise this transaction with every other one that locks ``key``, until it ends. On
        SQLite every write transaction already holds the database's one write lock."""
        if self._dialect == "postgresql":
            digest = hashlib.sha256(json.dumps(key).encode()).digest()
            tx.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)})

    def close(self) -> None:
        self._engine.dispose()

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
        whose process is gone (see :meth:`interrupt_orphans`) is marked ``interrupted`` first."""
        now = _now()
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
            "created_at": now,
            "started_at": now,
            "manifest": _dumps(manifest),
            "run_dir": None if run_dir is None else str(run_dir),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": _process_start(os.getpid()),
            "heartbeat_at": now,
        }
        with self._write() as tx:
            self._lock(tx, spec.key, int(spec.seed))
            holders = tx.execute(
                sa.select(_runs)
                .where(_runs.c.spec_key == spec.key, _runs.c.seed == int(spec.seed), _runs.c.status.in_(("finished", "running")))
                .order_by(_runs.c.status, _runs.c.created_at)
            ).mappings().all()  # fmt: skip
            for holder in holders:
                if holder["status"] == "running" and _interrupt_if_orphaned(tx, holder, STALE_AFTER_S):
                    continue
                return Claim(False, self._records(tx, [holder])[0])
            try:
                tx.execute(*_insert(_runs, row))
            except sa.exc.IntegrityError:
                raise UsageError(f"run id '{run_id}' already exists in {self.path}") from None
        return Claim(True)

    def heartbeat(self, run_id: str) -> None:
        """Record that ``run_id``'s process is alive, now (one UPDATE): a run on another host is
        presumed dead once its heartbeat is older than :data:`STALE_AFTER_S`."""
        with self._write() as tx:
            if tx.execute(_runs.update().where(_runs.c.run_id == run_id).values(heartbeat_at=_now())).rowcount == 0:
                raise self._no_run(run_id)

    def interrupt_orphans(self, stale_after_s: float = STALE_AFTER_S) -> list[str]:
        """Mark ``interrupted`` every ``running`` run whose process is gone — runs left behind by
        kill -9 or a crash of the machine: on this host, no such pid (or the pid now names another
        process); on another host, no heartbeat for ``stale_after_s`` seconds (a run by an older
        harness, with no heartbeat at all, cannot be judged and is left alone). The CLI calls it
        whenever it opens a store for runs or listings; returns their ids."""
        with self._write() as tx:
            rows = tx.execute(sa.select(_runs).where(_runs.c.status == "running")).mappings().all()
            return [row["run_id"] for row in rows if _interrupt_if_orphaned(tx, row, stale_after_s)]

    def mark_interrupted(self, run_id: str, reason: str) -> RunRecord:
        """Mark a ``running`` run ``interrupted`` (a run whose process is known to be gone, e.g. on
        another host); its (key, seed) can then be run again. Any other status is left alone."""
        run = self.get_run(run_id)
        if run.status != "running":
            raise UsageError(f"run {run.run_id} is {run.status}, not running: nothing to mark")
        with self._write() as tx:
            tx.execute(_interrupt(run.run_id, reason))
        return self.get_run(run.run_id)

    def finished_run(self, spec: RunSpec) -> RunRecord | None:
        """The finished run of ``spec``'s (key, seed), if there is one."""
        query = (
            sa.select(_runs)
            .where(_runs.c.spec_key == spec.key, _runs.c.seed == int(spec.seed), _runs.c.status == "finished")
            .order_by(_runs.c.created_at.desc())
            .limit(1)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
            return self._records(conn, rows)[0] if rows else None

    def log_curve(self, run_id: str, points: list[tuple[int, Mapping[str, float]]]) -> None:
        """Record a run's training curve, ``[(step, {key: value})]``, in one transaction (a
        repeated (step, key) overwrites)."""
        rows = [
            {"run_id": run_id, "step": int(step), "key": key, "value": _real(value)}
            for step, values in points
            for key, value in values.items()
        ]
        if not rows:
            return
        try:
            with self._write() as tx:
                _executemany(tx, _UPSERT_CURVE, rows)
        except sa.exc.IntegrityError:  # the foreign key: no such run
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
        wall_seconds: float | None = None,
    ) -> str:
        """Close a run: set its status, finish time and wall time, and store its final metrics,
        all in one transaction. ``higher_is_better`` maps metric keys to their direction;
        ``wall_seconds``, when given, is the run's own measure (a Ray worker's: the driver claims
        the run only once it is done), else the time since the claim.

        Returns the status stored: ``failed`` instead of ``finished`` when another run finished
        the same (key, seed) first (only possible if a stale claim was taken over)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        hib = higher_is_better or {}
        try:
            with self._write() as tx:
                started = tx.execute(
                    sa.select(_runs.c.started_at).where(_runs.c.run_id == run_id).with_for_update(key_share=True)
                ).scalar()
                if started is None:
                    raise self._no_run(run_id)
                finished = _now()
                wall = wall_seconds if wall_seconds is not None else (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
                tx.execute(
                    _runs.update()
                    .where(_runs.c.run_id == run_id)
                    .values(status=status, error=error, finished_at=finished, wall_seconds=wall, budget_used=_dumps(budget_used))
                )
                # Built inside the transaction: a value that fails to convert rolls back the status too.
                rows = [
                    {"run_id": run_id, "key": key, "value": _real(value), "higher_is_better": None if hib.get(key) is None else int(bool(hib[key]))}
                    for key, value in (metrics or {}).items()
                ]  # fmt: skip
                if rows:
                    _executemany(tx, _UPSERT_METRIC, rows)
        except sa.exc.IntegrityError:  # the partial unique index: another run finished this (key, seed)
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
        if not samples:
            return
        with self._write() as tx:
            # The run's row locked (PostgreSQL; SQLite's write lock covers it): two writers of one
            # run's samples cannot both count from the same last index. NO KEY: other writers'
            # foreign-key checks on the row (curves, metrics) pass.
            if (
                tx.execute(sa.select(_runs.c.run_id).where(_runs.c.run_id == run_id).with_for_update(key_share=True)).first()
                is None
            ):
                raise self._no_run(run_id)
            start = tx.execute(
                sa.select(sa.func.coalesce(sa.func.max(_samples.c.idx) + 1, 0)).where(_samples.c.run_id == run_id)
            ).scalar()
            rows = []
            for i, sample in enumerate(samples):
                gold, proxy = sample.get("gold"), sample.get("proxy")
                rows.append({
                    "run_id": run_id, "idx": start + i, "prompt": str(sample["prompt"]), "response": str(sample["response"]),
                    "gold": None if gold is None else _real(gold), "proxy": None if proxy is None else _real(proxy),
                    "extra": _dumps({k: v for k, v in sample.items() if k not in ("prompt", "response", "gold", "proxy")}),
                })  # fmt: skip
            _executemany(tx, _samples.insert(), rows)

    # -------------------------------------------------------------------------
    # reading
    # -------------------------------------------------------------------------

    def _records(self, conn: Connection | _Tx, rows: Sequence[Mapping[str, Any]]) -> list[RunRecord]:
        records = []
        for row in rows:
            data = dict(row)
            for col in _JSON_COLUMNS:
                data[col] = None if data[col] is None else json.loads(data[col])
            data["spec"] = RunSpec.from_dict(json.loads(data["spec"]))
            records.append(RunRecord(**data))
        by_id = {r.run_id: r for r in records}
        ids = list(by_id)
        for chunk in range(0, len(ids), 5000):  # well under SQLite's limit on bound parameters
            query = sa.select(_metrics).where(_metrics.c.run_id.in_(ids[chunk : chunk + 5000]))
            for m in conn.execute(query).mappings():
                record = by_id[m["run_id"]]
                record.metrics[m["key"]] = _float(m["value"])
                if m["higher_is_better"] is not None:
                    record.higher_is_better[m["key"]] = bool(m["higher_is_better"])
        return records

    def get_run(self, run_id: str) -> RunRecord:
        """The run with id ``run_id``, or the only one whose id starts with it."""
        with self._read() as conn:
            rows = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).mappings().all()
            if not rows and run_id:
                rows = conn.execute(
                    sa.select(_runs).where(_starts_with(_runs.c.run_id, run_id)).order_by(_runs.c.created_at, _runs.c.run_id)
                ).mappings().all()  # fmt: skip
            if not rows:
                raise self._no_run(run_id)
            if len(rows) > 1:
                matches = ", ".join(f"{r['run_id']} ({r['name']})" for r in rows[:10])
                more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
                raise UsageError(f"run id prefix '{run_id}' is ambiguous: it matches {matches}{more}")
            return self._records(conn, rows)[0]

    def list_runs(
        self, *, benchmark: str | None = None, algorithm: str | None = None, status: str | None = None, key: str | None = None
    ) -> list[RunRecord]:
        """Runs matching every filter given, oldest first. ``key``: a prefix of the spec key or
        of the experiment key (``harness runs`` shows both)."""
        if status is not None and status not in STATUSES:
            raise UsageError(f"unknown status {status!r}{did_you_mean(status, STATUSES)}; valid: {', '.join(STATUSES)}")
        query = sa.select(_runs).where(*_filters(benchmark=benchmark, algorithm=algorithm, status=status))
        if key:
            query = query.where(sa.or_(_starts_with(_runs.c.spec_key, key), _starts_with(_runs.c.experiment_key, key)))
        with self._read() as conn:
            return self._records(conn, conn.execute(query.order_by(_runs.c.created_at, _runs.c.run_id)).mappings().all())

    def curves(self, run_id: str) -> pd.DataFrame:
        """The training curves of a run, wide: a ``step`` column and one column per key."""
        query = (
            sa.select(_curves.c.step, _curves.c.key, _curves.c.value)
            .where(_curves.c.run_id == run_id)
            .order_by(_curves.c.step, _curves.c.key)
        )
        with self._read() as conn:
            long = _frame(conn.execute(query))
        if long.empty:
            return pd.DataFrame({"step": pd.Series(dtype="int64")})
        wide = long.pivot(index="step", columns="key", values="value").astype("float64").reset_index()
        wide.columns.name = None
        return wide

    def metrics(self, run_id: str) -> dict[str, float]:
        """The final metrics of a run (NaN where NaN was stored)."""
        query = sa.select(_metrics.c.key, _metrics.c.value).where(_metrics.c.run_id == run_id).order_by(_metrics.c.key)
        with self._read() as conn:
            return {key: _float(value) for key, value in conn.execute(query)}

    def samples(self, run_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """A run's samples in the order they were added, as the dicts that were given."""
        s = _samples.c
        query = sa.select(s.prompt, s.response, s.gold, s.proxy, s.extra).where(s.run_id == run_id).order_by(s.idx)
        if limit is not None and limit >= 0:  # a negative limit, as SQLite's: no limit
            query = query.limit(int(limit))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [{"prompt": p, "response": r, "gold": _float(g), "proxy": _float(x), **json.loads(e)} for p, r, g, x, e in rows]

    def metrics_frame(self, *, benchmark: str | None = None, status: str | None = "finished") -> pd.DataFrame:
        """One row per run (``status=None``: any status) with :data:`RUN_FRAME_COLUMNS` plus one
        float column per metric key; ``spec`` holds the decoded :class:`RunSpec`.
        ``frame.attrs["higher_is_better"]`` maps metric keys to their direction, where the runs
        recorded one."""
        where = _filters(benchmark=benchmark, status=status)
        cols = [c for c in RUN_FRAME_COLUMNS if c in _runs.c]
        with self._read() as conn:
            runs_frame = _frame(
                conn.execute(sa.select(*(_runs.c[c] for c in cols)).where(*where).order_by(_runs.c.created_at, _runs.c.run_id))
            )
            m = _metrics.c
            long = _frame(
                conn.execute(sa.select(m.run_id, m.key, m.value, m.higher_is_better).join_from(_metrics, _runs).where(*where))
            )
        runs_frame["spec"] = runs_frame["spec"].map(lambda text: RunSpec.from_dict(json.loads(text)))
        runs_frame["benchmark_version"] = [spec.benchmark.version for spec in runs_frame["spec"]]
        runs_frame["rm_is_oracle"] = [spec.reward_model.oracle for spec in runs_frame["spec"]]
        runs_frame["budget_used"] = runs_frame["budget_used"].map(lambda s: json.loads(s) if isinstance(s, str) else {})
        runs_frame["wall_seconds"] = runs_frame["wall_seconds"].astype("float64")
        runs_frame = runs_frame[list(RUN_FRAME_COLUMNS)]

        hib = {k: bool(v) for k, v in zip(long["key"], long["higher_is_better"]) if pd.notna(v)}
        if not long.empty:
            wide = long.pivot(index="run_id", columns="key", values="value").astype("float64")
            keys = sorted(k for k in wide.columns if k not in RUN_FRAME_COLUMNS)  # a clash would shadow a run column
            runs_frame = runs_frame.join(wide[keys], on="run_id")
        runs_frame.attrs["higher_is_better"] = hib
        return runs_frame


def _parse_location(location: str | Path) -> tuple[URL, Path | str]:
    """The SQLAlchemy URL of ``--store`` and how messages name it: a path (SQLite) or the URL
    without its password."""
    if not is_url(location):
        path = Path(location)
        return URL.create("sqlite", database=str(path)), path
    try:
        url = make_url(str(location))
    except (sa.exc.ArgumentError, ValueError) as e:  # ValueError: a port that is not a number
        hidden = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", str(location))
        raise UsageError(f"cannot parse the store URL {hidden} ({e}); --store takes {SUPPORTED_STORES}") from None
    shown = urllib.parse.unquote(url.render_as_string(hide_password=True))  # ?host=/tmp/… as typed
    backend = url.get_backend_name()
    if backend == "sqlite" and url.drivername.partition("+")[2] in ("", "pysqlite"):
        if not url.database or url.database == ":memory:":
            raise UsageError(f"the store URL {shown} names no file; --store takes {SUPPORTED_STORES}")
        return URL.create("sqlite", database=url.database), Path(url.database)
    if backend in ("postgresql", "postgres"):
        # SQLAlchemy's default driver is psycopg2; the extra installs psycopg (3). postgres:// is
        # libpq's spelling, unknown to SQLAlchemy.
        driver = url.drivername.partition("+")[2] or "psycopg"
        return url.set(drivername=f"postgresql+{driver}"), shown
    raise UsageError(f"unknown kind of store {url.drivername}:// in {shown}; --store takes {SUPPORTED_STORES}")


def _check_foreign_file(path: Path) -> None:
    """Refuse, without changing it, an existing SQLite file that is not a harness store (a read-only
    look: opening it through the engine would already switch it to WAL mode)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise UsageError(f"{path} is not a harness store: it is not an SQLite database ({e})") from None
        return  # anything else (locked, unreadable) is met, and reported, by the real open
    if tables and "schema_version" not in tables:
        raise UsageError(f"{path} is not a harness store: it holds other tables ({', '.join(sorted(tables))})")


def _sqlite_engine(url: URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver begins nothing: _begin below does
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        dbapi_conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against process crashes in WAL mode; only power loss can drop the
        # last commits, never corrupt the file.
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("harness_write") else "BEGIN")

    return engine


def _server_engine(url: URL, shown: str) -> sa.Engine:
    # Fail fast on a host that does not answer; pre-ping replaces a connection the server dropped
    # while a long run trained.
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, connect_args=connect_args)
    except ImportError as e:
        hint = (
            "pip install rlhf-harness[postgres]"
            if url.get_driver_name() == "psycopg"
            else f"pip install {e.name}, or use postgresql:// (psycopg: pip install rlhf-harness[postgres])"
        )
        raise UsageError(f"cannot open the store {shown}: its database driver ({e.name}) is not installed; {hint}") from None
    except sa.exc.NoSuchModuleError:
        raise UsageError(f"unknown database driver {url.drivername}:// in {shown}; --store takes {SUPPORTED_STORES}") from None


def _insert(table: sa.Table, row: dict[str, Any]) -> tuple[sa.Insert, dict[str, Any]]:
    return table.insert(), row


def _filters(**columns: Any) -> list[sa.ColumnElement[bool]]:
    return [_runs.c[col] == value for col, value in columns.items() if value is not None]


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    # Not LIKE: SQLite's ignores case, and a prefix may hold % or _.
    return sa.func.substr(column, 1, len(prefix)) == prefix


def _executemany(tx: _Tx, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
    """``statement`` once per row, compiled once and handed to the driver with plain values:
    SQLAlchemy's own per-row parameter handling made 20k curve points 3x slower to write."""
    compiled = statement.compile(dialect=tx.conn.dialect)
    params = list(map(operator.itemgetter(*compiled.positiontup), rows)) if compiled.positional else rows
    tx.conn.exec_driver_sql(compiled.string, params)


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    # Plain tuples: pandas probes each row's attributes, and a SQLAlchemy Row answers slowly.
    return pd.DataFrame.from_records([tuple(row) for row in result], columns=list(result.keys()), coerce_float=True)


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def _interrupt(run_id: str, reason: str) -> sa.Update:
    return (
        _runs.update()
        .where(_runs.c.run_id == run_id, _runs.c.status == "running")
        .values(status="interrupted", error=reason, finished_at=_now())
    )


def _interrupt_if_orphaned(tx: _Tx, row: Mapping[str, Any], stale_after_s: float) -> bool:
    """Mark the ``running`` ``row`` interrupted when its process is gone; whether it was."""
    reason = _orphaned(row, stale_after_s)
    if reason is not None:
        tx.execute(_interrupt(row["run_id"], reason))
    return reason is not None


def _orphaned(row: Mapping[str, Any], stale_after_s: float) -> str | None:
    """Why the process that holds a ``running`` row is gone, or None while it may still be running
    it. On this host the pid tells (a pid that now names another process — another start time:
    the pid was reused, e.g. after a container restart — is gone); elsewhere only the heartbeat."""
    pid, host = row["pid"], row["host"]
    if pid is None or host == socket.gethostname():
        if pid is not None and _pid_alive(pid, row["process_start"]):
            return None
        return f"its process (pid {pid} on {host}) ended without finishing the run"
    beat = row["heartbeat_at"]
    if beat is None:  # a run by a harness that sent no heartbeats: it cannot be judged from here
        return None
    silent = (datetime.now(timezone.utc) - datetime.fromisoformat(beat)).total_seconds()
    if silent <= stale_after_s:
        return None
    return (f"its process (pid {pid} on {host}) sent no heartbeat for {silent / 60:.0f} min (last at {beat}; "
            f"presumed dead after {stale_after_s / 60:g} min)")  # fmt: skip


def _pid_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _process_start(pid) in (None, started)


def _legacy_row(old: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 ``runs`` row as a current one (see :meth:`Store._migrate_from_1`)."""
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
        "run_dir": old["run_dir"], "pid": None, "host": None, "process_start": None, "heartbeat_at": None,
    }  # fmt: skip
