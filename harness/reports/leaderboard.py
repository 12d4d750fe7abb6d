"""Leaderboards rendered (:func:`render`): the frame of
:func:`harness.analysis.leaderboard.build_leaderboard` as md (a table per benchmark setting and a
legend), csv (every column at full precision), html or latex; and written (:func:`write_leaderboard`:
``LEADERBOARD.md`` and ``leaderboard.csv``). Layer: harness.reports (imports harness.analysis and
its own modules).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis import significance as sig
from harness.analysis.columns import BASELINE_COLUMNS, HI, LO, METRIC_BOUNDS, NA, NUMERIC_COLUMNS, PAIRED, TEST_SUFFIXES, WELCH
from harness.analysis.labels import section_title
from harness.errors import UsageError, did_you_mean
from harness.reports.files import write_atomically
from harness.reports.leaderboard_legends import (
    comparison_legend,
    interval_legend,
    is_compared,
    metric_columns_of,
    plain_legend,
    section_lines,
)
from harness.reports.text import latex_escape, md_cell

FORMATS = ("md", "csv", "html", "latex")
EMPTY_MESSAGE = "no finished runs in the store"
#: how a verdict is shown in a cell
MARKS = {sig.BETTER: "▲", sig.WORSE: "▼", sig.HIGHER: "+", sig.LOWER: "−", sig.SAME: "≈", sig.NOT_TESTABLE: "?", "": "·"}


def _headers(df: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, str]:
    arrows = {True: " ↑", False: " ↓"}
    return {m: m + arrows.get(higher_is_better.get(m), "") for m in metric_columns_of(df)}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _display(df: pd.DataFrame, precision: int) -> pd.DataFrame:
    """Every cell as text, "–" for missing values. A metric is one cell: ``mean ± half-width``
    (a t-interval) or ``mean [lo, hi]`` (a metric with bounds, :data:`METRIC_BOUNDS`), and, when
    compared with a baseline, the two tests' marks (:data:`MARKS`) as ``welch/paired``. The
    interval and test columns are folded in, and the baseline row's algorithm says so."""
    metrics = metric_columns_of(df)
    folded = {m + s for m in metrics for s in (LO, HI, *TEST_SUFFIXES)} | set(BASELINE_COLUMNS[2:] + ["label"])
    formats = {"seeds": "{:.0f}", "episodes": "{:.0f}", "rm_queries": "{:.0f}", "annotations": "{:.0f}",
               "samples_per_response": "{:.0f}", "wall_s": "{:.1f}"}  # fmt: skip
    number = f"{{:.{precision}f}}"

    def cell(value: Any, fmt: str | None) -> str:
        if _missing(value):
            return NA
        if fmt and isinstance(value, (int, float)):
            return fmt.format(value)
        return str(value)

    out = pd.DataFrame(index=df.index)
    compared = is_compared(df)
    for col in df.columns:
        if col in folded:
            continue
        if col not in metrics:
            out[col] = [cell(v, formats.get(col)) for v in df[col].tolist()]
            continue
        texts = []
        for _, row in df.iterrows():
            text, lo, hi = cell(row[col], number), row[col + LO], row[col + HI]
            if text != NA and not (_missing(lo) or _missing(hi)):
                bracket = col in METRIC_BOUNDS
                text += f" [{number.format(lo)}, {number.format(hi)}]" if bracket else f" ± {number.format(hi - row[col])}"
            if compared and text != NA and row["baseline"] and row.get(col + WELCH) != sig.BASELINE:
                text += f" {MARKS.get(row[col + WELCH], '·')}/{MARKS.get(row[col + PAIRED], '·')}"
            texts.append(text)
        out[col] = texts
    if compared:
        is_baseline = [bool(b) and b == label for b, label in zip(df["baseline"], df["label"])]
        out["algorithm"] = [a + " (baseline)" if mine else a for a, mine in zip(out["algorithm"], is_baseline)]
    return out


def _numeric(df: pd.DataFrame) -> set[str]:
    return set(NUMERIC_COLUMNS) | set(metric_columns_of(df))


#: short markdown headers for the key columns
_MD_HEADERS = {"rm_queries": "rm queries", "annotations": "own annotations", "samples_per_response": "samples/resp"}


def _markdown(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    """One section per benchmark setting; each metric is one cell (see :func:`_display`), its
    header without the ``eval/`` namespace, so the table stays readable. The ``code`` column is
    shown only when rows differ in it (else the legend names the one code version). With a
    baseline, a line under each title says which tests ran and how many comparisons."""
    shown = _display(df, precision)
    codes = sorted(set(shown["code"]))
    hidden = ["key", "baseline"] + (["code"] if len(codes) == 1 else [])
    shown = shown.drop(columns=[c for c in hidden if c in shown.columns]).map(md_cell)
    headers = {**_MD_HEADERS, **{m: h.removeprefix("eval/") for m, h in _headers(df, hib).items()}}
    numeric = _numeric(df)
    lines = section_lines(df)
    sections = []
    for section, part in shown.groupby(["benchmark", "version", "settings"], sort=False):
        table = part.drop(columns=["benchmark", "version", "settings"])
        colalign = ["right" if c in numeric else "left" for c in table.columns]
        table = table.rename(columns=lambda c: md_cell(headers.get(c, c)))
        title = f"### {section_title(section)}"
        line = f"{md_cell(lines[section])}\n\n" if section in lines else ""
        sections.append(f"{title}\n\n{line}{table.to_markdown(index=False, disable_numparse=True, colalign=colalign)}\n")
    legend = (
        interval_legend(df)
        + "↑/↓: higher/lower is better. "
        + (comparison_legend(df) if is_compared(df) else "")
        + "`config`: what sets a row apart from the other rows of its algorithm; "
        "`episodes`, `rm queries`: training; `own annotations`: preference data the optimizer itself trained on (DPO), in "
        "pair-equivalents — every row with a learned reward model also rests on that model's annotations (REWARD_MODELS.md); "
        "`samples/resp`: responses sampled per answer at inference (best-of-n: n). "
        "–: none, or not measured (gold and win rate on a benchmark without a gold reward r*)."
        + (f" Code version: {codes[0]}." if len(codes) == 1 else "")
        + "\n"
    )
    return "\n".join(sections) + "\n" + legend


def _latex(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    # A plain booktabs tabular: DataFrame.to_latex would need jinja2, which is not a dependency.
    shown = _display(df, precision)
    numeric = _numeric(df)
    align = "".join("r" if c in numeric else "l" for c in shown.columns)
    shown = shown.rename(columns=_headers(df, hib))
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(map(latex_escape, shown.columns)) + r" \\", r"\midrule"]
    previous = None
    for row in shown.itertuples(index=False):
        if previous is not None and row[0] != previous:
            lines.append(r"\midrule")  # between benchmarks
        previous = row[0]
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if is_compared(df):  # the marks mean nothing without it
        lines += ["", r"\smallskip{\footnotesize " + latex_escape(plain_legend(df)) + "}"]
    return "\n".join(lines) + "\n"


def _html(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    table = _display(df, precision).rename(columns=_headers(df, hib)).to_html(index=False, escape=True, border=0)
    return table + "\n" + (f"<p>{html.escape(plain_legend(df), quote=False)}</p>\n" if is_compared(df) else "")


def render(df: pd.DataFrame, fmt: str, higher_is_better: Mapping[str, bool] | None = None, precision: int = 3) -> str:
    """``df`` from :func:`build_leaderboard` as text in ``fmt`` (one of :data:`FORMATS`).

    md: one ``### <benchmark> (v<version>) · <settings>`` table per benchmark setting, then a
    legend. csv: every column at full precision, plain headers (intervals as ``lo``/``hi``
    columns; with a baseline, the verdicts as words and the Holm-adjusted p-values). html:
    escaped. latex: a booktabs tabular. Metric cells are ``mean ± half-width`` or ``mean [lo, hi]``
    and, with a baseline, ``welch/paired`` marks; html and latex then carry the legend too.
    ``higher_is_better`` defaults to ``df.attrs["higher_is_better"]``. An empty ``df`` renders as
    :data:`EMPTY_MESSAGE`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}{did_you_mean(fmt, FORMATS)}")
    if df.empty:
        return EMPTY_MESSAGE + "\n"
    hib = df.attrs.get("higher_is_better", {}) if higher_is_better is None else higher_is_better
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "md":
        return _markdown(df, hib, precision)
    if fmt == "html":
        return _html(df, hib, precision)
    return _latex(df, hib, precision)


def write_leaderboard(
    df: pd.DataFrame, out_dir: Path, higher_is_better: Mapping[str, bool] | None = None, preamble: str = ""
) -> list[Path]:
    """Write ``LEADERBOARD.md`` (after ``preamble``) and ``leaderboard.csv`` into ``out_dir``;
    return their paths."""
    out_dir = Path(out_dir)
    return [
        write_atomically(out_dir / "LEADERBOARD.md", preamble + render(df, "md", higher_is_better)),
        write_atomically(out_dir / "leaderboard.csv", render(df, "csv", higher_is_better)),
    ]
