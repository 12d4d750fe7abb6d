"""What the store hands back: :class:`RunRecord` (one ``runs`` row, JSON decoded, with its final
metrics) and :class:`Claim`, and the conversions of values to and from their columns. Layer:
harness.store (imports harness.specs for RunSpec).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from harness.specs import RunSpec


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
