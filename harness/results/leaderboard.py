"""Leaderboards: runs from the store aggregated over seeds, then rendered as md, csv, html or latex.

:func:`build_leaderboard` turns :meth:`harness.results.store.Store.metrics_frame` into one row per
experiment — one run spec without its seed (``experiment_key``) — over its distinct seeds, with,
for every metric, the mean and the half-width of a 95% Student-t confidence interval
(``<metric> ±``). A single seed has no interval: its ``±`` is NaN, printed as "–".

Rows never pool different experiments: every benchmark setting and evaluation setting makes its
own table section, and rows of one algorithm are labelled by the fields that tell them apart
(``config``: algorithm settings, ``budget=…``, ``rm.…``). Runs of the same experiment made by
different code versions are handled by ``code_versions``: ``latest`` (default) keeps the newest
code version's runs and says how many older runs it left out, ``pool`` pools them (one run per
seed, the newest) and names the versions, ``each`` gives every code version its own row.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from harness.errors import UsageError, did_you_mean
from harness.results.store import RUN_FRAME_COLUMNS

FORMATS = ("md", "csv", "html", "latex")
CODE_MODES = ("latest", "pool", "each")
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
KEY_COLUMNS = ["benchmark", "version", "settings", "algorithm", "config", "reward_model", "seeds", "episodes",
               "rm_queries", "annotations", "samples_per_response", "wall_s", "code", "key"]  # fmt: skip
NUMERIC_COLUMNS = ("seeds", "episodes", "rm_queries", "annotations", "samples_per_response", "wall_s")
EMPTY_MESSAGE = "no finished runs in the store"
CI_SUFFIX = " ±"
NA = "–"


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


def differences(items: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """For each dict, ``k=v`` of the keys whose values are not the same in all of them (a key
    missing from some counts as differing), joined by ", ": what tells the items apart."""
    keys = list(dict.fromkeys(k for item in items for k in item))  # in the configs' own order
    varying = [k for k in keys if len({_value_text(item.get(k, "<unset>")) for item in items}) > 1]
    return [", ".join(f"{prefix}{k}={_value_text(item[k])}" for k in varying if k in item) for item in items]


def _flat_settings(spec) -> dict[str, Any]:
    """A section's identity as flat settings: the benchmark's config and the evaluation's."""
    return {**spec.benchmark.config, **{f"eval.{k}": v for k, v in spec.evaluation.items()}}


def _select_runs(frame: pd.DataFrame, mode: str) -> list[tuple[pd.DataFrame, str]]:
    """The groups of runs that become rows, each with its code text, per ``mode``."""
    # One run per (spec key, seed): the newest (a legacy store may hold duplicates).
    frame = frame.drop_duplicates(subset=["spec_key", "seed"], keep="last")
    groups: list[tuple[pd.DataFrame, str]] = []
    if mode == "each":
        for _, group in frame.groupby("spec_key", sort=False):
            groups.append((group, group["code_version"].iloc[-1]))
        return groups
    for _, experiment in frame.groupby("experiment_key", sort=False):
        latest = experiment["code_version"].iloc[-1]  # frames are ordered by creation time
        if mode == "latest":
            keep = experiment[experiment["code_version"] == latest]
            omitted = len(experiment) - len(keep)
            code = latest + (f" (+{omitted} run{'s' * (omitted > 1)} of other code not shown)" if omitted else "")
        else:  # pool: one run per seed, the newest
            keep = experiment.drop_duplicates(subset=["seed"], keep="last")
            versions = list(dict.fromkeys(keep["code_version"]))
            code = versions[0] if len(versions) == 1 else "pooled: " + ", ".join(versions)
        groups.append((keep, code))
    return groups


def build_leaderboard(frame: pd.DataFrame, metrics: list[str] | None = None, code_versions: str = "latest") -> pd.DataFrame:
    """Aggregate a :meth:`~harness.results.store.Store.metrics_frame` over seeds.

    Columns: :data:`KEY_COLUMNS` (``settings``: what sets this row's section apart from other
    sections of its benchmark; ``config``: what sets it apart from other rows of its algorithm;
    ``episodes``, ``rm_queries``: training means; ``annotations``: the preference data an offline
    optimizer (DPO) trained on, in pair-equivalents; ``samples_per_response``: the inference-time
    samples behind one answer; ``key``: the experiment key), then ``<metric>`` and
    ``<metric> ±`` per metric. Sorted by benchmark and section, then by the main metric
    (``eval/gold`` if present, else the first), best first. ``attrs["higher_is_better"]`` and
    ``attrs["metrics"]`` carry over for :func:`render`.
    """
    if code_versions not in CODE_MODES:
        raise UsageError(f"--code-versions {code_versions!r} is not one of {', '.join(CODE_MODES)}{did_you_mean(code_versions, CODE_MODES)}")
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

    rows, specs = [], []
    for group, code in _select_runs(frame, code_versions):
        spec = group["spec"].iloc[-1]
        used = [b for b in group["budget_used"] if isinstance(b, Mapping)]
        inference = [b["inference"]["samples_per_response"] for b in used if "inference" in b]
        row: dict[str, Any] = {
            "benchmark": spec.benchmark.name,
            "version": spec.benchmark.version,
            "algorithm": spec.algorithm.name,
            "reward_model": spec.reward_model.name + (" (oracle)" if spec.reward_model.oracle else ""),
            "seeds": group["seed"].nunique(),
            "episodes": confidence_interval(b.get("episodes_used") for b in used if b.get("episodes_used") is not None)[0],
            "rm_queries": confidence_interval(b.get("rm_queries") for b in used if b.get("rm_queries") is not None)[0],
            # preference data the optimizer itself trained on (DPO), in pair-equivalents; "–": none
            "annotations": confidence_interval(b["annotations"] for b in used if "annotations" in b)[0],
            # a run without an inference record (an older store) has no figure: shown as "–", never as 1
            "samples_per_response": max(inference, default=math.nan) if len(inference) == len(used) else math.nan,
            "wall_s": group["wall_seconds"].mean(),
            "code": code,
            "key": group["experiment_key"].iloc[-1],  # as stored: `harness runs --key` finds it
        }
        for m in metrics:
            row[m], row[m + CI_SUFFIX], _ = confidence_interval(group[m])
        rows.append(row)
        specs.append(spec)
    _label(rows, specs)

    board = pd.DataFrame(rows)[KEY_COLUMNS + [c for m in metrics for c in (m, m + CI_SUFFIX)]]
    sort_by, ascending = ["benchmark", "version", "settings"], [True, True, True]
    if metrics:
        main = "eval/gold" if "eval/gold" in metrics else metrics[0]
        sort_by.append(main)
        ascending.append(hib.get(main) is False)  # best first; higher is better unless known otherwise
    board = board.sort_values(sort_by + ["algorithm", "config"], ascending=ascending + [True, True], na_position="last")
    board = board.reset_index(drop=True)
    board.attrs.update(higher_is_better=hib, metrics=list(metrics))
    return board


def config_labels(specs: list, with_reward_model: bool = False) -> list[str]:
    """What tells each of ``specs`` (one algorithm's) apart from the others: the algorithm's
    settings, ``budget=…``, with ``with_reward_model`` the reward model's name, and the reward
    model's settings (``rm.…``, compared among specs with the same reward model)."""
    parts: list[list[str]] = [[] for _ in specs]
    fields = [[s.algorithm.config for s in specs], [{"budget": s.budget} for s in specs]]
    if with_reward_model:
        fields.append([{"reward_model": s.reward_model.name} for s in specs])
    for items in fields:
        for i, text in enumerate(differences(items)):
            parts[i].append(text)
    by_rm: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_rm.setdefault(spec.reward_model.name, []).append(i)
    for same_rm in by_rm.values():
        for i, text in zip(same_rm, differences([specs[i].reward_model.config for i in same_rm], prefix="rm.")):
            parts[i].append(text)
    return [", ".join(p for p in row if p) for row in parts]


def settings_labels(specs: list) -> list[str]:
    """What tells each of ``specs`` (one benchmark's) apart in benchmark and evaluation settings."""
    return differences([_flat_settings(spec) for spec in specs])


def _label(rows: list[dict[str, Any]], specs: list) -> None:
    """Fill ``settings`` (what tells a section apart from the benchmark's other sections) and
    ``config`` (what tells a row apart from its algorithm's other rows in the section)."""
    by_benchmark: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        by_benchmark.setdefault((spec.benchmark.name, spec.benchmark.version), []).append(i)
    for indices in by_benchmark.values():
        for i, text in zip(indices, settings_labels([specs[i] for i in indices])):
            rows[i]["settings"] = text
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault((rows[i]["benchmark"], rows[i]["version"], rows[i]["settings"], spec.algorithm.name), []).append(i)
    for indices in groups.values():
        for i, text in zip(indices, config_labels([specs[i] for i in indices])):
            rows[i]["config"] = text


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
    formats = {"seeds": "{:.0f}", "episodes": "{:.0f}", "rm_queries": "{:.0f}", "annotations": "{:.0f}",
               "samples_per_response": "{:.0f}", "wall_s": "{:.1f}"}  # fmt: skip

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
    return set(NUMERIC_COLUMNS) | set(_metric_columns(df)) | {m + CI_SUFFIX for m in _metric_columns(df)}


#: short markdown headers for the key columns
_MD_HEADERS = {"rm_queries": "rm queries", "annotations": "own annotations", "samples_per_response": "samples/resp"}


def md_cell(text: str) -> str:
    """A markdown table cell: no raw HTML from names, config values or generated text, pipes
    escaped, line breaks shown as ⏎ (a newline would end the table row)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\r\n", "\n").replace("\n", " ⏎ ")


def _markdown(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    """One section per benchmark setting; each metric is one ``mean ± half-width`` cell, its
    header without the ``eval/`` namespace, so the table stays readable. The ``code`` column is
    shown only when rows differ in it (else the legend names the one code version)."""
    shown = _display(df, precision)
    metrics = _metric_columns(df)
    for m in metrics:
        shown[m] = [mean if ci == NA else f"{mean} ± {ci}" for mean, ci in zip(shown[m], shown[m + CI_SUFFIX])]
    codes = sorted(set(shown["code"]))
    hidden = [m + CI_SUFFIX for m in metrics] + ["key"] + (["code"] if len(codes) == 1 else [])
    shown = shown.drop(columns=hidden).map(md_cell)
    headers = {**_MD_HEADERS, **{m: h.removeprefix("eval/") for m, h in _headers(df, hib).items()}}
    numeric = _numeric(df)
    sections = []
    for (bench, version, settings), part in shown.groupby(["benchmark", "version", "settings"], sort=False):
        table = part.drop(columns=["benchmark", "version", "settings"])
        colalign = ["right" if c in numeric else "left" for c in table.columns]
        table = table.rename(columns=lambda c: md_cell(headers.get(c, c)))
        title = f"### {bench} (v{version})" if version else f"### {bench}"
        title += f" · {settings}" if settings else ""
        sections.append(f"{title}\n\n{table.to_markdown(index=False, disable_numparse=True, colalign=colalign)}\n")
    legend = (
        "Mean over seeds ± the half-width of a 95% Student-t confidence interval (no ± with one seed); "
        "↑/↓: higher/lower is better. `config`: what sets a row apart from the other rows of its algorithm; "
        "`episodes`, `rm queries`: training; `own annotations`: preference data the optimizer itself trained on (DPO), in "
        "pair-equivalents — every row with a learned reward model also rests on that model's annotations (REWARD_MODELS.md); "
        "`samples/resp`: responses sampled per answer at inference (best-of-n: n). "
        "–: none, or not measured (gold and win rate on a benchmark without a gold reward r*)."
        + (f" Code version: {codes[0]}." if len(codes) == 1 else "")
        + "\n"
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

    md: one ``### <benchmark> (v<version>) · <settings>`` table per benchmark setting. csv: full precision, plain
    headers. html: escaped. latex: a booktabs tabular. ``higher_is_better`` defaults to
    ``df.attrs["higher_is_better"]``. An empty ``df`` renders as :data:`EMPTY_MESSAGE`.
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
        return _display(df, precision).rename(columns=_headers(df, hib)).to_html(index=False, escape=True, border=0) + "\n"
    return _latex(df, hib, precision)


def write_atomically(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in one rename, so a reader never sees half a file; a folder
    that cannot be written is a :class:`UsageError` naming it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


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
