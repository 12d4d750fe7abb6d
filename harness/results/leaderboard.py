"""Leaderboards: runs from the store aggregated over seeds, then rendered as md, csv, html or latex.

:func:`build_leaderboard` turns :meth:`harness.results.store.Store.metrics_frame` into one row per
experiment — one run spec without its seed (``experiment_key``) — over its distinct seeds, with,
for every metric, the mean and a 95% confidence interval (``<metric> lo``, ``<metric> hi``): the
Student-t interval, or for metrics with known bounds (:data:`METRIC_BOUNDS`) one that stays
inside them (:func:`harness.results.significance.interval`). A single seed has no interval: NaN,
printed as "–".

With a ``baseline`` row, every other row of its table is compared with it on every metric by
Welch's t-test over seeds and by a paired bootstrap over the held-out prompts (per-sample values
from the store), each corrected by Holm–Bonferroni over its comparisons in the table (see
:mod:`harness.results.significance`); the renderers mark the cells and say which tests and how
many comparisons.

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from harness.errors import UsageError, did_you_mean
from harness.results import significance as sig
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
LO, HI = " lo", " hi"  # the interval's ends: "<metric> lo", "<metric> hi"
NA = "–"
#: metrics whose values cannot leave these bounds (None: unbounded on that side); their intervals
#: respect them (:func:`harness.results.significance.interval`)
METRIC_BOUNDS: dict[str, tuple[float, float | None]] = {
    "eval/eos_rate": (0.0, 1.0),
    "eval/win_rate": (0.0, 1.0),
    "eval/distinct_1": (0.0, 1.0),
    "eval/distinct_2": (0.0, 1.0),
    "eval/kl": (0.0, None),
    "eval/length": (0.0, None),
}
#: the key of a stored sample (``Store.samples``) that a metric is the mean of: the paired
#: bootstrap's per-prompt values. Other metrics (win rate, distinct-n) have no per-sample value.
SAMPLE_KEYS = {"eval/gold": "gold", "eval/proxy": "proxy", "eval/kl": "kl", "eval/length": "length", "eval/eos_rate": "ended"}

# With a baseline: per-row columns after KEY_COLUMNS (the section's figures, repeated on its rows)
BASELINE_COLUMNS = ["label", "baseline", "welch tests", "paired tests", "paired prompts", "paired draws", "note"]
# ... and per metric, after its mean and interval: the verdicts (significance.BETTER, …) and figures
WELCH, WELCH_P = " welch", " welch p"  # verdict; Holm-adjusted p
PAIRED, PAIRED_DIFF, PAIRED_LO, PAIRED_HI, PAIRED_P = " paired", " paired diff", " paired lo", " paired hi", " paired p"
TEST_SUFFIXES = (WELCH, WELCH_P, PAIRED, PAIRED_DIFF, PAIRED_LO, PAIRED_HI, PAIRED_P)
#: how a verdict is shown in a cell
MARKS = {sig.BETTER: "▲", sig.WORSE: "▼", sig.HIGHER: "+", sig.LOWER: "−", sig.SAME: "≈", sig.NOT_TESTABLE: "?", "": "·"}


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


def metric_columns(metrics: Iterable[str], baseline: bool = False) -> list[str]:
    """The board's columns for ``metrics``: each one's mean, ``lo``, ``hi`` and, with a baseline,
    the test columns (:data:`TEST_SUFFIXES`)."""
    suffixes = ("", LO, HI) + (TEST_SUFFIXES if baseline else ())
    return [m + suffix for m in metrics for suffix in suffixes]


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


def build_leaderboard(
    frame: pd.DataFrame,
    metrics: list[str] | None = None,
    code_versions: str = "latest",
    baseline: str | None = None,
    samples: Callable[[str], list[dict[str, Any]]] | None = None,
    *,
    alpha: float = sig.ALPHA,
    seed: int = 0,
) -> pd.DataFrame:
    """Aggregate a :meth:`~harness.results.store.Store.metrics_frame` over seeds.

    Columns: :data:`KEY_COLUMNS` (``settings``: what sets this row's section apart from other
    sections of its benchmark; ``config``: what sets it apart from other rows of its algorithm;
    ``episodes``, ``rm_queries``: training means; ``annotations``: the preference data an offline
    optimizer (DPO) trained on, in pair-equivalents; ``samples_per_response``: the inference-time
    samples behind one answer; ``key``: the experiment key), then ``<metric>``, ``<metric> lo``
    and ``<metric> hi`` per metric (:func:`metric_columns`). Sorted by benchmark and section, then
    by the main metric (``eval/gold`` if present, else the first), best first.

    ``baseline``: a row label (:func:`row_labels`: the algorithm, e.g. ``sft``, qualified as
    ``ppo (reward_model=gold)`` where the algorithm has several rows in a table) to compare every
    other row of its table with; a table without it says so in its ``note``, and a label no
    table has is a :class:`UsageError` listing them. Adds :data:`BASELINE_COLUMNS` and each
    metric's test columns (see :func:`_compare`). ``samples(run_id)`` gives a run's stored
    samples (``Store.samples``) for the paired bootstrap, seeded by ``seed``; without it only
    Welch's test runs. ``alpha``: the family-wise error rate of each test in each table.

    ``attrs``: ``higher_is_better``, ``metrics``, ``intervals`` (metric → interval method),
    ``baseline`` and ``alpha``, for :func:`render`.
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
    extra = BASELINE_COLUMNS if baseline is not None else []
    if frame.empty:
        empty = pd.DataFrame(columns=KEY_COLUMNS + extra + metric_columns(metrics, baseline is not None))
        empty.attrs.update(higher_is_better=hib, metrics=list(metrics), intervals={}, baseline=baseline, alpha=alpha)
        return empty

    rows, specs, groups = [], [], []
    methods: dict[str, set[str]] = {m: set() for m in metrics}
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
            row[m], row[m + LO], row[m + HI], n, method = sig.interval(group[m], METRIC_BOUNDS.get(m))
            if n >= 2:
                methods[m].add(method)
        rows.append(row)
        specs.append(spec)
        groups.append(group)
    _label(rows, specs)
    if baseline is not None:
        _compare(rows, groups, metrics, hib, baseline.strip(), samples, alpha, seed)

    board = pd.DataFrame(rows)[KEY_COLUMNS + extra + metric_columns(metrics, baseline is not None)]
    sort_by, ascending = ["benchmark", "version", "settings"], [True, True, True]
    if metrics:
        main = "eval/gold" if "eval/gold" in metrics else metrics[0]
        sort_by.append(main)
        ascending.append(hib.get(main) is False)  # best first; higher is better unless known otherwise
    board = board.sort_values(sort_by + ["algorithm", "config"], ascending=ascending + [True, True], na_position="last")
    board = board.reset_index(drop=True)
    intervals = {m: ", ".join(sorted(used)) for m, used in methods.items() if used}
    board.attrs.update(higher_is_better=hib, metrics=list(metrics), intervals=intervals, baseline=baseline, alpha=alpha)
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
# comparison with a baseline row
# -------------------------------------------------------------------------


def _section(row: Mapping[str, Any]) -> tuple[str, str, str]:
    return row["benchmark"], row["version"], row["settings"]


def _section_title(section: tuple[str, str, str]) -> str:
    bench, version, settings = section
    title = f"{bench} (v{version})" if version else bench
    return title + (f" · {settings}" if settings else "")


def _descriptors(row: Mapping[str, Any]) -> list[str]:
    """Everything that may tell a row apart from the other rows of its algorithm in its table."""
    parts = [p for p in str(row["config"]).split(", ") if p]
    return parts + [f"reward_model={str(row['reward_model']).removesuffix(' (oracle)')}", f"code={row['code']}",
                    f"key={str(row['key'])[:8]}"]  # fmt: skip


def row_labels(rows: list[Mapping[str, Any]]) -> list[str]:
    """A name for each row, unique in its table (benchmark, version and settings): its algorithm,
    and where the table has several rows of that algorithm, what tells them apart in parentheses —
    ``rm-ranking (kl_coef=0, reward=rank)``, ``ppo (reward_model=gold)``. ``--baseline`` takes these."""
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((*_section(row), row["algorithm"]), []).append(i)
    labels = [str(row["algorithm"]) for row in rows]
    for indices in groups.values():
        if len(indices) < 2:
            continue
        config = [str(rows[i]["config"]) for i in indices]
        fields = [config if len(set(config)) > 1 else [""] * len(indices)]
        for name, column in (("reward_model", "reward_model"), ("code", "code"), ("key", "key")):
            values = [str(rows[i][column]).removesuffix(" (oracle)") for i in indices]
            if len(set(zip(*fields))) == len(indices):
                break  # told apart already
            if len(set(values)) > 1:
                fields.append([f"{name}={v[:8] if name == 'key' else v}" for v in values])
        for i, parts in zip(indices, zip(*fields)):
            text = ", ".join(p for p in parts if p)
            labels[i] += f" ({text})" if text else ""
    return labels


def _find_baseline(text: str, rows: list[Mapping[str, Any]], labels: list[str], indices: list[int]) -> int | None:
    """The row of one table that ``text`` names: its label, or its algorithm with none or some of
    its descriptors (``ppo``, ``ppo (reward_model=pairwise)``); None if no row; several: an error."""
    exact = [i for i in indices if labels[i] == text]
    if exact:
        return exact[0]
    algorithm, _, inner = text.partition(" (")
    wanted = [w.strip() for w in inner.removesuffix(")").split(",") if w.strip()] if inner else []
    found = [i for i in indices if rows[i]["algorithm"] == algorithm.strip() and all(w in _descriptors(rows[i]) for w in wanted)]
    if len(found) > 1:
        names = ", ".join(repr(labels[i]) for i in found)
        table = _section_title(_section(rows[found[0]]))
        raise UsageError(f"--baseline {text!r} matches {len(found)} rows of {table}: {names}; name one")
    return found[0] if found else None


def _compare(rows: list[dict[str, Any]], groups: list[pd.DataFrame], metrics: list[str], hib: Mapping[str, bool],
             baseline: str, samples: Callable[[str], list[dict[str, Any]]] | None, alpha: float, seed: int) -> None:  # fmt: skip
    """Fill :data:`BASELINE_COLUMNS` and the test columns of every row, table by table.

    In a table with the baseline row, every other row is tested on every metric:

    - ``<m> welch``: Welch's t-test of its per-seed values against the baseline's
      (``not testable`` with fewer than 2 seeds on a side; empty when the metric was not measured);
    - ``<m> paired``: for metrics in :data:`SAMPLE_KEYS`, a paired bootstrap over the held-out
      prompts: each row's per-prompt means over its seeds' samples, minus the baseline's, prompts
      resampled (:func:`~harness.results.significance.paired_bootstrap`); empty where the samples
      lack the value or a row's prompts are not the baseline's (``note`` says which), ``not
      testable`` with fewer than :data:`~harness.results.significance.MIN_PROMPTS` prompts.

    Each test's p-values are Holm-adjusted over its comparisons in the table (``welch tests``,
    ``paired tests``); a verdict is ``better``/``worse`` (``higher``/``lower`` for a metric of no
    known direction) where the adjusted p < ``alpha``, else ``indistinguishable``. The baseline's
    own verdicts read ``baseline``."""
    labels = row_labels(rows)
    sections: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        row["label"] = labels[i]
        sections.setdefault(_section(row), []).append(i)
    chosen = {section: _find_baseline(baseline, rows, labels, indices) for section, indices in sections.items()}
    if all(b is None for b in chosen.values()):
        tables = "; ".join(f"{_section_title(s)}: {', '.join(sorted(labels[i] for i in sections[s]))}" for s in sorted(sections))
        hint = did_you_mean(baseline, set(labels))
        raise UsageError(f"--baseline {baseline!r} names no row{hint}; the rows of each table: {tables}")

    cache: dict[str, list[dict[str, Any]]] = {}

    def run_samples(run_id: str) -> list[dict[str, Any]]:
        if run_id not in cache:
            cache[run_id] = samples(run_id) if samples is not None else []
        return cache[run_id]

    for section, indices in sections.items():
        b = chosen[section]
        for i in indices:
            rows[i].update({"baseline": labels[b] if b is not None else "", "welch tests": 0, "paired tests": 0,
                            "paired prompts": math.nan, "paired draws": math.nan, "note": ""})  # fmt: skip
            for m in metrics:
                rows[i].update({m + WELCH: "", m + WELCH_P: math.nan, m + PAIRED: "", m + PAIRED_DIFF: math.nan,
                                m + PAIRED_LO: math.nan, m + PAIRED_HI: math.nan, m + PAIRED_P: math.nan})  # fmt: skip
        if b is None:
            for i in indices:
                rows[i]["note"] = f"no row {baseline!r} in this table: nothing compared"
            continue
        others = [i for i in indices if i != b]
        for m in metrics:
            rows[b][m + WELCH] = sig.BASELINE
            rows[b][m + PAIRED] = sig.BASELINE if m in SAMPLE_KEYS else ""
        notes: list[str] = []

        # Welch's t over seeds
        welch_tests = []
        for i in others:
            for m in metrics:
                mine, theirs = groups[i][m].dropna(), groups[b][m].dropna()
                if mine.empty or theirs.empty:
                    continue  # not measured (no gold reward): nothing to test
                result = sig.welch(mine, theirs)
                if result is None:
                    rows[i][m + WELCH] = sig.NOT_TESTABLE
                else:
                    welch_tests.append((i, m, result))
        for (i, m, result), p in zip(welch_tests, sig.holm([t.p for _, _, t in welch_tests])):
            rows[i][m + WELCH], rows[i][m + WELCH_P] = sig.verdict(result.difference, p, hib.get(m), alpha), p

        # paired bootstrap over held-out prompts
        # (a metric the baseline did not measure, such as gold without a gold reward, is not tested)
        paired_metrics = [m for m in metrics if m in SAMPLE_KEYS and groups[b][m].notna().any()]
        if samples is None and paired_metrics:
            notes.append("paired bootstrap not run: no samples given")
            paired_metrics = []
        unpaired: list[str] = []
        lacking: list[str] = []
        columns: list[tuple[int, str]] = []
        differences: list[list[float]] = []
        prompts: list[str] = []
        for m in paired_metrics:
            key = SAMPLE_KEYS[m]
            means = {i: sig.pooled_prompt_means([sig.per_prompt_means(run_samples(r), key) for r in groups[i]["run_id"]])
                     for i in indices}  # fmt: skip
            if means[b] is None:
                lacking.append(m.removeprefix("eval/"))
                for i in indices:
                    rows[i][m + PAIRED] = ""
                continue
            prompts = list(means[b])
            for i in others:
                if means[i] is None:
                    if not all(sig.per_prompt_means(run_samples(r), key) is not None for r in groups[i]["run_id"]):
                        lacking.append(f"{m.removeprefix('eval/')} of {labels[i]}")
                    else:
                        unpaired.append(labels[i])
                elif set(means[i]) != set(prompts):
                    unpaired.append(labels[i])
                elif len(prompts) < sig.MIN_PROMPTS:
                    rows[i][m + PAIRED] = sig.NOT_TESTABLE
                else:
                    columns.append((i, m))
                    differences.append([means[i][p] - means[b][p] for p in prompts])
        if columns:
            draws = sig.bootstrap_draws(len(columns), alpha)
            results = sig.paired_bootstrap(list(zip(*differences)), n_boot=draws, seed=seed)
            for ((i, m), result), p in zip(zip(columns, results), sig.holm([r.p for r in results])):
                rows[i].update({m + PAIRED: sig.verdict(result.difference, p, hib.get(m), alpha), m + PAIRED_P: p,
                                m + PAIRED_DIFF: result.difference, m + PAIRED_LO: result.lo, m + PAIRED_HI: result.hi})  # fmt: skip
        if lacking:
            notes.append(f"the stored samples have no values for {', '.join(dict.fromkeys(lacking))} (older runs): "
                         "no paired bootstrap there")  # fmt: skip
        if unpaired:
            notes.append(f"not paired: {', '.join(dict.fromkeys(unpaired))} (held-out prompts differ from the baseline's)")
        if prompts and len(prompts) < sig.MIN_PROMPTS and paired_metrics:
            notes.append(f"paired bootstrap not testable: {len(prompts)} prompts stored, fewer than {sig.MIN_PROMPTS}")
        for i in indices:
            rows[i].update({"welch tests": len(welch_tests), "paired tests": len(columns), "note": "; ".join(notes),
                            "paired prompts": len(prompts) if columns else math.nan,
                            "paired draws": sig.bootstrap_draws(len(columns), alpha) if columns else math.nan})  # fmt: skip


# -------------------------------------------------------------------------
# rendering
# -------------------------------------------------------------------------


def _metric_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c + LO in df.columns and c + HI in df.columns]


def _compared(df: pd.DataFrame) -> bool:
    return "baseline" in df.columns


def _headers(df: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, str]:
    arrows = {True: " ↑", False: " ↓"}
    return {m: m + arrows.get(higher_is_better.get(m), "") for m in _metric_columns(df)}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _display(df: pd.DataFrame, precision: int) -> pd.DataFrame:
    """Every cell as text, "–" for missing values. A metric is one cell: ``mean ± half-width``
    (a t-interval) or ``mean [lo, hi]`` (a metric with bounds, :data:`METRIC_BOUNDS`), and, when
    compared with a baseline, the two tests' marks (:data:`MARKS`) as ``welch/paired``. The
    interval and test columns are folded in, and the baseline row's algorithm says so."""
    metrics = _metric_columns(df)
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
    compared = _compared(df)
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
    return set(NUMERIC_COLUMNS) | set(_metric_columns(df))


def _short(metrics: Iterable[str]) -> str:
    return ", ".join(m.removeprefix("eval/") for m in metrics)


def _interval_legend(df: pd.DataFrame) -> str:
    """Which interval each metric has (the methods of :func:`harness.results.significance.interval`)."""
    metrics = _metric_columns(df)
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


def _comparison_legend(df: pd.DataFrame) -> str:
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


def _section_lines(df: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """Per table with a baseline: which tests ran, how many comparisons each, and the notes."""
    if not _compared(df):
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


#: short markdown headers for the key columns
_MD_HEADERS = {"rm_queries": "rm queries", "annotations": "own annotations", "samples_per_response": "samples/resp"}


def md_cell(text: str) -> str:
    """A markdown table cell: no raw HTML from names, config values or generated text, pipes
    escaped, line breaks shown as ⏎ (a newline would end the table row)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\r\n", "\n").replace("\n", " ⏎ ")


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
    lines = _section_lines(df)
    sections = []
    for section, part in shown.groupby(["benchmark", "version", "settings"], sort=False):
        table = part.drop(columns=["benchmark", "version", "settings"])
        colalign = ["right" if c in numeric else "left" for c in table.columns]
        table = table.rename(columns=lambda c: md_cell(headers.get(c, c)))
        title = f"### {_section_title(section)}"
        line = f"{md_cell(lines[section])}\n\n" if section in lines else ""
        sections.append(f"{title}\n\n{line}{table.to_markdown(index=False, disable_numparse=True, colalign=colalign)}\n")
    legend = (
        _interval_legend(df)
        + "↑/↓: higher/lower is better. "
        + (_comparison_legend(df) if _compared(df) else "")
        + "`config`: what sets a row apart from the other rows of its algorithm; "
        "`episodes`, `rm queries`: training; `own annotations`: preference data the optimizer itself trained on (DPO), in "
        "pair-equivalents — every row with a learned reward model also rests on that model's annotations (REWARD_MODELS.md); "
        "`samples/resp`: responses sampled per answer at inference (best-of-n: n). "
        "–: none, or not measured (gold and win rate on a benchmark without a gold reward r*)."
        + (f" Code version: {codes[0]}." if len(codes) == 1 else "")
        + "\n"
    )
    return "\n".join(sections) + "\n" + legend


def _plain_legend(df: pd.DataFrame) -> str:
    """The legend for html and latex (one table for all sections): intervals, and with a
    baseline, the marks and each section's tests."""
    text = _interval_legend(df) + "↑/↓: higher/lower is better."
    if _compared(df):
        text += " " + _comparison_legend(df)
        text += " ".join(f"{_section_title(s)}: {line}" if any(s) else line for s, line in _section_lines(df).items())
    return text.replace("`", "").strip()


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
    "—": "---",
    "−": r"$-$",
    "▲": r"$\blacktriangle$",  # amssymb
    "▼": r"$\blacktriangledown$",
    "≈": r"$\approx$",
    "·": r"$\cdot$",
    "α": r"$\alpha$",
    "*": r"$^*$",
    "²": r"$^2$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


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
    if _compared(df):  # the marks mean nothing without it
        lines += ["", r"\smallskip{\footnotesize " + latex_escape(_plain_legend(df)) + "}"]
    return "\n".join(lines) + "\n"


def _html(df: pd.DataFrame, hib: Mapping[str, bool], precision: int) -> str:
    table = _display(df, precision).rename(columns=_headers(df, hib)).to_html(index=False, escape=True, border=0)
    return table + "\n" + (f"<p>{html.escape(_plain_legend(df), quote=False)}</p>\n" if _compared(df) else "")


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


def write_atomically(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in one rename, so a reader never sees half a file; a folder
    that cannot be written is a :class:`UsageError` naming it."""
    if path.exists() and not path.is_file():  # a rename would replace a device (/dev/full) or a folder
        raise UsageError(f"cannot write {path}: not a regular file")
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
