"""Baselines: ``sft`` (the starting policy, unchanged) and ``best-of-n`` (sample n responses
from π_sft, keep the one the proxy RM scores highest)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harness.api import GenerationSettings, Policy, PolicyOptimizer, Rollout, TrainContext, help_field, hookimpl
from harness.lm import best_of_groups


class SFT(PolicyOptimizer):
    name = "sft"
    description = "π_sft itself, no optimization (every other row is measured against it)"
    data_parallel = True  # --num-processes: nothing to train on any rank; rank 0 evaluates as in one process

    def train(self, ctx: TrainContext) -> Policy:
        return Policy(ctx.model, ctx.tokenizer)


@dataclass
class BestOfNConfig:
    n: int = help_field("samples per prompt; the proxy RM keeps the best", 8)

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"--n must be >= 1, got {self.n}")


class BestOfNPolicy(Policy):
    """π_sft followed by a proxy-RM argmax over ``n`` samples. Its per-token log-probs are not
    tractable, but its KL to π_sft is known: log n − (n − 1)/n (Stiennon et al. 2020) — a
    built-in check on the KL estimator's scale. Each answer costs n samples and n RM queries at
    inference: recorded as such (``samples_per_response``, ``rm_queries_per_response``)."""

    def __init__(self, model, tokenizer, reward_model, n: int):
        super().__init__(model, tokenizer)
        self.reward_model, self.n = reward_model, n
        self.analytic_kl = math.log(n) - (n - 1) / n
        self.samples_per_response = self.rm_queries_per_response = n
        self.best_of_n_base = Policy(model, tokenizer)

    def sample(self, prompts: list[str], settings: GenerationSettings, generator: torch.Generator, desc: str | None = None) -> Rollout:
        candidates = super().sample([p for p in prompts for _ in range(self.n)], settings, generator, desc)
        with torch.no_grad():
            scores = self.reward_model.score(candidates).view(len(prompts), self.n)
        chosen = candidates.select(best_of_groups(scores))
        chosen.prompts = list(prompts)
        return chosen


class BestOfN(PolicyOptimizer):
    name = "best-of-n"
    description = "rejection sampling: n samples from π_sft, the proxy RM keeps the best (no training)"
    Config = BestOfNConfig
    data_parallel = True  # --num-processes: nothing to train on any rank; rank 0 evaluates as in one process

    def train(self, ctx: TrainContext) -> Policy:
        # No training: the n-fold sampling cost is paid at inference and recorded as such.
        ctx.log(0, {"bon/n": self.config.n, "bon/analytic_kl": math.log(self.config.n) - (self.config.n - 1) / self.config.n})
        return BestOfNPolicy(ctx.model, ctx.tokenizer, ctx.reward_model, self.config.n)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(SFT)
    registry.add(BestOfN)
