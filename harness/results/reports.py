"""Markdown reports beside the leaderboard: what each finished run's policy writes
(``harness samples``, SAMPLES.md) and reward models side by side (``harness reward-models``,
REWARD_MODELS.md)."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from harness.results.leaderboard import differences
from harness.results.store import RunRecord


def _flat_identity(spec) -> dict[str, Any]:
    """A spec without its seed and code, as flat ``key: value`` settings."""
    return {
        **spec.algorithm.config,
        "budget": spec.budget,
        "reward_model": spec.reward_model.name,
        **{f"rm.{k}": v for k, v in spec.reward_model.config.items()},
        **{f"bench.{k}": v for k, v in spec.benchmark.config.items()},
        **{f"eval.{k}": v for k, v in spec.evaluation.items()},
    }


def _md(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|")


def samples_markdown(runs: list[RunRecord], samples_of, n: int) -> str:
    """One section per finished run: its metrics and its first ``n`` stored samples.
    ``samples_of(run_id, limit)`` reads them. Runs of one algorithm on one benchmark are
    labelled by the settings that tell them apart, as leaderboard rows are."""
    labels: dict[str, str] = {}
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.benchmark, r.algorithm), []).append(r)
    for group in groups.values():
        # seeds are not a difference: label by the settings of the distinct specs
        keys = list(dict.fromkeys(r.spec.experiment_key for r in group))
        first = {r.spec.experiment_key: r for r in reversed(group)}
        texts = dict(zip(keys, differences([_flat_identity(first[k].spec) for k in keys])))
        labels.update({r.run_id: texts[r.spec.experiment_key] for r in group})
    out = []
    for r in runs:
        label = f" ({labels[r.run_id]})" if labels[r.run_id] else ""
        out.append(f"### {_md(r.benchmark)} · {_md(r.algorithm)}{_md(label)} · seed {r.seed} · run {r.run_id}\n")
        metric = lambda key: r.metrics.get(key, math.nan)  # noqa: E731
        out.append(f"gold {metric('eval/gold'):+.3f}, proxy {metric('eval/proxy'):+.3f}, KL {metric('eval/kl'):.2f}\n")
        out.append("| gold | proxy | prompt ▸ response |\n| ---: | ---: | :--- |")
        for sample in samples_of(r.run_id, n):
            out.append(f"| {sample['gold']:+.2f} | {sample['proxy']:+.2f} | {_md(sample['prompt'] + ' ▸ ' + sample['response'])} |")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def reward_models_markdown(rows: list[dict[str, Any]]) -> str:
    """A table of reward models (see :func:`harness.running.reward_fit.reward_model_rows`)."""
    table = pd.DataFrame(rows)
    return table.map(lambda v: _md(v) if isinstance(v, str) else v).to_markdown(index=False, floatfmt=".3f") + "\n"
