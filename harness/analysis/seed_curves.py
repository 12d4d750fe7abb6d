"""One configuration's trajectory points over its seeds: which x orders them (episodes, n or the
checkpoint's index), each seed's series, the seeds aligned on one grid with a mean and a 95%
Student-t interval (:func:`align_seeds`), and π_sft's point. What the figures draw. Layer:
harness.analysis (imports numpy, scipy and pandas only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats


def trajectory_kind(part: pd.DataFrame) -> str:
    return "best-of-n" if (part["kind"] == "best-of-n").all() else "rl"


def with_x(part: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One configuration's points and the column that orders and aligns its seeds: ``n`` for
    best-of-n, ``episodes`` along training — or, where a seed's episodes repeat (an offline
    learner spends none), the checkpoint's index in the seed's own order."""
    if trajectory_kind(part) == "best-of-n":
        return part, "n"
    if all(group["episodes"].is_unique for _, group in part.groupby("seed")):
        return part, "episodes"
    return part.assign(checkpoint=part.groupby("seed").cumcount().astype("float64")), "checkpoint"


def seed_series(part: pd.DataFrame, x: str, ys: Sequence[str]) -> dict[int, pd.DataFrame]:
    """Per seed, its points sorted by ``x`` (repeated x averaged), NaN x dropped."""
    out = {}
    for seed, group in part.groupby("seed", sort=True):
        g = group.dropna(subset=[x]).groupby(x, sort=True)[list(ys)].mean().reset_index()
        if len(g):
            out[int(seed)] = g
    return out


def align_seeds(series: Mapping[int, pd.DataFrame], x: str, ys: Sequence[str], *, every_seed: bool = False) -> pd.DataFrame:
    """Seeds on one grid: the union of their ``x`` values; each seed linearly interpolated within
    its own range (NaN outside it). Columns: ``x``, then ``<y>_mean``, ``<y>_lo``, ``<y>_hi``
    (a 95% Student-t interval over the seeds present, NaN with fewer than two) for every y, and
    ``seeds`` (how many cover that x). ``every_seed``: only the x that every seed covers (a mean
    that never changes which seeds it averages)."""
    if not series:
        return pd.DataFrame(columns=[x, "seeds"])
    grid = np.unique(np.concatenate([s[x].to_numpy(dtype="float64") for s in series.values()]))
    out = {x: grid}
    count = None
    for y in ys:
        rows = []
        for s in series.values():
            xs, vals = s[x].to_numpy(dtype="float64"), s[y].to_numpy(dtype="float64")
            ok = ~np.isnan(vals)
            col = np.full(grid.shape, np.nan)
            if ok.any():
                inside = (grid >= xs[ok].min()) & (grid <= xs[ok].max())
                col[inside] = np.interp(grid[inside], xs[ok], vals[ok])
            rows.append(col)
        values = np.vstack(rows)
        n = (~np.isnan(values)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), np.nan)
            sq = np.nansum((values - mean) ** 2, axis=0)
            sd = np.sqrt(np.where(n > 1, sq / np.maximum(n - 1, 1), np.nan))
            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1))
        half = np.where(n > 1, half, np.nan)
        out[f"{y}_mean"], out[f"{y}_lo"], out[f"{y}_hi"] = mean, mean - half, mean + half
        count = n if count is None else np.maximum(count, n)
    out["seeds"] = count
    frame = pd.DataFrame(out)
    return frame[frame["seeds"] == len(series)].reset_index(drop=True) if every_seed else frame


def sft_point(part: pd.DataFrame) -> tuple[float, float] | None:
    """π_sft's (mean gold, mean proxy) over seeds: the d = 0 points of the training
    trajectories (episode 0), else best-of-n's n = 1; ``None`` when there is neither."""
    rl = part[(part["kind"] != "best-of-n") & (part["episodes"] == 0)]
    base = rl if len(rl) else part[(part["kind"] == "best-of-n") & (part["n"] == 1)]
    if base.empty:
        return None
    per_seed = base.groupby("seed")[["gold", "proxy"]].mean()
    return float(per_seed["gold"].mean()), float(per_seed["proxy"].mean())
