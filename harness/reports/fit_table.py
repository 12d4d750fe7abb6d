"""A fit table (:func:`harness.analysis.fits.fit_table`) rendered as md, csv or html
(:func:`render_fit_table`). Layer: harness.reports (imports harness.analysis and its own
modules).
"""

from __future__ import annotations

import html
import math

import pandas as pd

from harness.analysis.columns import NA
from harness.analysis.fits import CI_QUANTITIES
from harness.errors import UsageError, did_you_mean
from harness.reports.text import md_cell

FIT_FORMATS = ("md", "csv", "html")

_HEADERS = {"seeds": "seeds", "points": "points", "d_max": "d max", "alpha": "α", "beta": "β", "r2": "R²",
            "d_peak": "d*", "kl_peak": "KL*", "boot_refused": "boot refused"}  # fmt: skip
_COUNTS = ("seeds", "points", "boot_refused")


def _number(value, precision: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) >= 1e5:
        return f"{value:.{precision}g}"
    return f"{value:.{precision}f}"


def _display(table: pd.DataFrame, precision: int) -> pd.DataFrame:
    """Text cells: ``value [lo, hi]`` for the bootstrapped quantities, "–" for none, ∞ for no peak."""
    out = pd.DataFrame(index=table.index)
    for col in ("benchmark", "config", "kind", "form"):
        out[col] = table[col].astype(str)
    for col in ("seeds", "points", "d_max", "alpha", "beta", "r2", "d_peak", "kl_peak", "boot_refused"):
        p = 0 if col in _COUNTS else precision
        cells = [_number(v, p) for v in table[col].tolist()]
        if col in CI_QUANTITIES:
            lo = [_number(v, precision) for v in table[f"{col}_lo"].tolist()]
            hi = [_number(v, precision) for v in table[f"{col}_hi"].tolist()]
            cells = [c if a == NA else f"{c} [{a}, {b}]" for c, a, b in zip(cells, lo, hi)]
        out[_HEADERS[col]] = cells
    out["note"] = table["note"].fillna("").astype(str)
    return out


def _legend(table: pd.DataFrame) -> str:
    attrs = table.attrs
    level = attrs.get("level", 0.95)
    return (
        'Fits of Gao, Schulman & Hilton (2022), "Scaling Laws for Reward Model Overoptimization": '
        "R is the gold reward gained over each seed's starting policy (gold − gold at d = 0), "
        "d = √KL(π‖π_sft) with KL in nats per sequence; RL: R = d (α − β log d), best-of-n: R = d (α − β d), "
        "least squares on the pooled points of all seeds. d*, KL* = d*²: where the fitted gain peaks "
        "(∞: β ≤ 0, no peak in range). R² against the mean gain. Brackets: "
        f"{level:.0%} percentile bootstrap interval over seeds (seeds resampled with replacement, "
        f"B = {attrs.get('n_boot', '?')} refits, seed {attrs.get('seed', '?')}; `boot refused`: refits that could "
        "not be made, left out); none with one seed. –: none.\n"
    )


def _html(shown: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                     for row in shown.itertuples(index=False))  # fmt: skip
    return f'<table class="fit-table">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n'


def render_fit_table(table: pd.DataFrame, fmt: str, precision: int = 3) -> str:
    """``table`` from :func:`fit_table` as ``fmt`` (:data:`FIT_FORMATS`).

    md: one ``### <benchmark>`` table each, then a legend (forms, d = √KL, what the intervals
    are). csv: every column at full precision (``inf`` for no peak). html: a ``<table>`` fragment,
    every cell escaped.
    """
    if fmt not in FIT_FORMATS:
        raise UsageError(f"format {fmt!r} is not one of {', '.join(FIT_FORMATS)}{did_you_mean(fmt, FIT_FORMATS)}")
    if fmt == "csv":
        return table.to_csv(index=False)
    if table.empty:
        return "no trajectories to fit\n"
    shown = _display(table, precision)
    if fmt == "html":
        return _html(shown)
    sections = []
    for bench, part in shown.groupby("benchmark", sort=False):
        part = part.drop(columns=["benchmark"]).map(md_cell)
        align = ["left"] * 3 + ["right"] * 9 + ["left"]
        text = part.to_markdown(index=False, disable_numparse=True, colalign=align)
        sections.append(f"### {md_cell(str(bench))}\n\n{text}\n")
    return "\n".join(sections) + "\n" + _legend(table)
