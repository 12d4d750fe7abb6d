"""Statistics for leaderboards: confidence intervals that respect a metric's bounds, and tests of
a row against a baseline row. Small pure functions on plain numbers; the table that uses them is
:mod:`harness.analysis.leaderboard`. Layer: harness.analysis (imports numpy, scipy and
its own intervals only).

Intervals (:func:`interval`, :func:`t_interval`, :func:`wilson_interval`) live in
:mod:`harness.analysis.intervals`; they are importable from here too.

Tests against a baseline:

- :func:`welch` — Welch's unequal-variance t-test on the per-seed values of two rows;
- :func:`paired_bootstrap` — the mean of per-prompt differences between two rows on the same
  held-out prompts, resampled over prompts: a percentile interval and a two-sided p-value;
- :func:`holm` — Holm–Bonferroni adjusted p-values for a family of tests;
- :func:`verdict` — a difference and its adjusted p as ``better``/``worse``/``higher``/``lower``/
  ``indistinguishable``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from harness.analysis.intervals import T_CUT, T_INTERVAL, WILSON, _clean, interval, t_interval, wilson_interval

__all__ = [
    "ALPHA",
    "BASELINE",
    "BETTER",
    "HIGHER",
    "LOWER",
    "MIN_PROMPTS",
    "NOT_TESTABLE",
    "N_BOOT",
    "SAME",
    "T_CUT",
    "T_INTERVAL",
    "WILSON",
    "WORSE",
    "Paired",
    "Welch",
    "bootstrap_draws",
    "holm",
    "interval",
    "paired_bootstrap",
    "per_prompt_means",
    "pooled_prompt_means",
    "t_interval",
    "verdict",
    "welch",
    "wilson_interval",
]  # fmt: skip

ALPHA = 0.05
#: bootstrap draws at least; :func:`bootstrap_draws` asks for more when a family is large
N_BOOT = 2000
#: a paired bootstrap needs at least this many shared prompts: with fewer, a percentile interval
#: over resampled prompts is too narrow (its spread is the plug-in one, √((n − 1)/n) of the truth,
#: and it can take only a handful of distinct values), so it would flag differences too often
MIN_PROMPTS = 10

# verdicts
BETTER, WORSE = "better", "worse"
HIGHER, LOWER = "higher", "lower"  # significant, on a metric with no known direction
SAME = "indistinguishable"
NOT_TESTABLE = "not testable"
BASELINE = "baseline"


# -------------------------------------------------------------------------
# tests
# -------------------------------------------------------------------------


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of one row's per-seed values against the baseline's."""

    difference: float  #: mean(row) − mean(baseline)
    p: float  #: two-sided, unadjusted
    n: int  #: the row's seeds
    n_baseline: int  #: the baseline's seeds


def welch(values: Iterable[float], baseline: Iterable[float]) -> Welch | None:
    """Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) of ``values`` against
    ``baseline``, NaNs dropped; ``None`` when either side has fewer than 2 values (not testable).

    Two sides without any spread (a metric computed exactly, such as best-of-n's analytic KL) have
    no t statistic: their difference is exact, p = 0, or none at all, p = 1."""
    a, b = _clean(values), _clean(baseline)
    if a.size < 2 or b.size < 2:
        return None
    difference = float(a.mean() - b.mean())
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
    if a.std(ddof=1) <= 1e-12 * scale and b.std(ddof=1) <= 1e-12 * scale:
        p = 1.0 if abs(difference) <= 1e-12 * scale else 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # near-constant sides: scipy warns, still right
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return Welch(difference, p, int(a.size), int(b.size))


@dataclass(frozen=True)
class Paired:
    """A paired bootstrap of the mean per-prompt difference (row − baseline)."""

    difference: float  #: mean over prompts of the per-prompt differences
    lo: float  #: percentile interval of that mean, at the level asked for
    hi: float
    p: float  #: two-sided bootstrap p-value, unadjusted
    prompts: int  #: prompts shared, i.e. resampled
    draws: int  #: bootstrap resamples


def bootstrap_draws(comparisons: int, alpha: float = ALPHA, minimum: int = N_BOOT) -> int:
    """Resamples for a family of ``comparisons`` bootstrap tests: at least ``minimum``, and enough
    that the smallest p a bootstrap can give, 2 / (B + 1), is a tenth of Holm's strictest
    threshold α / m; else a large table could never flag anything."""
    return max(minimum, math.ceil(20 * max(comparisons, 1) / alpha))


def paired_bootstrap(differences: Sequence[float] | np.ndarray, n_boot: int = N_BOOT, seed: int = 0,
                     level: float = 0.95) -> list[Paired]:  # fmt: skip
    """Bootstrap over prompts for per-prompt differences, one column per comparison
    (``differences``: shape (prompts,) or (prompts, comparisons)); one :class:`Paired` per column.

    Each of ``n_boot`` resamples draws the prompts with replacement and takes every column's mean
    difference; all columns share the resamples (common random numbers), which come from
    ``numpy.random.default_rng(seed)`` alone: the same inputs give the same result, and a column's
    result does not depend on the other columns. The interval is the percentile one; the p-value
    is 2·min(#{Δ* ≤ 0} + 1, #{Δ* ≥ 0} + 1) / (B + 1), capped at 1, so a p below α goes with an
    interval that excludes 0."""
    d = np.asarray(differences, dtype="float64")
    d = d[:, None] if d.ndim == 1 else d
    n, columns = d.shape
    if n == 0:
        raise ValueError("paired_bootstrap needs at least one prompt")
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, columns))
    chunk = 512
    for start in range(0, n_boot, chunk):  # resample counts × differences: memory of one chunk only
        rows = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(rows, n))
        counts = np.bincount((draws + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n).reshape(rows, n)
        means[start : start + rows] = counts @ d / n
    tail = (1.0 - level) / 2
    out = []
    for j in range(columns):
        m = means[:, j]
        below, above = int(np.sum(m <= 0.0)), int(np.sum(m >= 0.0))
        p = min(1.0, 2.0 * (min(below, above) + 1) / (n_boot + 1))
        lo, hi = np.quantile(m, [tail, 1.0 - tail])
        out.append(Paired(float(d[:, j].mean()), float(lo), float(hi), p, n, n_boot))
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given: the i-th smallest p times (m − i + 1),
    made non-decreasing and capped at 1. Rejecting where the adjusted p < α keeps the family-wise
    error rate at α over all m tests, whatever their dependence."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def verdict(difference: float, p_adjusted: float, higher_is_better: bool | None, alpha: float = ALPHA) -> str:
    """What a test says of a row against the baseline: :data:`SAME` unless ``p_adjusted`` < α; then
    :data:`BETTER` or :data:`WORSE` by the sign of ``difference`` (row − baseline) and the metric's
    direction, or :data:`HIGHER`/:data:`LOWER` for a metric whose direction is not known."""
    if not p_adjusted < alpha or difference == 0.0:
        return SAME
    if higher_is_better is None:
        return HIGHER if difference > 0 else LOWER
    return BETTER if (difference > 0) == higher_is_better else WORSE


# -------------------------------------------------------------------------
# per-prompt values
# -------------------------------------------------------------------------


def per_prompt_means(samples: Sequence[Mapping[str, Any]], key: str) -> dict[str, float] | None:
    """The mean of ``key`` over each prompt's samples (``True``/``False`` count as 1/0), keyed by
    prompt in first-seen order; ``None`` when no sample has it, or any sample lacks it or has NaN
    (an older store, a metric not measured): a partial set would not be the run's metric."""
    if not samples:
        return None
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for sample in samples:
        value = sample.get(key)
        if value is None:
            return None
        x = float(value)
        if math.isnan(x):
            return None
        prompt = sample["prompt"]
        sums[prompt] = sums.get(prompt, 0.0) + x
        counts[prompt] = counts.get(prompt, 0) + 1
    return {p: sums[p] / counts[p] for p in sums}


def pooled_prompt_means(runs: Sequence[Mapping[str, float] | None]) -> dict[str, float] | None:
    """Per-prompt means of a row: each prompt's mean over its runs (seeds) of their per-prompt
    means; ``None`` when any run has none or the runs do not share one prompt set."""
    if not runs or any(r is None for r in runs):
        return None
    prompts = set(runs[0])
    if any(set(r) != prompts for r in runs[1:]):
        return None
    return {p: sum(r[p] for r in runs) / len(runs) for p in runs[0]}
