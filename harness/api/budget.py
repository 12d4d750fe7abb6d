"""The sample budget every optimizer spends, and the meter that enforces it.

Every response a run's training draws from a model through the LM toolkit is charged to the run's
:class:`Budget` — through ``ctx.sample`` (which charges before it samples) or through any sampler of
:mod:`harness.lm` called some other way (the samplers charge the active meter themselves) — and
every score of the proxy reward model counts as an RM query, through ``ctx.score`` or
``ctx.reward_model`` or a toolkit scorer called on the proxy's own network. The runner opens the
meter (:func:`metered`) around ``train`` only: evaluation and checkpoints are not the optimizer's.
A draw past the budget is :class:`BudgetExceeded`, naming where it was drawn: the run fails with
that reason, and no row records less than it used. Part of the contract (ground floor).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator


class BudgetExceeded(RuntimeError):
    """An optimizer asked for more episodes than its budget allows."""


@dataclass
class Budget:
    """The sample budget every optimizer gets: episodes = prompt–response pairs sampled from the
    policy during training. Proxy-RM queries are counted beside it (the runner counts every call
    of ``ctx.reward_model.score``)."""

    episodes: int
    episodes_used: int = 0
    rm_queries: int = 0

    @property
    def remaining(self) -> int:
        return self.episodes - self.episodes_used

    def spend(self, episodes: int, where: str = "") -> None:
        """Charge ``episodes`` sampled responses; more than :attr:`remaining` is an error (naming
        ``where`` they were drawn, when given)."""
        if episodes > self.remaining:
            at = f" ({where})" if where else ""
            raise BudgetExceeded(f"asked for {episodes} episodes{at} with {self.remaining} left of {self.episodes}")
        self.episodes_used += episodes

    def count_rm_queries(self, n: int) -> None:
        self.rm_queries += n

    def as_dict(self) -> dict[str, int]:
        return {"episodes": self.episodes, "episodes_used": self.episodes_used, "rm_queries": self.rm_queries}


@dataclass
class _Meter:
    budget: Budget
    #: the proxy's networks: a toolkit score of one of them is an RM query
    reward_networks: tuple[Any, ...] = ()
    #: > 0 inside an entry point that has charged (or counted) already: nested samplers do not again
    charged_depth: int = 0
    counted_depth: int = 0
    draws: dict[str, int] = field(default_factory=dict)


_active: _Meter | None = None


@contextmanager
def metered(budget: Budget, reward_networks: tuple[Any, ...] = ()) -> Iterator[Budget]:
    """Charge every toolkit sample drawn inside the ``with`` to ``budget`` and count every toolkit
    score of ``reward_networks`` as an RM query (the runner wraps ``train`` in it)."""
    global _active
    outer, _active = _active, _Meter(budget, tuple(reward_networks))
    try:
        yield budget
    finally:
        _active = outer


@contextmanager
def already_charged() -> Iterator[None]:
    """The caller charged the budget for what it is about to sample (``ctx.sample`` does): the
    toolkit samplers inside do not charge it again."""
    meter = _active
    if meter is None:
        yield
        return
    meter.charged_depth += 1
    try:
        yield
    finally:
        meter.charged_depth -= 1


@contextmanager
def already_counted() -> Iterator[None]:
    """The caller counted the RM queries it is about to make (``ctx.reward_model`` does)."""
    meter = _active
    if meter is None:
        yield
        return
    meter.counted_depth += 1
    try:
        yield
    finally:
        meter.counted_depth -= 1


def _caller(skip_prefixes: tuple[str, ...] = ("harness.lm", "harness.api", "torch", "contextlib")) -> str:
    """``file:line in function`` of the first frame outside the toolkit and the contract: where a
    plugin drew around ``ctx.sample``."""
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(skip_prefixes):
        frame = frame.f_back
    if frame is None:
        return "unknown caller"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def charge_samples(n: int, sampler: str) -> None:
    """Called by the toolkit's samplers for ``n`` responses drawn: inside a metered run and not
    already charged, they are charged to its budget (:class:`BudgetExceeded` past it)."""
    meter = _active
    if meter is None or meter.charged_depth:
        return
    where = f"{sampler} called from {_caller()}, not through ctx.sample"
    meter.budget.spend(n, where)
    meter.draws[where] = meter.draws.get(where, 0) + n


def count_scores(network: Any, n: int) -> None:
    """Called by the toolkit's scorers for ``n`` rows scored by ``network``: inside a metered run,
    a score of the proxy's network not already counted is ``n`` RM queries."""
    meter = _active
    if meter is None or meter.counted_depth or not any(network is r for r in meter.reward_networks):
        return
    meter.budget.count_rm_queries(n)


def draws_outside_the_context() -> dict[str, int]:
    """What the active meter charged outside ``ctx.sample``, by where it was drawn."""
    return dict(_active.draws) if _active is not None else {}
