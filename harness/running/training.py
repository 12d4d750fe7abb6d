"""What training one run needs, built alike by the runner and by each rank of a data-parallel
run: the seeds, the training context, the finite-loss check, and gold along training (the
checkpoint points measured after ``train``).

Layer: running. Imports the pipeline, the ground floor, the specs and
:mod:`harness.running` modules below the runner (checkpoints, reward_fit, workspace).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch

from harness.api import Budget, Policy, TrainContext
from harness.api.budget import metered
from harness.errors import NonFiniteError
from harness.pipeline.stages import PreparedBenchmark
from harness.running.checkpoints import (
    CHECKPOINT_SEED_OFFSET,
    CheckpointSchedule,
    best_of_n_curve,
    checkpoint_prompts,
    measure,
    measure_checkpoints,
)
from harness.running.reward_fit import CountingRewardModel, optimizer_preferences
from harness.running.workspace import Workspace
from harness.specs import RunSpec


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_finite(step: int, metrics: dict[str, float]) -> None:
    """A :class:`NonFiniteError` when a logged loss or objective is NaN or infinite."""
    for key, value in metrics.items():
        if key.startswith(("loss/", "objective/")) and not math.isfinite(float(value)):
            raise NonFiniteError(f"{key} is {value} at step {step}")



def train_metered(algorithm, ctx: TrainContext) -> Policy:
    """``algorithm.train(ctx)`` under the budget's meter: every sample the toolkit's samplers draw
    is charged to ``ctx.budget`` (``ctx.sample`` charges first, a plugin sampling around it is
    charged by the samplers), and every score of the proxy's network counts as an RM query however
    it is asked for; a draw past the budget is :class:`~harness.api.BudgetExceeded`, naming where."""
    networks = tuple(m for m in [getattr(ctx.reward_model, "model", None)] if m is not None)
    with metered(ctx.budget, reward_networks=networks):
        return algorithm.train(ctx)


def training_context(spec: RunSpec, workspace: Workspace, algorithm, prepared: PreparedBenchmark, proxy, budget: Budget, *,
                     run_dir: Path, log, quiet: bool) -> tuple[TrainContext, float | None]:  # fmt: skip
    """The optimizer's whole world for one run — a fresh π_sft to train, a frozen π_ref, the proxy
    behind a budget counter, the train prompts (never r*) — built alike by the runner and by each
    rank of a data-parallel run; with the cost of the preferences an offline learner gets."""
    preferences, annotation_cost = optimizer_preferences(algorithm, prepared)
    ref_model = prepared.load_sft().requires_grad_(False)
    ctx = TrainContext(
        model=prepared.load_sft(), ref_model=ref_model, tokenizer=prepared.tokenizer,
        reward_model=CountingRewardModel(proxy, budget), train_prompts=list(prepared.train_prompts),
        generation=prepared.generation, budget=budget, seed=spec.seed, device=workspace.device, run_dir=run_dir,
        log=log, quiet=quiet, preferences=preferences,
    )  # fmt: skip
    return ctx, annotation_cost


def gold_along_training(workspace: Workspace, spec: RunSpec, prepared: PreparedBenchmark, proxy, settings,
                        schedule: CheckpointSchedule, policy: Policy, ref_model, last_step: int) -> list[tuple[int, dict[str, float]]]:  # fmt: skip
    """After training: the checkpoint points (π_sft, each weight snapshot, the final policy) on
    the checkpoint prompts, or a best-of-n policy's best-of-k curve (see ``checkpoints``)."""
    prompts = checkpoint_prompts(prepared.eval_prompts, settings)
    gold = prepared.judge.gold if prepared.judge.has_gold else None
    seed = spec.seed + CHECKPOINT_SEED_OFFSET
    ref = Policy(ref_model, prepared.tokenizer)
    if policy.best_of_n_base is not None:
        if not settings.best_of_n_curve:
            return []
        points = best_of_n_curve(policy.best_of_n_base, prompts[:: settings.checkpoint_samples_per_prompt],
                                 settings.best_of_n_curve, prepared.generation, seed, gold, proxy)  # fmt: skip
        return list(enumerate(points))
    if settings.checkpoint_every <= 0:
        return []

    def measure_policy(p: Policy) -> dict[str, float]:
        return measure(p, ref, prompts, prepared.generation, seed, gold, proxy)

    initial = workspace.initial_checkpoint(spec, lambda: measure_policy(ref))
    probe = prepared.load_sft() if schedule.snapshots else None
    final_is_sft = type(policy) is Policy and same_weights(policy.model, ref_model)
    return measure_checkpoints(schedule, probe, policy, last_step, initial, measure_policy, final_is_sft)


def same_weights(model, other) -> bool:
    theirs = other.state_dict()
    return all(key in theirs and torch.equal(value, theirs[key]) for key, value in model.state_dict().items())
