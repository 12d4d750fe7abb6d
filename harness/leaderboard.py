"""Leaderboards: runs from the store aggregated over seeds, then rendered as md, csv, html or latex.

:func:`build_leaderboard` turns :meth:`harness.store.Store.metrics_frame` into one row per
(benchmark, version, algorithm, config, reward model) with, for every metric, the mean over
seeds and the half-width of a 95% Student-t confidence interval (``<metric> ±``). A single
seed has no interval: its ``±`` is NaN, printed as "–". :func:`render` prints that frame with
fixed precision and ↑/↓ on the metric headers; the CSV keeps full precision.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from harness.errors import UsageError
from harness.store import RUN_FRAME_COLUMNS

FORMATS = ("md", "csv", "html", "latex")
#: Metrics come in this order when present; any others follow alphabetically.
METRIC_ORDER = (
    "eval/gold",
    "eval/win_rate",
    "eval/proxy",
    "eval/kl",
    "eval/distinct_1",
    "eval/distinct_2",
    "eval/length",
)
GROUP_KEYS = ["benchmark", "benchmark_version", "algorithm", "config_hash", "reward_model"]
KEY_COLUMNS = ["benchmark", "version", "algorithm", "config", "reward_model", "seeds", "episodes", "wall_s"]
EMPTY_MESSAGE = "no finished runs in the store"
CI_SUFFIX = " ±"
NA = "–"
MAX_CONFIG_LABEL = 48  # longer labels fall back to the config hash


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


def order_metrics(keys: Iterable[str]) -> list[str]:
    """``keys`` in :data:`METRIC_ORDER`, then the rest alphabetically."""
    keys = set(keys)
    return [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))


# -------------------------------------------------------------------------
# aggregation
# -------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _config_labels(frame: pd.DataFrame) -> dict[tuple[str, str, str, str], str]:
    """A readable label per (benchmark, version, algorithm, config_hash).

    When an algorithm ran with several configs on a benchmark, each label lists the config
    entries that vary among them (``kl_coef=0``); when that is empty, ambiguous or too long,
    the first 8 characters of the config hash. A lone config gets an empty label.
    """
    labels: dict[tuple[str, str, str, str], str] = {}
    for (bench, version, algo), group in frame.groupby(["benchmark", "benchmark_version", "algorithm"], dropna=False, sort=False):
        configs: dict[str, dict[str, Any]] = dict(zip(group["config_hash"], group["algo_config"]))
        keys = sorted({k for c in configs.values() for k in c})
        varying = [k for k in keys if len({_value_text(c.get(k, "<unset>")) for c in configs.values()}) > 1]
        text = {h: ", ".join(f"{k}={_value_text(c[k])}" for k in varying if k in c) for h, c in configs.items()}
        if len(configs) > 1 and (
            len(set(text.values())) < len(text) or any(not t or len(t) > MAX_CONFIG_LABEL for t in text.values())
        ):
            text = {h: h[:8] for h in configs}
        labels.update({(bench, version, algo, h): t for h, t in text.items()})
    return labels


def build_leaderboard(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Aggregate a :meth:`~harness.store.Store.metrics_frame` over seeds.

    Columns: ``benchmark, version, algorithm, config, reward_model, seeds, episodes`` (mean
    ``budget_used["episodes_used"]``, dropped when no run recorded it), ``wall_s``, then
    ``<metric>`` and ``<metric> ±`` per metric. Sorted by benchmark, then by the main metric
    (``eval/gold`` if present, else the first), best first. ``attrs["higher_is_better"]`` and
    ``attrs["metrics"]`` carry over for :func:`render`.
    """
    hib: dict[str, bool] = dict(frame.attrs.get("higher_is_better", {}))
    available = [c for c in frame.columns if c not in RUN_FRAME_COLUMNS]
    if metrics is None:
        metrics = order_metrics(available)
    elif unknown := [m for m in metrics if m not in available]:
        have = ", ".join(order_metrics(available)) or "none"
        raise UsageError(f"no metric {', '.join(map(repr, unknown))} in the store; it has: {have}")
    if frame.empty:
        empty = pd.DataFrame(columns=KEY_COLUMNS + [c for m in metrics for c in (m, m + CI_SUFFIX)])
        empty.attrs.update(higher_is_better=hib, metrics=list(metrics))
        return empty

    frame = frame.assign(benchmark_version=frame["benchmark_version"].fillna("").astype(str))
    labels = _config_labels(frame)
    rows = []
    for (bench, version, algo, config_hash, rm), group in frame.groupby(GROUP_KEYS, dropna=False, sort=False):
        episodes = [b.get("episodes_used") for b in group["budget_used"] if isinstance(b, Mapping)]
        row: dict[str, Any] = {
            "benchmark": bench,
            "version": version,
            "algorithm": algo,
            "config": labels[(bench, version, algo, config_hash)],
            "reward_model": None if pd.isna(rm) else f"{rm} (oracle)" if group["rm_is_oracle"].any() else rm,
            "seeds": len(group),
            "episodes": confidence_interval(e for e in episodes if e is not None)[0],
            "wall_s": group["wall_seconds"].mean(),
        }
        for m in metrics:
            row[m], row[m + CI_SUFFIX], _ = confidence_interval(group[m])
        rows.append(row)

    board = pd.DataFrame(rows)
    if board["episodes"].isna().all():
        board = board.drop(columns="episodes")
    sort_by, ascending = ["benchmark", "version"], [True, True]
    if metrics:
        main = "eval/gold" if "eval/gold" in metrics else metrics[0]
        sort_by.append(main)
        ascending.append(hib.get(main) is False)  # best first; higher is better unless known otherwise
    board = board.sort_values(sort_by + ["algorithm", "config"], ascending=ascending + [True, True], na_position="last")
    board = board.reset_index(drop=True)
    board.attrs.update(higher_is_better=hib, metrics=list(metrics))
    return board


# -------------------------------------------------------------------------
# rendering
# -------------------------------------------------------------------------


def _metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c + CI_SUFFIX in df.columns]


def _headers(df: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, str]:
    arrows = {True: " ↑", False: " ↓"}
    return {m: m + arrows.get(higher_is_better.get(m), "") for m in _metric_columns(df)}


def _display(df: pd.DataFrame, precision: int) -> pd.DataFrame:
    """Every cell as text: fixed precision for metrics, "–" for missing values."""
    metric_like = set(_metric_columns(df)) | {m + CI_SUFFIX for m in _metric_columns(df)}
    formats = {"seeds": "{:.0f}", "episodes": "{:.0f}", "wall_s": "{:.1f}"}

    def cell(value: Any, fmt: str | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return NA
        if fmt and isinstance(value, (int, float)):
            return fmt.format(value)
        return str(value)

    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        fmt = f"{{:.{precision}f}}" if col in metric_like else formats.get(col)
        out[col] = [cell(v, fmt) for v in df[col].tolist()]
    return out


def _numeric(df: pd.DataFrame) -> set[str]:
    return {"seeds", "episodes", "wall_s"} | set(_metric_columns(df)) | {m + CI_SUFFIX for m in _metric_columns(df)}


def _markdown(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    """One section per benchmark; each metric is one ``mean ± half-width`` cell, its header
    without the ``eval/`` namespace, so the table stays readable."""
    shown = _display(df, precision)
    metrics = _metric_columns(df)
    for m in metrics:
        shown[m] = [mean if ci == NA else f"{mean} ± {ci}" for mean, ci in zip(shown[m], shown[m + CI_SUFFIX])]
    shown = shown.drop(columns=[m + CI_SUFFIX for m in metrics]).map(lambda text: text.replace("|", "\\|"))
    headers = {m: h.removeprefix("eval/") for m, h in _headers(df, hib).items()}
    numeric = _numeric(df)
    sections = []
    for (bench, version), part in shown.groupby(["benchmark", "version"], sort=False):
        table = part.drop(columns=["benchmark", "version"])
        colalign = ["right" if c in numeric else "left" for c in table.columns]
        table = table.rename(columns=lambda c: headers.get(c, c).replace("|", "\\|"))
        title = f"### {bench} (v{version})" if version else f"### {bench}"
        sections.append(f"{title}\n\n{table.to_markdown(index=False, disable_numparse=True, colalign=colalign)}\n")
    legend = (
        "Mean over seeds ± the half-width of a 95% Student-t confidence interval (no ± with one seed); "
        "↑/↓: higher/lower is better.\n"
    )
    return "\n".join(sections) + "\n" + legend


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "±": r"$\pm$",
    "–": "--",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _latex(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    # A plain booktabs tabular: DataFrame.to_latex would need jinja2, which is not a dependency.
    shown = _display(df, precision).rename(columns=_headers(df, hib))
    numeric = _numeric(df)
    align = "".join("r" if c in numeric else "l" for c in df.columns)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(map(latex_escape, shown.columns)) + r" \\", r"\midrule"]
    previous = None
    for row in shown.itertuples(index=False):
        if previous is not None and row[0] != previous:
            lines.append(r"\midrule")  # between benchmarks
        previous = row[0]
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render(df: pd.DataFrame, fmt: str, higher_is_better: Mapping[str, bool] | None = None, precision: int = 3) -> str:
    """``df`` from :func:`build_leaderboard` as text in ``fmt`` (one of :data:`FORMATS`).

    md: one ``### <benchmark> (v<version>)`` table per benchmark. csv: full precision, plain
    headers. html: escaped. latex: a booktabs tabular. ``higher_is_better`` defaults to
    ``df.attrs["higher_is_better"]``. An empty ``df`` renders as :data:`EMPTY_MESSAGE`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown leaderboard format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if df.empty:
        return EMPTY_MESSAGE + "\n"
    hib = df.attrs.get("higher_is_better", {}) if higher_is_better is None else higher_is_better
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "md":
        return _markdown(df, hib, precision)
    if fmt == "html":
        return _display(df, precision).rename(columns=_headers(df, hib)).to_html(index=False, escape=True, border=0) + "\n"
    return _latex(df, hib, precision)


def write_leaderboard(
    df: pd.DataFrame, out_dir: Path, higher_is_better: Mapping[str, bool] | None = None, preamble: str = ""
) -> list[Path]:
    """Write ``LEADERBOARD.md`` (after ``preamble``) and ``leaderboard.csv`` into ``out_dir``;
    return their paths. Each file is replaced atomically, so a reader never sees half a table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fmt in (("LEADERBOARD.md", "md"), ("leaderboard.csv", "csv")):
        path = out_dir / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text((preamble if fmt == "md" else "") + render(df, fmt, higher_is_better), encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths
