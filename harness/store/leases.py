"""Run leases: a (key, seed) claimed by one ``running`` run at a time, its holder's heartbeat, and
orphans — ``running`` runs whose process is gone — marked ``interrupted`` (by pid on this host,
by a stale heartbeat elsewhere). A mixin of :class:`harness.store.Store`. Layer: harness.store
(imports harness.processes and harness.specs, lower layers).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from harness.errors import UsageError
from harness.processes import pid_alive, process_start
from harness.store.engines import _Tx
from harness.store.records import Claim, RunRecord, _dumps, _now
from harness.store.schema import _runs

if TYPE_CHECKING:
    from harness.specs import RunSpec

#: a ``running`` run on another host whose last heartbeat is older than this is presumed dead
STALE_AFTER_S = 600.0


class LeasesMixin:
    """Claims, heartbeats and orphans (see the module docstring)."""

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
            "process_start": process_start(os.getpid()),
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


def _insert(table: sa.Table, row: dict[str, Any]) -> tuple[sa.Insert, dict[str, Any]]:
    return table.insert(), row


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
        if pid is not None and pid_alive(pid, row["process_start"]):
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
