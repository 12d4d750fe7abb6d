"""Figures from the store (``harness plot``): per benchmark — per leaderboard section of it, when
it has several — a frontier (gold reward against d = √KL), an over-optimisation figure (proxy and
gold gains against d) and training curves over seeds; what each draws is told in
:mod:`harness.reports.figures`. Each configuration keeps one style in every figure of a call
(:mod:`harness.reports.plot_style`), and the files are deterministic (:mod:`harness.reports.figure_files`).

This module draws a store's figures (:func:`build_figures`, :func:`plot_store`) and gathers, as
one namespace, what the figures are made of: the frames (:mod:`harness.analysis.trajectories`,
:mod:`harness.analysis.seed_curves`), the styles, the figures and their files.
:func:`plot_store` and :func:`harness.reports.html_report.build_report` read the trajectories
through this module's ``load_trajectories``. Layer: harness.reports (imports harness.analysis,
harness.store and its own modules).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.analysis.seed_curves import align_seeds, seed_series, sft_point, trajectory_kind, with_x
from harness.analysis.trajectories import (
    CURVE_COLUMNS,
    NOT_TRAINING_PREFIXES,
    TRAJECTORY_COLUMNS,
    curve_frame,
    fit_points,
    latest_runs,
    load_trajectories,
    prepare_frame,
    run_info,
    stays_at_sft,
    trajectory_frame,
)
from harness.errors import UsageError, did_you_mean
from harness.reports.figure_files import figure_bytes, save_figure, slug, svg_markup
from harness.reports.figures import curves_figure, frontier_figure, has_gold, overoptimisation_figure, section_of, section_text
from harness.reports.plot_style import (
    GOLD_COLOR,
    METRIC_LABELS,
    OKABE_ITO,
    PNG_METADATA,
    PROXY_COLOR,
    RC,
    SFT_COLOR,
    SVG_METADATA,
    Style,
    assign_styles,
)

__all__ = [
    "CURVE_COLUMNS",
    "DEFAULT_METRICS",
    "GOLD_COLOR",
    "KINDS",
    "METRIC_LABELS",
    "NOT_TRAINING_PREFIXES",
    "OKABE_ITO",
    "PNG_METADATA",
    "PROXY_COLOR",
    "RC",
    "SFT_COLOR",
    "SVG_METADATA",
    "TRAJECTORY_COLUMNS",
    "PlotSet",
    "Style",
    "align_seeds",
    "assign_styles",
    "build_figures",
    "check_benchmark",
    "curve_frame",
    "curves_figure",
    "default_metrics",
    "figure_bytes",
    "fit_points",
    "frontier_figure",
    "has_gold",
    "latest_runs",
    "load_trajectories",
    "overoptimisation_figure",
    "plot_store",
    "prepare_frame",
    "run_info",
    "save_figure",
    "section_of",
    "section_text",
    "seed_series",
    "sft_point",
    "slug",
    "stays_at_sft",
    "svg_markup",
    "trajectory_frame",
    "trajectory_kind",
    "with_x",
]  # fmt: skip

KINDS = ("frontier", "overoptimisation", "curves", "all")
#: training curves drawn when no ``--metric`` is given (those that some run logged)
DEFAULT_METRICS = ("objective/scores", "objective/kl")


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
                if not has_gold(section_of(traj, b, settings)):
                    notes.append(f"{section_text(b, settings)} has no gold reward r*: its frontier says so instead of plotting")
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
            part = section_of(curves, b, settings)
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
