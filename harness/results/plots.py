"""Figures from the store (``harness plot``): where each algorithm lands between gold reward and
KL, how the proxy and gold part ways as the policy drifts, and training curves over seeds.

- **Frontier** (:func:`frontier_figure`, one per benchmark): gold reward r* against the KL
  distance d = √KL(π‖π_sft) — a thin line per seed along training, a thick line per
  configuration (the mean over its seeds), best-of-n's curve over n, and π_sft at d = 0 with a
  dotted line at its gold level. A curve that bends back below that line has traded gold reward
  for proxy reward: reward hacking, read off at a glance (PPO vs PPO without KL).
- **Over-optimisation** (:func:`overoptimisation_figure`, one per benchmark, a panel per
  configuration): the gain in proxy r̂ and in gold r* over each seed's own d = 0 point, against d,
  mean ± 95% CI over seeds. Proxy and gold have different units (r̂ is normalised to mean 0,
  std 1 on π_sft's samples), so each has its own y-axis (gold left, proxy right), both zero at
  the same height: where the proxy keeps rising and gold falls, the proxy is being gamed.
- **Training curves** (:func:`curves_figure`, one per benchmark and metric): any logged metric
  against the training step, mean ± 95% CI over seeds, one line per configuration. Seeds are
  aligned by step: where their step grids differ, each seed is linearly interpolated onto the
  union of the grids *within its own range* (never extrapolated), and each step's mean is over
  the seeds that cover it (the band needs two).

Each configuration keeps one style in every figure of a call (:func:`assign_styles`): an
Okabe–Ito colour *and* a line style and marker, so that lines stay apart in greyscale and for
colour-blind readers. Figures are built without pyplot (no display, no global figure state) and
saved by the Agg and SVG backends with fixed metadata and ``svg.hashsalt``: the same data gives
the same bytes. Text is never parsed as mathtext (a ``$`` in a config name stays a ``$``), and the
SVG backend escapes every text it writes, so run and config names cannot inject markup into an
SVG inlined in a page (:func:`svg_markup`).
"""

from __future__ import annotations

import io
import math
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from harness.errors import UsageError, did_you_mean

KINDS = ("frontier", "overoptimisation", "curves", "all")
#: the columns of a trajectory frame (``harness.results.trajectories.trajectory_frame``)
TRAJECTORY_COLUMNS = (
    "run_id",
    "benchmark",
    "settings",
    "config",
    "algorithm",
    "seed",
    "kind",
    "episodes",
    "n",
    "kl",
    "d",
    "gold",
    "proxy",
)
#: curve keys that are not training metrics: the checkpoint evaluations the frontier draws
NOT_TRAINING_PREFIXES = ("checkpoint/", "best_of_n/", "bon/")
#: training curves drawn when no ``--metric`` is given (those that some run logged)
DEFAULT_METRICS = ("objective/scores", "objective/kl")

#: what the common training metrics measure, with units, for y-axis labels
METRIC_LABELS = {
    "objective/kl": "KL(π ‖ π_ref) per sequence  [nats]",
    "objective/kl_per_token": "KL(π ‖ π_ref) per token  [nats]",
    "objective/scores": "proxy score r̂  [σ on π_sft]",
    "objective/raw_scores": "raw proxy score r̂",
    "objective/rlhf_reward": "r̂ − β·KL  (the reward optimized)",
    "objective/entropy": "entropy per sequence  [nats]",
    "val/response_length": "response length  [tokens]",
    "val/eos_rate": "share of responses ending with EOS",
}

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with any common colour-vision deficiency
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: the colours configurations get, in order (yellow last: faint on white); black is π_sft's and best-of-n's
_CYCLE = ["blue", "vermillion", "bluish_green", "reddish_purple", "orange", "sky_blue", "yellow"]
#: dashed and dotted are ppo-nokl's and best-of-n's; the others alternate these
_LINESTYLES = ["-", "-.", (0, (4, 1, 1, 1, 1, 1)), (0, (7, 2))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]
#: configurations with a fixed style, so that the KL ablation stands out against PPO in every figure
_FIXED = {"ppo": ("blue", "-", "o"), "ppo-nokl": ("vermillion", "--", "s"), "best-of-n": ("black", (0, (1, 1.5)), "D")}
SFT_COLOR = OKABE_ITO["black"]
GOLD_COLOR, PROXY_COLOR = OKABE_ITO["orange"], OKABE_ITO["blue"]

#: matplotlib settings for every figure: readable sizes, deterministic files, text as text
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "text.parse_math": False,  # names come from users: "$" is a dollar sign, never mathtext
    "svg.fonttype": "none",  # text stays text: smaller, searchable, selectable in the report
    "svg.hashsalt": "rlhf-harness",
    "savefig.dpi": 150,
    "savefig.bbox": None,  # a fixed canvas: a tight box would depend on text extents only
}
PNG_METADATA = {"Software": "rlhf-harness (matplotlib)"}
#: no date, no URL: the same figure gives the same bytes
SVG_METADATA = {"Date": None, "Creator": "rlhf-harness (matplotlib)", "Type": None, "Format": None}


@dataclass(frozen=True)
class Style:
    """How one configuration is drawn in every figure: colour, line style and marker."""

    color: str
    linestyle: str | tuple
    marker: str


def assign_styles(configs: Iterable[str]) -> dict[str, Style]:
    """A distinct style per configuration, the same for the same set of names whatever their
    order: ``ppo``, ``ppo-nokl`` and ``best-of-n`` have fixed ones, the others take colours (the
    fixed ones' last), line styles and markers in name order: no two of the first 28 share a
    colour and a line style."""
    names = sorted(set(map(str, configs)))
    styles = {name: Style(OKABE_ITO[c], ls, m) for name, (c, ls, m) in _FIXED.items() if name in names}
    taken = {_FIXED[name][0] for name in styles}
    cycle = [c for c in _CYCLE if c not in taken] + [c for c in _CYCLE if c in taken]  # the fixed ones' colours last
    used = {(s.color, str(s.linestyle)) for s in styles.values()}
    k = 0
    for i, name in enumerate(n for n in names if n not in styles):
        for _ in range(len(cycle) * len(_LINESTYLES)):  # the next (colour, line style) not taken, while there are any
            c, j = k % len(cycle), k // len(cycle)
            color, linestyle = OKABE_ITO[cycle[c]], _LINESTYLES[(c + j) % len(_LINESTYLES)]
            k += 1
            if (color, str(linestyle)) not in used:
                break
        used.add((color, str(linestyle)))
        styles[name] = Style(color, linestyle, _MARKERS[(i + 2) % len(_MARKERS)])
    return styles


# -------------------------------------------------------------------------
# data
# -------------------------------------------------------------------------


def load_trajectories(store, benchmark: str | None = None) -> pd.DataFrame:
    """The store's trajectory frame (:data:`TRAJECTORY_COLUMNS`), empty when it has none."""
    from harness.results.trajectories import trajectory_frame

    return trajectory_frame(store, benchmark)


def prepare_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A trajectory frame checked and normalised: ``config`` and ``settings`` (the leaderboard
    section within the benchmark; "" when absent) as text, ``seed`` as int, ``d`` recomputed as
    √max(kl, 0). :raises UsageError: a column is missing."""
    missing = [
        c for c in ("benchmark", "config", "seed", "kind", "episodes", "n", "kl", "gold", "proxy") if c not in frame.columns
    ]
    if missing:
        raise UsageError(f"trajectory frame lacks column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    out = frame.copy()
    out["settings"] = out["settings"].fillna("").astype(str) if "settings" in out.columns else ""
    out["config"] = out["config"].astype(str)
    out["benchmark"] = out["benchmark"].astype(str)
    out["seed"] = out["seed"].astype("int64")
    for col in ("episodes", "n", "kl", "gold", "proxy"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["d"] = np.sqrt(np.clip(out["kl"].to_numpy(), 0.0, None))
    return out


def fit_points(trajectories: pd.DataFrame) -> pd.DataFrame:
    """The points Gao et al.'s forms are fitted to (:func:`harness.results.fits.fit_table`): one
    configuration per leaderboard row (a benchmark's sections are never pooled: the section's
    settings join the label), and configurations that never left π_sft (``sft``: a point, not
    a curve) left out."""
    frame = prepare_frame(trajectories)
    frame["config"] = [f"{c} · {s}" if s else c for c, s in zip(frame["config"], frame["settings"])]
    return frame.groupby(["benchmark", "config"], group_keys=False).filter(lambda part: not stays_at_sft(part))


def _kind(part: pd.DataFrame) -> str:
    return "best-of-n" if (part["kind"] == "best-of-n").all() else "rl"


def _with_x(part: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One configuration's points and the column that orders and aligns its seeds: ``n`` for
    best-of-n, ``episodes`` along training — or, where a seed's episodes repeat (an offline
    learner spends none), the checkpoint's index in the seed's own order."""
    if _kind(part) == "best-of-n":
        return part, "n"
    if all(group["episodes"].is_unique for _, group in part.groupby("seed")):
        return part, "episodes"
    return part.assign(checkpoint=part.groupby("seed").cumcount().astype("float64")), "checkpoint"


def stays_at_sft(part: pd.DataFrame) -> bool:
    """Whether the trajectory points ``part`` (one configuration's) never left π_sft (``sft``):
    every point at KL 0 (exactly 0 for π = π_sft). Such a configuration is π_sft's point, not a
    curve."""
    if (part["kind"] == "best-of-n").any():
        return False
    return bool((part["kl"].fillna(0).abs() < 1e-9).all())


def _seed_series(part: pd.DataFrame, x: str, ys: Sequence[str]) -> dict[int, pd.DataFrame]:
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


def _section(frame: pd.DataFrame, benchmark: str, settings: str | None) -> pd.DataFrame:
    """The rows of one benchmark (and, unless ``settings`` is None, one section of it)."""
    mask = frame["benchmark"] == benchmark
    if settings is not None and "settings" in frame.columns:
        mask &= frame["settings"].fillna("").astype(str) == settings
    return frame[mask]


def _where(benchmark: str, settings: str | None) -> str:
    return f"{benchmark} · {settings}" if settings else benchmark


def has_gold(part: pd.DataFrame) -> bool:
    return bool(part["gold"].notna().any())


# -------------------------------------------------------------------------
# figures
# -------------------------------------------------------------------------


@contextmanager
def _rc():
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _kl_axis(ax) -> None:
    """KL in nats on the top axis, beside d = √KL at the bottom (the x range starts at 0)."""
    top = ax.secondary_xaxis("top", functions=(lambda d: np.square(d), lambda kl: np.sqrt(np.clip(kl, 0, None))))
    top.set_xlabel("KL(π ‖ π_sft)  [nats per sequence]")


def _message_figure(title: str, message: str):
    with _rc():
        fig = _figure(8.0, 3.0)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    return fig


def frontier_figure(frame: pd.DataFrame, benchmark: str, styles: Mapping[str, Style] | None = None, settings: str | None = None):
    """Gold reward against d = √KL on ``benchmark``: per configuration a thin line per seed
    (label ``_seed <seed>: <config>``, kept out of the legend) and a thick line for the mean over
    seeds (label: the configuration and its seed count; RL trajectories aligned by episodes,
    best-of-n by n, over the range every seed covers), π_sft
    as a star at d = 0 (label ``π_sft (d = 0)``) with a dotted line at its gold level. A benchmark without
    a gold reward gets a figure that says so, with no lines. ``settings``: only that section of
    the benchmark (the leaderboard's; None: every row of the benchmark)."""
    from matplotlib.lines import Line2D

    part = _section(prepare_frame(frame), benchmark, settings)
    title = f"{_where(benchmark, settings)}: gold reward vs KL from π_sft"
    if part.empty:
        raise UsageError(f"no trajectories for benchmark {benchmark!r}")
    if not has_gold(part):
        return _message_figure(title, f"The benchmark {benchmark!r} has no gold reward r*: there is no gold-vs-KL frontier to "
                                      "draw.\nThe over-optimisation figure shows its proxy reward r̂ against KL.")  # fmt: skip
    styles = styles or assign_styles(part["config"])
    with _rc():
        fig = _figure(9.5, 5.6)
        ax = fig.add_subplot()
        sft = sft_point(part)
        for config in sorted(part["config"].unique()):
            cpart = part[part["config"] == config]
            if stays_at_sft(cpart):
                continue
            style = styles[config]
            kind = _kind(cpart)
            cpart, x = _with_x(cpart)
            series = _seed_series(cpart, x, ["d", "gold"])
            for seed, s in series.items():
                ax.plot(s["d"], s["gold"], color=style.color, linestyle=style.linestyle, linewidth=0.8, alpha=0.35,
                        label=f"_seed {seed}: {config}", zorder=2)  # fmt: skip
            mean = align_seeds(series, x, ["d", "gold"], every_seed=True)
            n_seeds = len(series)
            label = f"{config}  ({n_seeds} seed{'s' * (n_seeds != 1)})"
            ax.plot(mean["d_mean"], mean["gold_mean"], color=style.color, linestyle=style.linestyle, marker=style.marker,
                    markersize=4, linewidth=2.2, label=label, zorder=3)  # fmt: skip
            if kind == "best-of-n":
                for _, row in mean.iterrows():
                    if row["n"] > 1 and math.log2(row["n"]).is_integer() and int(math.log2(row["n"])) % 2 == 0:
                        ax.annotate(f"n={int(row['n'])}", (row["d_mean"], row["gold_mean"]), textcoords="offset points",
                                    xytext=(0, -13), ha="center", fontsize=8, color=style.color)  # fmt: skip
        if sft is not None and not math.isnan(sft[0]):
            ax.axhline(sft[0], color=SFT_COLOR, linestyle=":", linewidth=1.0, label="_π_sft level", zorder=1)
            ax.plot(
                [0.0], [sft[0]], linestyle="none", marker="*", markersize=14, color=SFT_COLOR, label="π_sft (d = 0)", zorder=4
            )
        ax.set_xlim(left=0.0)
        ax.set_xlabel("d = √KL(π ‖ π_sft)  [√nats]")
        ax.set_ylabel("gold reward r*  (mean over checkpoint prompts)")
        ax.set_title(title)
        _kl_axis(ax)
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="#777777", linewidth=0.8, alpha=0.6))
        labels.append("thin: one seed each")
        handles.append(Line2D([], [], color=SFT_COLOR, linestyle=":", linewidth=1.0))
        labels.append("π_sft's gold: below it, gold was lost")
        fig.legend(handles, labels, loc="outside right upper", frameon=False)
    return fig


def _aligned_zero_limits(left: tuple[float, float], right: tuple[float, float]) -> tuple[tuple, tuple]:
    """y-limits for two axes that put both zeros at the same height and show every value."""

    def span(lo: float, hi: float) -> tuple[float, float]:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo == 0:
            return -1.0, 1.0
        pad = 0.06 * (hi - lo)
        return lo - pad, hi + pad

    (l_lo, l_hi), (r_lo, r_hi) = span(*left), span(*right)
    # the share of each axis below zero; both take the larger, the other extends downwards or upwards
    f = max(-l_lo / (l_hi - l_lo), -r_lo / (r_hi - r_lo))
    if f >= 1.0:
        return (l_lo, l_hi), (r_lo, r_hi)

    def fit(lo: float, hi: float) -> tuple[float, float]:
        if -lo / (hi - lo) < f:  # too little room below zero: lower the bottom
            lo = -f * hi / (1 - f)
        return lo, hi

    return fit(l_lo, l_hi), fit(r_lo, r_hi)


def overoptimisation_figure(frame: pd.DataFrame, benchmark: str, styles: Mapping[str, Style] | None = None,
                            settings: str | None = None):  # fmt: skip
    """Per configuration of ``benchmark`` (``sft`` aside: it has no trajectory), one panel: the
    gain in gold r* (left axis, solid) and in proxy r̂ (right axis, dashed) over each seed's own
    d = 0 point, against d = √KL, mean ± 95% CI over seeds; both zeros level. All panels share
    their axes' scales, so configurations compare across panels."""
    from matplotlib.lines import Line2D

    part = _section(prepare_frame(frame), benchmark, settings)
    if part.empty:
        raise UsageError(f"no trajectories for benchmark {benchmark!r}")
    configs = [c for c in sorted(part["config"].unique()) if not stays_at_sft(part[part["config"] == c])]
    title = f"{_where(benchmark, settings)}: proxy vs gold reward as the policy moves away from π_sft"
    if not configs:
        return _message_figure(
            title, f"No configuration on {benchmark!r} moved away from π_sft (only sft runs): nothing to draw."
        )
    gold_known = has_gold(part)
    curves = {}
    for config in configs:
        cpart = part[part["config"] == config]
        kind = _kind(cpart)
        cpart, x = _with_x(cpart)
        series = {}
        for seed, s in _seed_series(cpart, x, ["d", "gold", "proxy"]).items():
            base = s.iloc[0]  # the seed's first point: π_sft (episode 0) or n = 1
            series[seed] = s.assign(gold_gain=s["gold"] - base["gold"], proxy_gain=s["proxy"] - base["proxy"])
        curves[config] = (kind, len(series), align_seeds(series, x, ["d", "gold_gain", "proxy_gain"], every_seed=True))

    def extent(col: str) -> tuple[float, float]:
        values = np.concatenate(
            [c[f"{col}_{k}"].to_numpy(dtype="float64") for _, _, c in curves.values() for k in ("mean", "lo", "hi")]
        )
        values = values[np.isfinite(values)]
        return (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)

    gold_lim, proxy_lim = _aligned_zero_limits(extent("gold_gain"), extent("proxy_gain"))
    d_max = max(float(np.nanmax(c["d_mean"].to_numpy(dtype="float64"))) if len(c) else 0.0 for _, _, c in curves.values())
    ncols = min(3, len(configs))
    nrows = math.ceil(len(configs) / ncols)
    with _rc():
        fig = _figure(4.4 * ncols + 0.6, 3.4 * nrows + 1.0)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, config in enumerate(configs):
            ax = axes.flat[i]
            kind, n_seeds, c = curves[config]
            twin = ax.twinx()
            twin.grid(False)
            twin.spines["right"].set_visible(True)
            ax.axhline(0.0, color="#999999", linewidth=0.8, zorder=1)
            if gold_known:
                ax.fill_between(c["d_mean"], c["gold_gain_lo"], c["gold_gain_hi"], color=GOLD_COLOR, alpha=0.2, linewidth=0)
                ax.plot(c["d_mean"], c["gold_gain_mean"], color=GOLD_COLOR, linestyle="-", marker="o", markersize=3.5,
                        linewidth=2.0, label="gold r*")  # fmt: skip
            twin.fill_between(c["d_mean"], c["proxy_gain_lo"], c["proxy_gain_hi"], color=PROXY_COLOR, alpha=0.15, linewidth=0)
            twin.plot(c["d_mean"], c["proxy_gain_mean"], color=PROXY_COLOR, linestyle="--", marker="^", markersize=3.5,
                      linewidth=2.0, label="proxy r̂")  # fmt: skip
            ax.set_ylim(*gold_lim)
            twin.set_ylim(*proxy_lim)
            ax.set_xlim(0.0, max(d_max * 1.04, 1e-6))
            ax.set_title(f"{config}  ({n_seeds} seed{'s' * (n_seeds != 1)}{', over n' if kind == 'best-of-n' else ''})")
            if i % ncols == 0:
                ax.set_ylabel("Δ gold r* over π_sft" if gold_known else "(no gold reward r*)", color="#8a5d00")
            else:
                ax.tick_params(labelleft=False)
            if i % ncols == ncols - 1 or i == len(configs) - 1:
                twin.set_ylabel("Δ proxy r̂ over π_sft  [σ of r̂ on π_sft]", color=PROXY_COLOR)
            else:
                twin.tick_params(labelright=False)
            if i >= len(configs) - ncols:
                ax.set_xlabel("d = √KL(π ‖ π_sft)  [√nats]")
        for j in range(len(configs), nrows * ncols):
            axes.flat[j].set_axis_off()
        fig.suptitle(title + ("" if gold_known else f"  (no gold reward r* on {benchmark})"))
        handles = [Line2D([], [], color=PROXY_COLOR, linestyle="--", marker="^", linewidth=2.0)]
        labels = ["proxy r̂ gain (right axis)"]
        if gold_known:
            handles.insert(0, Line2D([], [], color=GOLD_COLOR, linestyle="-", marker="o", linewidth=2.0))
            labels.insert(0, "gold r* gain (left axis)")
        labels.append("mean over seeds ± 95% CI; each seed's gain is over its own d = 0 point")
        handles.append(Line2D([], [], linestyle="none"))
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return fig


def curves_figure(curves: pd.DataFrame, benchmark: str, metric: str, styles: Mapping[str, Style] | None = None,
                  settings: str | None = None):  # fmt: skip
    """``metric`` against the training step on ``benchmark``, one line per configuration (label:
    the configuration and its seed count), mean ± 95% CI over seeds aligned by step
    (:func:`align_seeds`). ``curves``: long, with ``benchmark``, ``config``, ``seed``,
    ``step``, ``key``, ``value`` (and ``settings``: see :func:`frontier_figure`)."""
    part = _section(curves, benchmark, settings)
    part = part[part["key"] == metric].dropna(subset=["value"])
    if part.empty:
        raise UsageError(f"no run on {benchmark!r} logged {metric!r}")
    styles = styles or assign_styles(part["config"])
    with _rc():
        fig = _figure(9.0, 5.0)
        ax = fig.add_subplot()
        for config in sorted(part["config"].unique()):
            style = styles[config]
            series = {int(seed): g.groupby("step")["value"].mean().reset_index()
                      for seed, g in part[part["config"] == config].groupby("seed")}  # fmt: skip
            c = align_seeds(series, "step", ["value"])
            ax.fill_between(c["step"], c["value_lo"], c["value_hi"], color=style.color, alpha=0.18, linewidth=0)
            marker_every = max(1, len(c) // 12)
            ax.plot(c["step"], c["value_mean"], color=style.color, linestyle=style.linestyle, marker=style.marker,
                    markevery=marker_every, markersize=4, linewidth=1.8,
                    label=f"{config}  ({len(series)} seed{'s' * (len(series) != 1)})")  # fmt: skip
        ax.set_xlabel("training step  (as each algorithm logs it: an update, or a trainer step)")
        ax.set_ylabel(f"{metric}\n{METRIC_LABELS[metric]}" if metric in METRIC_LABELS else metric)
        ax.set_title(
            f"{_where(benchmark, settings)}: {metric} during training\nmean ± 95% CI over seeds, aligned by step", fontsize=10
        )
        fig.legend(loc="outside right upper", frameon=False)
    return fig


# -------------------------------------------------------------------------
# files
# -------------------------------------------------------------------------


def slug(text: str) -> str:
    """``text`` as a file-name part: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x"


def figure_bytes(fig, fmt: str) -> bytes:
    """``fig`` as PNG or SVG bytes, deterministically (fixed metadata and hash salt)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    with _rc():
        if fmt == "png":
            FigureCanvasAgg(fig).print_png(buf, metadata=PNG_METADATA)
        elif fmt == "svg":
            FigureCanvasSVG(fig).print_svg(buf, metadata=SVG_METADATA)
        else:
            raise ValueError(f"format must be png or svg, not {fmt!r}")
    return buf.getvalue()


def svg_markup(fig, salt: str) -> str:
    """``fig`` as an ``<svg>`` element for an HTML page: no XML declaration or doctype, and
    ``salt`` in the hash of its element ids, so that several figures on one page do not share
    ids. Every text in it was escaped by matplotlib's SVG writer."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"rlhf-harness/{salt}"}):
        FigureCanvasSVG(fig).print_svg(buf, metadata=SVG_METADATA)
    text = buf.getvalue().decode("utf-8")
    return text[text.index("<svg") :]


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` into ``out_dir``; their paths."""
    paths = []
    for fmt in ("png", "svg"):
        path = Path(out_dir) / f"{stem}.{fmt}"
        data = figure_bytes(fig, fmt)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            if tmp.parent.is_dir():
                tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        paths.append(path)
    return paths


# -------------------------------------------------------------------------
# from the store
# -------------------------------------------------------------------------


def run_info(store, benchmark: str | None = None) -> dict[str, tuple[str, str]]:
    """The runs a leaderboard shows (finished; each experiment's newest code version, one per
    seed), each with its row's label and section, as the trajectory frame labels them:
    ``run_id → (config, settings)``."""
    from harness.results.leaderboard import build_leaderboard, row_labels
    from harness.results.trajectories import latest_runs

    runs = latest_runs(store.metrics_frame(benchmark=benchmark))
    if runs.empty:
        return {}
    board = build_leaderboard(runs)
    labels = dict(zip(board["key"], row_labels(board.to_dict("records"))))
    sections = dict(zip(board["key"], board["settings"]))
    return {r.run_id: (labels.get(r.experiment_key, r.algorithm), sections.get(r.experiment_key, "")) for r in runs.itertuples()}


CURVE_COLUMNS = ["run_id", "benchmark", "settings", "config", "seed", "step", "key", "value"]


def curve_frame(store, benchmark: str | None = None, info: Mapping[str, tuple[str, str]] | None = None) -> pd.DataFrame:
    """The training curves of the runs :func:`run_info` names, long (:data:`CURVE_COLUMNS`),
    checkpoint evaluations left out."""
    info = run_info(store, benchmark) if info is None else info
    parts = []
    for r in store.list_runs(benchmark=benchmark, status="finished"):
        if r.run_id not in info:
            continue
        wide = store.curves(r.run_id)
        keys = [k for k in wide.columns if k != "step" and not k.startswith(NOT_TRAINING_PREFIXES)]
        if not keys:
            continue
        long = wide.melt(id_vars="step", value_vars=keys, var_name="key", value_name="value").dropna(subset=["value"])
        config, settings = info[r.run_id]
        parts.append(long.assign(run_id=r.run_id, benchmark=r.benchmark, settings=settings, config=config, seed=r.seed))
    if not parts:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[CURVE_COLUMNS]


def default_metrics(curves: pd.DataFrame) -> list[str]:
    """:data:`DEFAULT_METRICS` that some run logged; else the first two logged keys."""
    logged = sorted(set(curves["key"])) if len(curves) else []
    chosen = [m for m in DEFAULT_METRICS if m in logged]
    return chosen or logged[:2]


@dataclass
class PlotSet:
    """The figures of one call, by file stem, in drawing order; each one's benchmark; what was
    left out and why."""

    figures: dict[str, object]
    notes: list[str]
    benchmarks: dict[str, str]


def _sections(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (benchmark, settings) sections of a frame, sorted."""
    if frame is None or not len(frame):
        return []
    settings = frame["settings"].fillna("").astype(str) if "settings" in frame.columns else pd.Series("", index=frame.index)
    return sorted(set(zip(frame["benchmark"].astype(str), settings)))


def _stem(prefix: str, benchmark: str, settings: str, sections: Sequence[tuple[str, str]]) -> str:
    """``<prefix>_<benchmark>``, and the section's settings when the benchmark has several."""
    several = sum(b == benchmark for b, _ in sections) > 1
    return f"{prefix}_{slug(benchmark)}" + (f"_{slug(settings) if settings else 'default'}" if several else "")


def build_figures(trajectories: pd.DataFrame, curves: pd.DataFrame, *, kind: str = "all",
                  metrics: Sequence[str] | None = None, benchmark: str | None = None) -> PlotSet:  # fmt: skip
    """The figures of ``kind`` from a trajectory frame and a curve frame (:func:`curve_frame`):
    per benchmark — per leaderboard section of it, when it has several (``settings``) — a
    frontier, an over-optimisation figure and a figure per training metric (``metrics``, else
    :func:`default_metrics`).

    :raises UsageError: an unknown kind, benchmark or metric, or no data for what was asked."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not one of {', '.join(KINDS)}{did_you_mean(kind, KINDS)}")
    traj = prepare_frame(trajectories) if len(trajectories) else trajectories
    if len(curves) and "settings" not in curves.columns:
        curves = curves.assign(settings="")
    sections, curve_sections = _sections(traj), _sections(curves)
    known = sorted({b for b, _ in sections + curve_sections})
    if benchmark is not None and benchmark not in known:
        where = f"; the store has: {', '.join(known)}" if known else ""
        raise UsageError(f"no runs to plot on benchmark {benchmark!r}{did_you_mean(benchmark, known)}{where}")
    if benchmark is not None:
        sections = [sec for sec in sections if sec[0] == benchmark]
        curve_sections = [sec for sec in curve_sections if sec[0] == benchmark]
    styles = assign_styles(list(traj["config"] if len(traj) else []) + list(curves["config"] if len(curves) else []))
    figures: dict[str, object] = {}
    of: dict[str, str] = {}
    notes: list[str] = []
    wants = {"frontier", "overoptimisation"} if kind == "all" else {kind} - {"curves"}
    if wants:
        if not sections:
            message = "no checkpoint evaluations (gold, proxy and KL along training) in the store" + (
                f" for benchmark {benchmark!r}" if benchmark else "") + "; runs record them as they train (--eval-checkpoint-every)"  # fmt: skip
            if kind != "all":
                raise UsageError(message)
            notes.append(message + ": no frontier or over-optimisation figure")
        for b, settings in sections:
            if "frontier" in wants:
                if not has_gold(_section(traj, b, settings)):
                    notes.append(f"{_where(b, settings)} has no gold reward r*: its frontier says so instead of plotting")
                stem = _stem("frontier", b, settings, sections)
                figures[stem], of[stem] = frontier_figure(traj, b, styles, settings=settings), b
            if "overoptimisation" in wants:
                stem = _stem("overoptimisation", b, settings, sections)
                figures[stem], of[stem] = overoptimisation_figure(traj, b, styles, settings=settings), b
    if kind in ("curves", "all"):
        logged = sorted(set(curves["key"])) if len(curves) else []
        if metrics:
            unknown = [m for m in metrics if m not in logged]
            if unknown:
                hint = did_you_mean(unknown[0], logged)
                raise UsageError(f"no run logged {', '.join(map(repr, unknown))}{hint}; logged: {', '.join(logged) or 'nothing'}")
        chosen = list(dict.fromkeys(metrics)) if metrics else default_metrics(curves)
        if not chosen or not curve_sections:
            message = "no training curves in the store" + (f" for benchmark {benchmark!r}" if benchmark else "")
            if kind == "curves":
                raise UsageError(message)
            notes.append(message)
        for b, settings in curve_sections:
            part = _section(curves, b, settings)
            for m in chosen:
                if (part["key"] == m).any():
                    stem = _stem("curves", b, settings, curve_sections) + f"_{slug(m)}"
                    if stem in figures:  # two keys with one slug: keep both
                        stem += f"-{zlib.crc32(m.encode()) % 10_000:04d}"
                    figures[stem], of[stem] = curves_figure(curves, b, m, styles, settings=settings), b
    if not figures:
        raise UsageError("nothing to plot: " + "; ".join(notes) if notes else "nothing to plot")
    return PlotSet(figures, notes, of)


def check_benchmark(store, benchmark: str | None) -> None:
    """:raises UsageError: ``benchmark`` has no finished run in ``store`` (naming the ones that do)."""
    if benchmark is None:
        return
    known = sorted({r.benchmark for r in store.list_runs(status="finished")})
    if benchmark not in known:
        where = f"; the store has: {', '.join(known)}" if known else "; the store has none"
        raise UsageError(f"no finished runs on benchmark {benchmark!r}{did_you_mean(benchmark, known)}{where}")


def plot_store(store, out_dir: Path, *, kind: str = "all", metrics: Sequence[str] | None = None,
               benchmark: str | None = None) -> tuple[list[Path], list[str]]:  # fmt: skip
    """Draw the figures of ``kind`` from ``store`` into ``out_dir`` (PNG and SVG); the paths
    written and notes on what was left out."""
    check_benchmark(store, benchmark)
    trajectories = load_trajectories(store, benchmark) if kind != "curves" else pd.DataFrame(columns=list(TRAJECTORY_COLUMNS))
    curves = curve_frame(store, benchmark) if kind in ("curves", "all") else pd.DataFrame(columns=CURVE_COLUMNS)
    plots = build_figures(trajectories, curves, kind=kind, metrics=metrics, benchmark=benchmark)
    paths = []
    for stem, fig in plots.figures.items():
        paths += save_figure(fig, out_dir, stem)
    return paths, plots.notes
