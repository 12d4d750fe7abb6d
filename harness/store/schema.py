"""The store's schema: its version, the tables (``runs``, ``curves``, ``metrics``, ``samples``,
``schema_version``) and their indexes, and the upsert statements both backends share. Layer:
harness.store (imports sqlalchemy only; nothing of the harness).
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 3
STATUSES = ("running", "finished", "failed", "interrupted")
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
    sa.Column("spec", _TEXT, nullable=False),  # JSON: the full run spec (harness.specs.RunSpec)
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
