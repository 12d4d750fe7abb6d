"""Reading runs back: records, curves, metrics, samples, and the one-row-per-run frame a
leaderboard is built from (:meth:`ReadingMixin.metrics_frame`). A mixin of
:class:`harness.store.Store`. Layer: harness.store (imports harness.specs for RunSpec).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from harness.errors import UsageError, did_you_mean
from harness.specs import RunSpec
from harness.store.engines import _Tx
from harness.store.records import RunRecord, _float
from harness.store.schema import _JSON_COLUMNS, RUN_FRAME_COLUMNS, STATUSES, _curves, _metrics, _runs, _samples


class ReadingMixin:
    """Queries of a store (see the module docstring)."""

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


def _filters(**columns: Any) -> list[sa.ColumnElement[bool]]:
    return [_runs.c[col] == value for col, value in columns.items() if value is not None]


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    # Not LIKE: SQLite's ignores case, and a prefix may hold % or _.
    return sa.func.substr(column, 1, len(prefix)) == prefix


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    # Plain tuples: pandas probes each row's attributes, and a SQLAlchemy Row answers slowly.
    return pd.DataFrame.from_records([tuple(row) for row in result], columns=list(result.keys()), coerce_float=True)
