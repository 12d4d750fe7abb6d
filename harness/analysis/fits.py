"""Overoptimization fits: the functional forms of Gao, Schulman & Hilton (2022) fitted to
gold-reward trajectories.

Gao, Schulman & Hilton, "Scaling Laws for Reward Model Overoptimization" (ICML 2023,
arXiv:2210.10760) found that the gold reward gained by optimizing a proxy reward model follows,
with ``d = √KL(π‖π_sft)`` (KL in nats per sequence),

- RL (policy optimization, along training):  ``R(d) = d (α − β log d)``
- best-of-n (over n):                         ``R(d) = d (α − β d)``

where ``R`` is the gold reward *gained* over the starting policy: for every seed, gold minus that
seed's gold at ``d = 0`` (episode 0 for RL, n = 1 for best-of-n). Both forms are linear in
``(α, β)``, so a fit is one least-squares solve (:func:`numpy.linalg.lstsq`), no iterative
optimizer. With β > 0 the fitted gain peaks at ``d*`` (RL: ``exp(α/β − 1)``, best-of-n:
``α / 2β``) and then falls: past ``KL* = d*²`` more optimization of the proxy costs gold reward.

:func:`fit_table` fits every (benchmark, config, kind) of a *trajectory frame*
(:data:`TRAJECTORY_COLUMNS`) on the pooled points of its seeds, with percentile-bootstrap
intervals over seeds; :func:`harness.reports.fit_table.render_fit_table` writes it as md, csv or
html. A fit that cannot be
made raises :class:`FitRefused`, which the table turns into its row's ``note``.

Layer: harness.analysis (imports its own modules and harness.errors).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.columns import NA
from harness.errors import UsageError, did_you_mean

#: the fitted forms, by trajectory ``kind``
FORMS = {"rl": "d (α − β log d)", "best-of-n": "d (α − β d)"}
#: the column that marks each kind's d = 0 point, and its value there (with KL exactly 0: an
#: offline learner's final policy also has 0 episodes, but not π_sft's KL)
BASELINE = {"rl": ("episodes", 0.0), "best-of-n": ("n", 1.0)}
#: a column needed only when its kind is present
BASELINE_ONLY = {column: kind for kind, (column, _) in BASELINE.items()}
#: what :func:`fit_table` reads (``proxy`` and ``d`` may be present; d is recomputed from kl)
TRAJECTORY_COLUMNS = ("benchmark", "config", "seed", "kind", "kl", "gold", "episodes", "n")
#: quantities that get a bootstrap interval (columns ``<q>_lo``, ``<q>_hi``)
CI_QUANTITIES = ("alpha", "beta", "d_peak", "kl_peak")
TABLE_COLUMNS = (
    ["benchmark", "config", "kind", "form", "seeds", "points", "d_max"]
    + [c for q in ("alpha", "beta") for c in (q, f"{q}_lo", f"{q}_hi")]
    + ["r2"]
    + [c for q in ("d_peak", "kl_peak") for c in (q, f"{q}_lo", f"{q}_hi")]
    + ["boot_refused", "note"]
)
MIN_POINTS = 3  # two parameters: a third point is the least that can disagree with the form


class FitRefused(UsageError):
    """A fit that cannot be made from the points given; the message says why."""


@dataclass(frozen=True)
class Fit:
    """One least-squares fit of a Gao et al. form.

    ``form``: ``"rl"`` or ``"best-of-n"`` (:data:`FORMS`). ``r2``: 1 − SS_res / SS_tot against
    the mean of r (the forms have no intercept, so it can be negative; NaN when r is constant).
    ``n_points``: every point given, d = 0 ones included. ``d_peak``: where the fitted R is
    largest over d ≥ 0; ``inf`` when β ≤ 0 — no peak, the fitted R keeps rising, as far as the
    fitted range of d can tell. ``kl_peak = d_peak²``.
    """

    form: str
    alpha: float
    beta: float
    r2: float
    n_points: int
    d_peak: float
    kl_peak: float


def _check_points(form: str, d, r) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(d, dtype="float64")
    r = np.asarray(r, dtype="float64")
    if d.ndim != 1 or d.shape != r.shape:
        raise FitRefused(f"{form} fit refused: d and r must be 1-D and of one length (got {d.shape} and {r.shape})")
    bad = int((~np.isfinite(d) | ~np.isfinite(r)).sum())
    if bad:
        raise FitRefused(f"{form} fit refused: {bad} of {d.size} points have a non-finite d or gain (NaN or inf)")
    if (d < 0).any():
        raise FitRefused(f"{form} fit refused: d = √KL cannot be negative (min {d.min():g})")
    positive = d[d > 0]
    if positive.size < MIN_POINTS:
        raise FitRefused(f"{form} fit refused: {positive.size} points with d > 0, need ≥ {MIN_POINTS}")
    if np.unique(positive).size < 2:
        raise FitRefused(f"{form} fit refused: a single distinct d > 0 ({positive[0]:g}) cannot separate α from β")
    return d, r


def _solve(form: str, d: np.ndarray, r: np.ndarray, x: np.ndarray) -> Fit:
    """Least squares of r on the design columns ``[d, −x]``: R = α d − β x."""
    design = np.column_stack([d, -x])
    (alpha, beta), _, rank, _ = np.linalg.lstsq(design, r, rcond=None)
    if rank < 2:
        raise FitRefused(f"{form} fit refused: the points do not determine α and β (rank-deficient design)")
    ss_res = float(np.sum((r - design @ np.array([alpha, beta])) ** 2))
    ss_tot = float(np.sum((r - r.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    d_peak = _peak(form, float(alpha), float(beta))
    # d * d, not d ** 2: a huge finite d* (β ≈ 0) squares to inf instead of raising OverflowError
    return Fit(form, float(alpha), float(beta), r2, int(d.size), d_peak, d_peak * d_peak)


def _peak(form: str, alpha: float, beta: float) -> float:
    if not beta > 0:
        return math.inf  # β ≤ 0: R never turns down
    if form == "rl":
        # dR/dd = α − β (log d + 1) = 0; a huge α/β overflows to inf, which is the honest answer
        with np.errstate(over="ignore"):
            return float(np.exp(alpha / beta - 1.0))
    # α ≤ 0 puts the vertex at d ≤ 0: over d ≥ 0 the fitted R is largest at 0
    return max(alpha / (2.0 * beta), 0.0)


def fit_rl(d, r) -> Fit:
    """Fit ``R(d) = d (α − β log d)`` to gains ``r`` at ``d = √KL``.

    Points at d = 0 are zero rows of the design (d log d → 0): they do not move α or β, but an
    r ≠ 0 there still counts against R². :raises FitRefused: non-finite or negative values,
    fewer than 3 points with d > 0, or fewer than 2 distinct d > 0.
    """
    d, r = _check_points("rl", d, r)
    log_d = np.log(d, where=d > 0, out=np.zeros_like(d))  # d log d → 0 at d = 0, not 0 · (−inf) = NaN
    return _solve("rl", d, r, d * log_d)


def fit_best_of_n(d, r) -> Fit:
    """Fit ``R(d) = d (α − β d)`` to gains ``r`` at ``d = √KL``; refuses as :func:`fit_rl` does."""
    d, r = _check_points("best-of-n", d, r)
    return _solve("best-of-n", d, r, d * d)


FITTERS = {"rl": fit_rl, "best-of-n": fit_best_of_n}


# -------------------------------------------------------------------------
# the table: one fit per (benchmark, config, kind), bootstrapped over seeds
# -------------------------------------------------------------------------


def _at_zero(kind: str, part: pd.DataFrame) -> pd.Series:
    """The d = 0 points (π_sft): the kind's marker value, and KL 0 (a Monte-Carlo estimate a hair
    below 0 counts; an offline learner's final policy, also at 0 episodes, does not)."""
    column, value = BASELINE[kind]
    return (part[column] == value) & (part["kl"].clip(lower=0) <= 1e-9)


def _seed_gains(kind: str, part: pd.DataFrame) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], float]:
    """Per seed, ``(d, gain)`` of its points other than the d = 0 one, and the largest d seen.
    :raises FitRefused: a seed without its d = 0 point."""
    column, value = BASELINE[kind]
    at_zero = _at_zero(kind, part)
    missing = sorted(set(part["seed"]) - set(part.loc[at_zero, "seed"]))
    if missing:
        raise FitRefused(f"seed{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} "
                         f"without a d = 0 point ({column} = {value:g}): no baseline to subtract")  # fmt: skip
    # a Monte-Carlo KL estimate can dip just below 0: clip, then d = √KL
    d_all = np.sqrt(np.clip(part["kl"].to_numpy(dtype="float64"), 0.0, None))
    gold = part["gold"].to_numpy(dtype="float64")
    seeds = part["seed"].to_numpy()
    zero = at_zero.to_numpy()
    out = {}
    for s in sorted(set(seeds)):
        mine = seeds == s
        baseline = gold[mine & zero].mean()  # a repeated d = 0 evaluation: its mean
        # the baseline point itself is dropped: its gain is 0 by construction and would only flatter R²
        keep = mine & ~zero
        out[int(s)] = (d_all[keep], gold[keep] - baseline)
    if all(len(d) < 2 for d, _ in out.values()):
        raise FitRefused("no seed has more than one point past d = 0 (an offline learner's final policy, say): "
                         "a point per seed is no trajectory to fit")  # fmt: skip
    return out, float(np.nanmax(d_all)) if np.isfinite(d_all).any() else math.nan


def _percentile(values: np.ndarray, q: float) -> float:
    """Linear-interpolated percentile (q in [0, 1]) that keeps inf as inf (numpy's gives NaN
    between two infs): a d_peak interval reaching "no peak" should say so."""
    v = np.sort(values)
    pos = q * (v.size - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or v[lo] == v[hi]:
        return float(v[lo])
    return float(v[lo] + (pos - lo) * (v[hi] - v[lo]))


def _bootstrap(kind: str, gains: dict, key: str, n_boot: int, seed: int, level: float) -> tuple[dict, int]:
    """Percentile intervals of :data:`CI_QUANTITIES` from ``n_boot`` refits on seeds drawn with
    replacement, and how many refits were refused. The stream is seeded by ``(seed, key)``, so a
    row's interval does not change when other configs join the frame."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    per_seed = list(gains.values())
    draws = rng.integers(0, len(per_seed), size=(n_boot, len(per_seed)))
    fits, refused = [], 0
    for draw in draws:
        try:
            fits.append(FITTERS[kind](np.concatenate([per_seed[i][0] for i in draw]),
                                      np.concatenate([per_seed[i][1] for i in draw])))  # fmt: skip
        except FitRefused:
            refused += 1  # e.g. every draw the one seed with a single d
    if not fits:
        return {}, refused
    tail = (1.0 - level) / 2.0
    out = {}
    for q in CI_QUANTITIES:
        values = np.array([getattr(f, q) for f in fits])
        out[f"{q}_lo"], out[f"{q}_hi"] = _percentile(values, tail), _percentile(values, 1.0 - tail)
    return out, refused


def _fit_row(kind: str, part: pd.DataFrame, key: str, n_boot: int, seed: int, level: float) -> dict:
    row: dict = {"form": FORMS.get(kind, NA), "seeds": int(part["seed"].nunique()), "points": len(part)}
    if kind not in FITTERS:
        return row | {"note": f"unknown kind {kind!r}: expected one of {', '.join(FITTERS)}{did_you_mean(str(kind), FITTERS)}"}
    row["points"] -= int(_at_zero(kind, part).sum())  # the fitted points: all but each seed's d = 0 one
    d_all = np.sqrt(np.clip(part["kl"].to_numpy(dtype="float64"), 0.0, None))
    row["d_max"] = float(np.nanmax(d_all)) if np.isfinite(d_all).any() else math.nan
    try:
        gains, row["d_max"] = _seed_gains(kind, part)
        d = np.concatenate([g[0] for g in gains.values()])
        r = np.concatenate([g[1] for g in gains.values()])
        fit = FITTERS[kind](d, r)
    except FitRefused as exc:
        return row | {"note": str(exc)}
    row |= {"points": fit.n_points, "alpha": fit.alpha, "beta": fit.beta, "r2": fit.r2,
            "d_peak": fit.d_peak, "kl_peak": fit.kl_peak}  # fmt: skip
    notes = []
    if math.isinf(fit.d_peak):
        notes.append("no peak in range (β ≤ 0: the fitted gain keeps rising)")
    elif fit.d_peak == 0:
        notes.append("the fitted gain never rises (peak at d = 0)")
    elif fit.d_peak > row["d_max"]:
        notes.append(f"peak beyond the largest d observed ({row['d_max']:.3g}): extrapolated")
    if row["seeds"] < 2:
        notes.append("1 seed: no CI")
    elif n_boot > 0:
        ci, row["boot_refused"] = _bootstrap(kind, gains, key, n_boot, seed, level)
        row |= ci
        if not ci:
            notes.append(f"all {n_boot} bootstrap refits refused: no CI")
        elif row["boot_refused"]:
            notes.append(f"{row['boot_refused']} of {n_boot} bootstrap refits refused")
    return row | {"note": "; ".join(notes)}


def fit_table(frame: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """One row per (benchmark, config, kind) of a trajectory frame: the form's least-squares fit
    on the pooled gains of all seeds, and percentile-bootstrap intervals over seeds.

    ``frame`` holds :data:`TRAJECTORY_COLUMNS` (``episodes`` only for RL, ``n`` only for
    best-of-n); d is ``√max(kl, 0)``. Each seed's gain is gold minus its gold at the d = 0 point
    (``episodes == 0`` for RL, ``n == 1`` for best-of-n). Intervals (``<q>_lo``, ``<q>_hi`` for
    :data:`CI_QUANTITIES`): seeds resampled with replacement ``n_boot`` times, each resample
    refitted on its pooled points, the ``level`` percentile interval of the refits that were
    not refused (``boot_refused`` counts the others); none with one seed or ``n_boot = 0``;
    deterministic given ``seed``. With few seeds the interval is too narrow — it sees only the
    spread the seeds show: in simulation about 80% of nominal-95% intervals held the true α at 5
    seeds, 88% at 10. A row that cannot be fitted keeps NaN numbers and says why in
    ``note``. Columns: :data:`TABLE_COLUMNS`; ``attrs`` records ``n_boot``, ``seed``, ``level``.

    :raises UsageError: a missing column, ``n_boot < 0`` or ``level`` outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise UsageError(f"level must lie in (0, 1), got {level}")
    if n_boot < 0:
        raise UsageError(f"n_boot must be ≥ 0, got {n_boot}")
    kinds = set(frame["kind"]) if "kind" in frame.columns else set()
    needed = [c for c in TRAJECTORY_COLUMNS if c not in BASELINE_ONLY or BASELINE_ONLY[c] in kinds]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise UsageError(f"trajectory frame lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    rows = []
    for (bench, config, kind), part in frame.groupby(["benchmark", "config", "kind"], sort=True):
        key = f"{bench}\x1f{config}\x1f{kind}"
        rows.append({"benchmark": bench, "config": config, "kind": kind} | _fit_row(kind, part, key, n_boot, seed, level))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table[["seeds", "points"]] = table[["seeds", "points"]].astype("int64")
    floats = [c for c in TABLE_COLUMNS if c not in ("benchmark", "config", "kind", "form", "seeds", "points", "note")]
    table[floats] = table[floats].astype("float64")
    table["note"] = table["note"].fillna("")
    table.attrs = {"n_boot": n_boot, "seed": seed, "level": level}
    return table
