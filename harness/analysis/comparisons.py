"""Every row of a leaderboard table compared with its baseline row (:func:`compare_with_baseline`):
Welch's t-test over seeds and a paired bootstrap over the held-out prompts, each corrected by
Holm–Bonferroni over its comparisons in the table (:mod:`harness.analysis.significance`). Layer:
harness.analysis (imports its own modules and harness.errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from harness.analysis import significance as sig
from harness.analysis.columns import PAIRED, PAIRED_DIFF, PAIRED_HI, PAIRED_LO, PAIRED_P, SAMPLE_KEYS, WELCH, WELCH_P
from harness.analysis.labels import descriptors, row_labels, section_key, section_title
from harness.errors import UsageError, did_you_mean


def _find_baseline(text: str, rows: list[Mapping[str, Any]], labels: list[str], indices: list[int]) -> int | None:
    """The row of one table that ``text`` names: its label, or its algorithm with none or some of
    its descriptors (``ppo``, ``ppo (reward_model=pairwise)``); None if no row; several: an error."""
    exact = [i for i in indices if labels[i] == text]
    if exact:
        return exact[0]
    algorithm, _, inner = text.partition(" (")
    wanted = [w.strip() for w in inner.removesuffix(")").split(",") if w.strip()] if inner else []
    found = [i for i in indices if rows[i]["algorithm"] == algorithm.strip() and all(w in descriptors(rows[i]) for w in wanted)]
    if len(found) > 1:
        names = ", ".join(repr(labels[i]) for i in found)
        table = section_title(section_key(rows[found[0]]))
        raise UsageError(f"--baseline {text!r} matches {len(found)} rows of {table}: {names}; name one")
    return found[0] if found else None


def compare_with_baseline(rows: list[dict[str, Any]], groups: list[pd.DataFrame], metrics: list[str], hib: Mapping[str, bool],
             baseline: str, samples: Callable[[str], list[dict[str, Any]]] | None, alpha: float, seed: int) -> None:  # fmt: skip
    """Fill :data:`BASELINE_COLUMNS` and the test columns of every row, table by table.

    In a table with the baseline row, every other row is tested on every metric:

    - ``<m> welch``: Welch's t-test of its per-seed values against the baseline's
      (``not testable`` with fewer than 2 seeds on a side; empty when the metric was not measured);
    - ``<m> paired``: for metrics in :data:`SAMPLE_KEYS`, a paired bootstrap over the held-out
      prompts: each row's per-prompt means over its seeds' samples, minus the baseline's, prompts
      resampled (:func:`~harness.analysis.significance.paired_bootstrap`); empty where the samples
      lack the value or a row's prompts are not the baseline's (``note`` says which), ``not
      testable`` with fewer than :data:`~harness.analysis.significance.MIN_PROMPTS` prompts.

    Each test's p-values are Holm-adjusted over its comparisons in the table (``welch tests``,
    ``paired tests``); a verdict is ``better``/``worse`` (``higher``/``lower`` for a metric of no
    known direction) where the adjusted p < ``alpha``, else ``indistinguishable``. The baseline's
    own verdicts read ``baseline``."""
    labels = row_labels(rows)
    sections: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        row["label"] = labels[i]
        sections.setdefault(section_key(row), []).append(i)
    chosen = {section: _find_baseline(baseline, rows, labels, indices) for section, indices in sections.items()}
    if all(b is None for b in chosen.values()):
        tables = "; ".join(f"{section_title(s)}: {', '.join(sorted(labels[i] for i in sections[s]))}" for s in sorted(sections))
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
