"""Evaluation of a trained policy: samples of π and of π_sft on the held-out prompts, with the
benchmark's decoding settings and seeds derived from the run's, then every registered evaluator.

Layer: running. Imports harness.api, the pipeline's prepared benchmark and the specs.
"""

from __future__ import annotations

import torch

from harness.api import EvalBatch, FittedRewardModel, Policy
from harness.pipeline.stages import PreparedBenchmark
from harness.specs import EvaluationSettings

#: evaluation draws with seeds far from any training seed
EVAL_SEED_OFFSET = 1_000_003


def evaluation_seeds(seed: int) -> tuple[int, int]:
    """(the seed of the policy's evaluation samples, the seed of π_sft's) for run seed ``seed``:
    distinct from each other and from the run's training seed."""
    return seed + EVAL_SEED_OFFSET, seed + 2 * EVAL_SEED_OFFSET


def evaluation_prompts(prepared: PreparedBenchmark, settings: EvaluationSettings) -> list[str]:
    """The held-out prompts (the first ``max_prompts`` if set), each ``samples_per_prompt`` times."""
    prompts = prepared.eval_prompts[: settings.max_prompts or None]
    return [p for p in prompts for _ in range(settings.samples_per_prompt)]


def evaluate(
    evaluators: list,
    policy: Policy,
    ref: Policy,
    prepared: PreparedBenchmark,
    proxy: FittedRewardModel,
    seed: int,
    settings: EvaluationSettings,
    quiet: bool = False,
) -> tuple[dict[str, float], dict[str, bool | None], EvalBatch]:
    """Every evaluator (registry entries) on one :class:`EvalBatch`; returns (metrics, their
    directions, the batch)."""
    prompts = evaluation_prompts(prepared, settings)
    policy_seed, reference_seed = evaluation_seeds(seed)
    generation = prepared.generation
    rollout = policy.sample(prompts, generation, torch.Generator().manual_seed(policy_seed), desc=None if quiet else "evaluate: sample π")
    ref_rollout = ref.sample(prompts, generation, torch.Generator().manual_seed(reference_seed),
                             desc=None if quiet else "evaluate: sample π_sft")  # fmt: skip
    judge = prepared.judge
    batch = EvalBatch(policy, ref, rollout, ref_rollout, judge.gold if judge.has_gold else None, proxy, generation.temperature)
    metrics: dict[str, float] = {}
    higher: dict[str, bool | None] = {}
    has_gold = prepared.judge.has_gold
    for entry in evaluators:
        evaluator = entry.cls()
        higher.update(evaluator.higher_is_better)
        if evaluator.needs_gold and not has_gold:  # not measured: stored as NaN, tabled as "–"
            metrics.update(dict.fromkeys(evaluator.higher_is_better, float("nan")))
            continue
        metrics.update({k: float(v) for k, v in evaluator.evaluate(batch).items()})
    return metrics, higher, batch


def stored_samples(batch: EvalBatch, count: int | None = None) -> list[dict]:
    """The first ``count`` (default: every) evaluated responses, in evaluation order, with their
    gold (when there is one), proxy score, length, EOS and KL(π‖π_ref) estimate: per-prompt
    values for paired comparisons between runs on the same prompts."""
    gold = batch.gold if batch.has_gold else None
    if batch.policy.analytic_kl is not None:
        kl = [float(batch.policy.analytic_kl)] * len(batch.rollout)
    else:
        kl = batch.kl_per_sequence.tolist() if batch.kl_per_sequence is not None else [float("nan")] * len(batch.rollout)
    lengths = batch.rollout.lengths.tolist()
    rows = []
    for i in range(len(batch.rollout) if count is None else min(count, len(batch.rollout))):
        rows.append({
            "prompt": batch.rollout.prompts[i],
            "response": batch.rollout.responses[i],
            "gold": None if gold is None else float(gold[i]),
            "proxy": float(batch.proxy[i]),
            "ended": bool(batch.rollout.ended[i]),
            "length": int(lengths[i]),
            "kl": float(kl[i]),
        })  # fmt: skip
    return rows
