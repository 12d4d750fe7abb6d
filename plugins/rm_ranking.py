"""``rm-ranking``: the modular reward of the seed — rank K responses per prompt with the reward
model and turn the *ranking* into the reward — optimized with PPO's machinery.

Per update, ``batch_size / K`` train prompts get K responses each from π_θ. The proxy RM scores
them; within each prompt's group the scores become rank rewards

    r_i = (rank_i − (K + 1) / 2) / ((K − 1) / 2)  ∈ [−1, 1],   rank 1 = worst, K = best,

centred (they sum to 0 in every group) and normalised, tied scores sharing the mean of their
ranks. Then PPO runs unchanged (per-token KL penalty to π_ref, GAE, clipping, budget): this file
only overrides *which* prompts are sampled and *what* the score of an episode is, by subclassing
:class:`harness_plugins.ppo.PPO` — no copy of its loop. (RRHF, which trains on the same ranked
groups without PPO, is its own algorithm: ``--algo rrhf``.)

A rank reward is bounded and ignores how much better the RM finds a response, only that it is
better: an RM's exploitable extremes earn no more than rank K. Whether that resists reward
hacking is an empirical question this plugin lets the leaderboard answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from harness_plugins.ppo import PPO, PromptSampler
from harness_plugins.ppo_config import PPOConfig

from harness.api import Rollout, TrainContext, help_field, hookimpl


def rank_rewards(scores: torch.Tensor) -> torch.Tensor:
    """Centred, normalised ranks of ``scores`` ``[G, K]`` within each row, in [−1, 1].

    Ties share the mean of the ranks they span, so equal scores get equal rewards; the map is
    permutation-equivariant (permuting a row's scores permutes its rewards the same way) and
    each row sums to 0. K = 1 gives 0.
    """
    k = scores.size(1)
    if k == 1:
        return torch.zeros_like(scores)
    below = (scores.unsqueeze(2) > scores.unsqueeze(1)).sum(2).float()  # how many each beats
    ties = (scores.unsqueeze(2) == scores.unsqueeze(1)).sum(2).float()  # itself included
    rank = below + (ties + 1) / 2  # 1-based; ties get the mean rank of their span
    return (rank - (k + 1) / 2) / ((k - 1) / 2)


@dataclass
class RMRankingConfig(PPOConfig):
    k: int = help_field("responses sampled per prompt and ranked by the RM (2..9)", 4)
    reward: Literal["rank", "score"] = help_field(
        "rank: centred, normalised rank within the prompt's K responses; score: the RM's raw score", "rank"
    )

    def __post_init__(self):
        super().__post_init__()
        if not 2 <= self.k <= 9:
            raise ValueError(f"--k must be in 2..9, got {self.k}")
        if self.batch_size % self.k:
            raise ValueError(f"--batch-size ({self.batch_size}) must be a multiple of --k ({self.k})")


class RMRanking(PPO):
    name = "rm-ranking"
    description = "K responses per prompt, ranked by the RM; the ranks become the rewards PPO optimizes"
    Config = RMRankingConfig

    # -- the two places where rm-ranking differs from PPO ---------------------------------------

    def rollout_prompts(self, sampler: PromptSampler, n: int) -> list[str]:
        """n / K prompts, each repeated K times consecutively (one group per prompt)."""
        k = self.config.k
        return [p for p in sampler.next(n // k) for _ in range(k)]

    def episode_scores(self, ctx: TrainContext, rollout: Rollout, raw_scores: torch.Tensor) -> torch.Tensor:
        if self.config.reward == "score":
            return raw_scores
        return rank_rewards(raw_scores.view(-1, self.config.k)).flatten()


@hookimpl
def harness_register_algorithms(registry):
    registry.add(RMRanking)
