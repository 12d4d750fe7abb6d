"""Evaluation along training, and best-of-n as a curve.

**Checkpoints.** The runner measures the policy between updates — gold r*, proxy r̂ and
KL(π‖π_sft) — on a fixed subset of held-out prompts, every ``checkpoint_every`` episodes, plus
π_sft before training (episodes 0) and the final policy. The optimizer never sees these numbers:
inside the ``ctx.log`` callback that every optimizer already calls after its updates, the runner
copies the policy's weights when a mark is crossed, and measures the copies after training, so
nothing reachable from the optimizer leads to r* and training is bit-identical with checkpoints on
or off. The measurements land in the run's curves (``checkpoint/*`` keys). Every checkpoint
samples with the same seed (common random numbers), so two checkpoints differ by the policy, not
by the draw.

**Best-of-n curve.** One set of N samples per prompt from π_sft, scored by r̂ and r*; the
point for each n ∈ {1, 2, 4, …, N} is the *exact* expectation over all n-subsets of those N
samples (no re-sampling): with the samples sorted by r̂ ascending, the best of a uniformly
random n-subset is the i-th with probability C(i−1, n−1) / C(N, n). Its KL to π_sft is
log n − (n−1)/n: exact when the n samples never repeat, an upper bound otherwise (Beirami et al.
2024, "Theoretical guarantees on the best-of-n alignment policy").

Layer: running. Imports harness.api, the specs and :mod:`harness.running.evaluation`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from harness.api import Budget, FittedRewardModel, GenerationSettings, Policy, Rollout
from harness.running.evaluation import EVAL_SEED_OFFSET
from harness.specs import EvaluationSettings

#: checkpoint draws: seeds apart from training and final evaluation
CHECKPOINT_SEED_OFFSET = 3 * EVAL_SEED_OFFSET


def checkpoint_prompts(eval_prompts: list[str], settings: EvaluationSettings) -> list[str]:
    """The first ``checkpoint_prompts`` held-out prompts, each ``checkpoint_samples_per_prompt`` times."""
    return [p for p in eval_prompts[: settings.checkpoint_prompts] for _ in range(settings.checkpoint_samples_per_prompt)]


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n ‖ base) = log n − (n−1)/n nats per sequence (an upper bound when samples repeat)."""
    return math.log(n) - (n - 1) / n


def curve_ns(max_n: int) -> list[int]:
    """1, 2, 4, … up to ``max_n`` (``max_n`` itself included when it is no power of two)."""
    ns = [2**i for i in range(int(math.log2(max_n)) + 1)] if max_n >= 1 else []
    return ns + ([max_n] if ns and ns[-1] != max_n else [])


def expected_best_of(proxy: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """Per prompt (rows of ``[P, N]``), the expectation of ``values`` at the proxy's argmax over a
    uniformly random n-subset of the N samples: Σ_i values_(i) · C(i−1, n−1) / C(N, n), with i
    the rank by proxy ascending. n = 1 gives the plain mean; n = N the argmax."""
    big_n = proxy.shape[1]
    if not 1 <= n <= big_n:
        raise ValueError(f"n must be in [1, {big_n}], got {n}")
    order = proxy.argsort(dim=1, stable=True)
    ranked = values.gather(1, order).double()
    ranks = torch.arange(1, big_n + 1, dtype=torch.float64)
    # log C(i−1, n−1) − log C(N, n), zero weight where i < n
    log_weight = (torch.lgamma(ranks) - torch.lgamma(torch.tensor(n, dtype=torch.float64)) - torch.lgamma(ranks - n + 1)) \
        - (math.lgamma(big_n + 1) - math.lgamma(n + 1) - math.lgamma(big_n - n + 1))  # fmt: skip
    weight = torch.where(ranks >= n, log_weight.exp(), torch.zeros_like(ranks))
    return (ranked * weight).sum(1)


@contextlib.contextmanager
def isolated_randomness(device: torch.device) -> Iterator[None]:
    """Restore torch's global random state afterwards: a measurement (or a judge LM loaded
    lazily on first use) never shifts the optimizer's random stream."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


def measure(policy: Policy, ref: Policy, prompts: list[str], generation: GenerationSettings, seed: int,
            gold: Callable[[Rollout], torch.Tensor] | None, proxy: FittedRewardModel) -> dict[str, float]:  # fmt: skip
    """Mean gold, proxy and KL(π‖π_ref) per sequence of ``policy``'s samples on ``prompts``."""
    model = policy.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), isolated_randomness(model.device):
            rollout = policy.sample(prompts, generation, torch.Generator().manual_seed(seed))
            if policy.analytic_kl is not None:
                kl = float(policy.analytic_kl)
            elif policy.has_log_probs:
                log_ratio = policy.log_probs(rollout, generation.temperature) - ref.log_probs(rollout, generation.temperature)
                kl = float((log_ratio * rollout.response_mask).sum(1).mean())
            else:
                kl = float("nan")
            return {
                "gold": float(gold(rollout).float().mean()) if gold is not None else float("nan"),
                "proxy": float(proxy.score(rollout).float().mean()),
                "kl": kl,
            }
    finally:
        model.train(was_training)


class CheckpointSchedule:
    """What ``ctx.log`` holds: the budget and a copy of the policy's weights each time the
    episodes spent cross the next multiple of ``every`` — nothing that leads to r*. The copies
    are measured after training (:func:`measure_checkpoints`), so the optimizer can neither see
    the measurements nor be slowed or perturbed by them mid-update. Copies stay in memory up to
    :attr:`MEMORY_LIMIT` bytes in all, then go to ``spill_dir`` as safetensors (large models)."""

    MEMORY_LIMIT = 2**30

    def __init__(self, every: int, budget: Budget, spill_dir: Path):
        self.every, self.budget, self.spill_dir = every, budget, spill_dir
        self.next_at = every
        self.snapshots: list[tuple[int, int, dict[str, torch.Tensor] | Path]] = []  # (step, episodes, weights)
        self._bytes = 0

    def after_log(self, step: int, model) -> None:
        """Called by the runner after each ``ctx.log``: copy the weights when a mark was crossed."""
        used = self.budget.episodes_used
        if self.every <= 0 or used < self.next_at or any(s == step for s, _, _ in self.snapshots):
            return
        self.next_at = (used // self.every + 1) * self.every
        weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        size = sum(t.numel() * t.element_size() for t in weights.values())
        if self._bytes + size > self.MEMORY_LIMIT:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            path = self.spill_dir / f"step-{step}.safetensors"
            save_file({k: t.contiguous() for k, t in weights.items()}, str(path))
            self.snapshots.append((step, used, path))
        else:
            self._bytes += size
            self.snapshots.append((step, used, weights))

    def weights(self, saved: dict[str, torch.Tensor] | Path) -> dict[str, torch.Tensor]:
        return saved if isinstance(saved, dict) else load_file(str(saved))

    def discard(self) -> None:
        for _, _, saved in self.snapshots:
            if isinstance(saved, Path):
                saved.unlink(missing_ok=True)
        self.snapshots.clear()


def measure_checkpoints(schedule: CheckpointSchedule, probe_model, final: Policy, last_step: int, initial: dict[str, float],
                        measure_policy: Callable[[Policy], dict[str, float]], final_is_sft: bool) -> list[tuple[int, dict[str, float]]]:  # fmt: skip
    """The checkpoint points of one run, ``[(step, {checkpoint/*: value})]``: π_sft at step 0
    (``initial``), each snapshot loaded into ``probe_model``, and ``final`` unless the last
    snapshot already saw every episode spent or it is π_sft itself (``final_is_sft``). An
    offline learner (DPO) spends no episodes: its trajectory is π_sft and its final policy."""

    def point(episodes: int, values: dict[str, float]) -> dict[str, float]:
        return {"checkpoint/episodes": float(episodes), **{f"checkpoint/{k}": v for k, v in values.items()}}

    points = [(0, point(0, initial))]
    for step, episodes, saved in schedule.snapshots:
        probe_model.load_state_dict(schedule.weights(saved))
        points.append((step, point(episodes, measure_policy(Policy(probe_model, final.tokenizer)))))
    used = schedule.budget.episodes_used
    if not final_is_sft and (not schedule.snapshots or schedule.snapshots[-1][1] != used):
        taken = {step for step, _ in points}
        points.append((last_step + 1 if last_step in taken else last_step, point(used, measure_policy(final))))
    schedule.discard()
    return points


def best_of_n_curve(base: Policy, prompts: list[str], max_n: int, generation: GenerationSettings, seed: int,
                    gold, proxy: FittedRewardModel) -> list[dict[str, float]]:  # fmt: skip
    """The best-of-n curve of ``base`` under ``proxy`` (see the module docstring), one dict per n:
    ``best_of_n/{n,kl,gold,proxy}``; gold NaN when there is none."""
    with torch.no_grad(), isolated_randomness(base.model.device):
        candidates = base.sample([p for p in prompts for _ in range(max_n)], generation, torch.Generator().manual_seed(seed))
        proxy_scores = proxy.score(candidates).float().cpu().view(len(prompts), max_n)
        gold_scores = gold(candidates).float().cpu().view(len(prompts), max_n) if gold is not None else None
    points = []
    for n in curve_ns(max_n):
        points.append({
            "best_of_n/n": float(n),
            "best_of_n/kl": best_of_n_kl(n),
            "best_of_n/gold": float(expected_best_of(proxy_scores, gold_scores, n).mean()) if gold_scores is not None else float("nan"),
            "best_of_n/proxy": float(expected_best_of(proxy_scores, proxy_scores, n).mean()),
        })  # fmt: skip
    return points
