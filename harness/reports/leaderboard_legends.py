"""The legends under a rendered leaderboard: which interval each metric has, what the comparison
marks mean, and per table which tests ran against its baseline. Layer: harness.reports (imports
harness.analysis).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from harness.analysis import significance as sig
from harness.analysis.columns import HI, LO, METRIC_BOUNDS
from harness.analysis.labels import section_title


def metric_columns_of(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c + LO in df.columns and c + HI in df.columns]


def is_compared(df: pd.DataFrame) -> bool:
    return "baseline" in df.columns


def _short(metrics: Iterable[str]) -> str:
    return ", ".join(m.removeprefix("eval/") for m in metrics)


def interval_legend(df: pd.DataFrame) -> str:
    """Which interval each metric has (the methods of :func:`harness.analysis.intervals.interval`)."""
    metrics = metric_columns_of(df)
    used = df.attrs.get("intervals") or {}
    wilson = [m for m in metrics if sig.WILSON in used.get(m, "") or (m not in used and METRIC_BOUNDS.get(m) == (0.0, 1.0))]
    cut = [m for m in metrics if sig.T_CUT in used.get(m, "") or (m not in used and METRIC_BOUNDS.get(m) == (0.0, None))]
    text = "Mean over seeds ± the half-width of a 95% Student-t confidence interval (no interval with one seed)"
    if wilson:
        text += (f"; rates in [0, 1] ({_short(wilson)}): mean [lo, hi], a 95% Wilson score interval on the effective "
                 "sample size that the seeds' spread implies (rate·(1 − rate)/SE², t quantile), so it stays inside [0, 1]")  # fmt: skip
    if cut:
        text += f"; metrics that cannot be negative ({_short(cut)}): mean [lo, hi], the t-interval cut at 0"
    return text + ". "


def comparison_legend(df: pd.DataFrame) -> str:
    alpha = df.attrs.get("alpha", sig.ALPHA)
    return (
        "Marks after a value compare its row with its table's baseline row: Welch's t-test over seeds / a paired bootstrap "
        "over the held-out prompts (each row's samples averaged per prompt over its seeds, the per-prompt differences "
        "resampled over prompts; it holds the trained policies fixed, so it sees small consistent differences that a few "
        "seeds cannot, but not the seed-to-seed variance of training). ▲ better, ▼ worse, + higher, − lower (a metric "
        f"without a known direction), ≈ not distinguishable: each test is corrected by Holm–Bonferroni over its "
        f"comparisons in the table (counted with the table), family-wise α = {alpha:g}; ? not testable (fewer than 2 seeds on "
        f"a side, fewer than {sig.MIN_PROMPTS} prompts); · no such test (no per-sample values, e.g. win rate and "
        "distinct-n, or prompts not shared). "
    )


def section_lines(df: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """Per table with a baseline: which tests ran, how many comparisons each, and the notes."""
    if not is_compared(df):
        return {}
    alpha = df.attrs.get("alpha", sig.ALPHA)
    out = {}
    if not all(c in df.columns for c in ("benchmark", "version", "settings")):  # one table's rows, cut out by a caller
        parts = [(("", "", ""), df)]
    else:
        parts = list(df.groupby(["benchmark", "version", "settings"], sort=False))
    for section, part in parts:
        first = part.iloc[0]
        if not first["baseline"]:
            out[section] = (first["note"] or "no baseline row in this table") + "."
            continue
        welch = f"Welch's t over seeds, {int(first['welch tests'])} comparisons"
        if int(first["paired tests"]):
            paired = (f"paired bootstrap over {int(first['paired prompts'])} held-out prompts "
                      f"(B = {int(first['paired draws'])}), {int(first['paired tests'])} comparisons")  # fmt: skip
        else:
            paired = "no paired bootstrap"
        line = f"Against `{first['baseline']}`: {welch}; {paired}; Holm–Bonferroni within each test, α = {alpha:g}."
        out[section] = line + (f" Note: {first['note']}." if first["note"] else "")
    return out


def plain_legend(df: pd.DataFrame) -> str:
    """The legend for html and latex (one table for all sections): intervals, and with a
    baseline, the marks and each section's tests."""
    text = interval_legend(df) + "↑/↓: higher/lower is better."
    if is_compared(df):
        text += " " + comparison_legend(df)
        text += " ".join(f"{section_title(s)}: {line}" if any(s) else line for s, line in section_lines(df).items())
    return text.replace("`", "").strip()
