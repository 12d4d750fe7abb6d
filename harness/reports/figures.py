"""The figures of ``harness plot``: where each algorithm lands between gold reward and
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

Layer: harness.reports (imports harness.analysis and its own modules; matplotlib lazily).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from harness.analysis.seed_curves import align_seeds, seed_series, sft_point, trajectory_kind, with_x
from harness.analysis.trajectories import prepare_frame, stays_at_sft
from harness.errors import UsageError
from harness.reports.plot_style import GOLD_COLOR, METRIC_LABELS, PROXY_COLOR, SFT_COLOR, Style, assign_styles, new_figure, rc


def section_of(frame: pd.DataFrame, benchmark: str, settings: str | None) -> pd.DataFrame:
    """The rows of one benchmark (and, unless ``settings`` is None, one section of it)."""
    mask = frame["benchmark"] == benchmark
    if settings is not None and "settings" in frame.columns:
        mask &= frame["settings"].fillna("").astype(str) == settings
    return frame[mask]


def section_text(benchmark: str, settings: str | None) -> str:
    return f"{benchmark} · {settings}" if settings else benchmark


def has_gold(part: pd.DataFrame) -> bool:
    return bool(part["gold"].notna().any())


def _kl_axis(ax) -> None:
    """KL in nats on the top axis, beside d = √KL at the bottom (the x range starts at 0)."""
    top = ax.secondary_xaxis("top", functions=(lambda d: np.square(d), lambda kl: np.sqrt(np.clip(kl, 0, None))))
    top.set_xlabel("KL(π ‖ π_sft)  [nats per sequence]")


def _message_figure(title: str, message: str):
    with rc():
        fig = new_figure(8.0, 3.0)
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

    part = section_of(prepare_frame(frame), benchmark, settings)
    title = f"{section_text(benchmark, settings)}: gold reward vs KL from π_sft"
    if part.empty:
        raise UsageError(f"no trajectories for benchmark {benchmark!r}")
    if not has_gold(part):
        return _message_figure(title, f"The benchmark {benchmark!r} has no gold reward r*: there is no gold-vs-KL frontier to "
                                      "draw.\nThe over-optimisation figure shows its proxy reward r̂ against KL.")  # fmt: skip
    styles = styles or assign_styles(part["config"])
    with rc():
        fig = new_figure(9.5, 5.6)
        ax = fig.add_subplot()
        sft = sft_point(part)
        for config in sorted(part["config"].unique()):
            cpart = part[part["config"] == config]
            if stays_at_sft(cpart):
                continue
            style = styles[config]
            kind = trajectory_kind(cpart)
            cpart, x = with_x(cpart)
            series = seed_series(cpart, x, ["d", "gold"])
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

    part = section_of(prepare_frame(frame), benchmark, settings)
    if part.empty:
        raise UsageError(f"no trajectories for benchmark {benchmark!r}")
    configs = [c for c in sorted(part["config"].unique()) if not stays_at_sft(part[part["config"] == c])]
    title = f"{section_text(benchmark, settings)}: proxy vs gold reward as the policy moves away from π_sft"
    if not configs:
        return _message_figure(
            title, f"No configuration on {benchmark!r} moved away from π_sft (only sft runs): nothing to draw."
        )
    gold_known = has_gold(part)
    curves = {}
    for config in configs:
        cpart = part[part["config"] == config]
        kind = trajectory_kind(cpart)
        cpart, x = with_x(cpart)
        series = {}
        for seed, s in seed_series(cpart, x, ["d", "gold", "proxy"]).items():
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
    with rc():
        fig = new_figure(4.4 * ncols + 0.6, 3.4 * nrows + 1.0)
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
    part = section_of(curves, benchmark, settings)
    part = part[part["key"] == metric].dropna(subset=["value"])
    if part.empty:
        raise UsageError(f"no run on {benchmark!r} logged {metric!r}")
    styles = styles or assign_styles(part["config"])
    with rc():
        fig = new_figure(9.0, 5.0)
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
            f"{section_text(benchmark, settings)}: {metric} during training\nmean ± 95% CI over seeds, aligned by step",
            fontsize=10,
        )
        fig.legend(loc="outside right upper", frameon=False)
    return fig
