"""Markdown reports beside the leaderboard: what each finished run's policy writes
(``harness samples``, SAMPLES.md) and reward models side by side (``harness reward-models``,
REWARD_MODELS.md). Layer: harness.reports (imports harness.analysis, harness.store and its own
modules)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.analysis.labels import config_labels, settings_labels
from harness.reports.text import md_cell
from harness.store.records import RunRecord


def _number(value: float | None, fmt: str) -> str:
    """``value`` formatted, or "–" when it was not measured (no gold reward: ``None`` or NaN)."""
    return "–" if value is None or math.isnan(value) else format(value, fmt)


def samples_markdown(runs: list[RunRecord], samples_of, n: int) -> str:
    """One section per finished run: its metrics and its first ``n`` stored samples.
    ``samples_of(run_id, limit)`` reads them. Runs of one algorithm on one benchmark are
    labelled by the settings that tell them apart, as leaderboard rows are."""
    labels: dict[str, str] = {}
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.benchmark, r.algorithm), []).append(r)
    for group in groups.values():
        # seeds are not a difference: label the distinct experiments, as leaderboard rows are
        specs = list({r.experiment_key: r.spec for r in group}.values())
        texts = [", ".join(p for p in parts if p)
                 for parts in zip(config_labels(specs, with_reward_model=True), settings_labels(specs))]  # fmt: skip
        by_key = {spec.experiment_key: text for spec, text in zip(specs, texts)}
        labels.update({r.run_id: by_key[r.spec.experiment_key] for r in group})
    out = []
    for r in runs:
        label = f" ({labels[r.run_id]})" if labels[r.run_id] else ""
        out.append(f"### {md_cell(r.benchmark)} · {md_cell(r.algorithm)}{md_cell(label)} · seed {r.seed} · run {r.run_id}\n")
        metric = lambda key, fmt: _number(r.metrics.get(key), fmt)  # noqa: B023 — called at once, in this iteration
        out.append(f"gold {metric('eval/gold', '+.3f')}, proxy {metric('eval/proxy', '+.3f')}, KL {metric('eval/kl', '.2f')}\n")
        out.append("| gold | proxy | prompt ▸ response |\n| ---: | ---: | :--- |")
        for sample in samples_of(r.run_id, n):
            text = md_cell(sample["prompt"] + " ▸ " + sample["response"])
            out.append(f"| {_number(sample['gold'], '+.2f')} | {_number(sample['proxy'], '+.2f')} | {text} |")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def reward_models_markdown(rows: list[dict[str, Any]]) -> str:
    """A table of reward models (see :func:`harness.running.reward_fit.reward_model_rows`)."""
    table = pd.DataFrame(rows)
    return table.map(lambda v: md_cell(v) if isinstance(v, str) else v).to_markdown(index=False, floatfmt=".3f") + "\n"
