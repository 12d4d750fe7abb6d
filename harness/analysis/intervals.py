"""Confidence intervals over a row's seeds that respect a metric's bounds (:func:`interval`): the
Student-t interval, a Wilson score interval for rates, the t-interval cut at a bound; and the
plain ``(mean, half-width, n)`` of :func:`confidence_interval`. Small pure functions on plain
numbers. Layer: harness.analysis (imports numpy, scipy and pandas only).

Intervals (:func:`interval`), 95% by default, over a row's seeds:

- unbounded metrics: the two-sided Student-t interval, mean ± t_{k−1} · s / √k;
- rates in [0, 1]: a Wilson score interval whose sample size is the *effective* one that the
  seed-to-seed spread implies, n_eff = p̂(1 − p̂) / SE², with the t_{k−1} quantile for z
  (:func:`wilson_interval`);
- metrics ≥ 0: the t-interval cut at 0 (:func:`t_interval` with ``lower=0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

# interval methods, as the legend names them
T_INTERVAL = "t"
WILSON = "wilson"
T_CUT = "t, cut at the bound"


def _clean(values: Iterable[float]) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype="float64")
    return x[~np.isnan(x)]


def confidence_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, int]:
    """``(mean, half_width, n)`` over the non-NaN ``values``: the half-width of a two-sided
    Student-t interval, NaN when n < 2 (one seed says nothing about the spread)."""
    x = pd.Series(list(values), dtype="float64").dropna()
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, n
    t = stats.t.ppf(0.5 + level / 2, n - 1)
    return mean, float(t * x.std(ddof=1) / math.sqrt(n)), n


def t_interval(values: Iterable[float], level: float = 0.95, lower: float | None = None) -> tuple[float, float, float, int]:
    """``(mean, lo, hi, n)`` over the non-NaN ``values``: a two-sided Student-t interval, cut at
    ``lower`` when given. NaN bounds when n < 2 (one seed says nothing about the spread).

    Cutting at a bound the true value cannot cross keeps the coverage exactly: whenever the
    t-interval holds the true value, so does its part above ``lower``."""
    x = _clean(values)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    lo, hi = mean - half, mean + half
    if lower is not None:
        lo, hi = max(lo, lower), max(hi, lower)
    return mean, lo, hi, n


def wilson_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, lo, hi, n)`` for per-seed rates in [0, 1]: a Wilson score interval with the
    effective sample size n_eff = p̂(1 − p̂) / SE² (SE = s / √k over k seeds) and the t_{k−1}
    quantile in place of z. NaN bounds when k < 2.

    Why this one. A seed's rate is a mean of many bounded per-response values, but what varies
    between seeds is training, so the binomial n (responses) overstates the information; the
    seeds' own spread gives the information there is, as an effective n (the design-effect idea
    of survey statistics, Kish 1965; Korn & Graubard 1998 use it with t quantiles). The Wilson
    interval on that n lies inside [0, 1] and always holds p̂; when the spread is small against
    p̂(1 − p̂) it tends to the t-interval p̂ ± t·SE, so well-behaved rates keep the usual figure.
    A percentile bootstrap over three seeds would have ten distinct resamples and cover far
    less than 95%; a logit-scale t-interval breaks at rates of exactly 0 or 1 and is centred on
    the back-transformed mean of logits, which need not hold p̂. Values outside [0, 1] (not a
    rate after all) get the plain t-interval."""
    x = _clean(values)
    k = x.size
    if k < 2 or x.min() < 0.0 or x.max() > 1.0:
        return t_interval(x, level)
    p = float(x.mean())
    se2 = float(x.var(ddof=1)) / k
    if se2 <= 0.0 or p <= 0.0 or p >= 1.0:  # no spread (p of 0 or 1 implies none): the point itself
        return p, p, p, k
    n_eff = p * (1.0 - p) / se2
    z = float(stats.t.ppf(0.5 + level / 2, k - 1))
    denominator = 1.0 + z * z / n_eff
    centre = (p + z * z / (2.0 * n_eff)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n_eff + z * z / (4.0 * n_eff * n_eff))
    return p, max(0.0, centre - half), min(1.0, centre + half), k


def interval(values: Iterable[float], bounds: tuple[float | None, float | None] | None = None,
             level: float = 0.95) -> tuple[float, float, float, int, str]:  # fmt: skip
    """``(mean, lo, hi, n, method)`` for a metric's per-seed ``values`` with known ``bounds``
    (``(0, 1)``: a rate, :func:`wilson_interval`; ``(0, None)``: non-negative, the t-interval
    cut at 0; ``None``: unbounded, the t-interval). ``method``, the one used, is one of
    :data:`T_INTERVAL`, :data:`WILSON`, :data:`T_CUT` (a "rate" with values outside [0, 1]
    gets the t-interval)."""
    x = _clean(values)
    if bounds is not None and tuple(bounds) == (0, 1) and (x.size == 0 or (x.min() >= 0.0 and x.max() <= 1.0)):
        return (*wilson_interval(x, level), WILSON)
    if bounds is not None and bounds[0] is not None and bounds[1] is None:
        return (*t_interval(x, level, lower=bounds[0]), T_CUT)
    return (*t_interval(x, level), T_INTERVAL)


# -------------------------------------------------------------------------
