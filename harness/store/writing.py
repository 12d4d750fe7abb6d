"""Writing runs: training curves, the final status and metrics, samples — each call one
transaction. A mixin of :class:`harness.store.Store`. Layer: harness.store.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from harness.store.engines import _Tx
from harness.store.records import _dumps, _now, _real
from harness.store.schema import _UPSERT_CURVE, _UPSERT_METRIC, STATUSES, _runs, _samples


class WritingMixin:
    """What a run writes after its claim (see the module docstring)."""

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
                wall = (
                    wall_seconds
                    if wall_seconds is not None
                    else (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
                )
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


def _executemany(tx: _Tx, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
    """``statement`` once per row, compiled once and handed to the driver with plain values:
    SQLAlchemy's own per-row parameter handling made 20k curve points 3x slower to write."""
    compiled = statement.compile(dialect=tx.conn.dialect)
    params = list(map(operator.itemgetter(*compiled.positiontup), rows)) if compiled.positional else rows
    tx.conn.exec_driver_sql(compiled.string, params)
