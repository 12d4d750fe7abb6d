"""Leaderboards: runs from the store aggregated over seeds, as a frame (rendered as md, csv, html
or latex by :mod:`harness.reports.leaderboard`).

:func:`build_leaderboard` turns :meth:`harness.store.Store.metrics_frame` into one row per
experiment — one run spec without its seed (``experiment_key``) — over its distinct seeds, with,
for every metric, the mean and a 95% confidence interval (``<metric> lo``, ``<metric> hi``): the
Student-t interval, or for metrics with known bounds (:data:`METRIC_BOUNDS`) one that stays
inside them (:func:`harness.analysis.intervals.interval`). A single seed has no interval: NaN,
printed as "–".

With a ``baseline`` row, every other row of its table is compared with it on every metric by
Welch's t-test over seeds and by a paired bootstrap over the held-out prompts (per-sample values
from the store), each corrected by Holm–Bonferroni over its comparisons in the table (see
:mod:`harness.analysis.significance`); the renderers mark the cells and say which tests and how
many comparisons.

Rows never pool different experiments: every benchmark setting and evaluation setting makes its
own table section, and rows of one algorithm are labelled by the fields that tell them apart
(``config``: algorithm settings, ``budget=…``, ``rm.…``). Runs of the same experiment made by
different code versions are handled by ``code_versions``: ``latest`` (default) keeps the newest
code version's runs and says how many older runs it left out, ``pool`` pools them (one run per
seed, the newest) and names the versions, ``each`` gives every code version its own row.

Layer: harness.analysis (imports its own modules, harness.store and the ground floor).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from harness.analysis import significance as sig
from harness.analysis.columns import (
    BASELINE_COLUMNS,
    CODE_MODES,
    HI,
    KEY_COLUMNS,
    LO,
    METRIC_BOUNDS,
    metric_columns,
    order_metrics,
)
from harness.analysis.comparisons import compare_with_baseline
from harness.analysis.intervals import confidence_interval
from harness.analysis.labels import label_rows
from harness.errors import UsageError, did_you_mean
from harness.store.schema import RUN_FRAME_COLUMNS


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
    """Aggregate a :meth:`~harness.store.Store.metrics_frame` over seeds.

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
    metric's test columns (see :func:`~harness.analysis.comparisons.compare_with_baseline`). ``samples(run_id)`` gives a run's stored
    samples (``Store.samples``) for the paired bootstrap, seeded by ``seed``; without it only
    Welch's test runs. ``alpha``: the family-wise error rate of each test in each table.

    ``attrs``: ``higher_is_better``, ``metrics``, ``intervals`` (metric → interval method),
    ``baseline`` and ``alpha``, for :func:`harness.reports.leaderboard.render`.
    """
    if code_versions not in CODE_MODES:
        raise UsageError(
            f"--code-versions {code_versions!r} is not one of {', '.join(CODE_MODES)}{did_you_mean(code_versions, CODE_MODES)}"
        )
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
    label_rows(rows, specs)
    if baseline is not None:
        compare_with_baseline(rows, groups, metrics, hib, baseline.strip(), samples, alpha, seed)

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
