"""The schema made or brought up to date when a store opens: created when missing, schema 2 given
its ``heartbeat_at`` column, schema 1 (SQLite only) rebuilt with a legacy spec per run. A mixin of
:class:`harness.store.Store`. Layer: harness.store (imports harness.specs for RunSpec).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from harness.errors import UsageError
from harness.specs import RunSpec
from harness.store.records import _dumps
from harness.store.schema import LEGACY_PREFIX, SCHEMA_VERSION, _metadata, _runs, _versions


class SchemaMixin:
    """Opening a store's schema (see the module docstring)."""

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
