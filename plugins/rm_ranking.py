"""``rm-ranking``: the modular reward of the seed — rank K responses per prompt with the reward
model and turn the *ranking* into the reward — optimized with PPO's machinery.

Per update, ``batch_size / K`` train prompts get K responses each from π_θ. The proxy RM scores
them; within each prompt's group the scores become rank rewards

    r_i = (rank_i − (K + 1) / 2) / ((K − 1) / 2)  ∈ [−1, 1],   rank 1 = worst, K = best,

centred (they sum to 0 in every group) and normalised, tied scores sharing the mean of their
ranks. Then PPO runs unchanged (per-token KL penalty to π_ref, GAE, clipping, budget): this file
only overrides *which* prompts are sampled and *what* the score of an episode is, by subclassing
:class:`harness_plugins.ppo.PPO` — no copy of its loop.

A rank reward is bounded and ignores how much better the RM finds a response, only that it is
better: an RM's exploitable extremes earn no more than rank K. Whether that resists reward
hacking is an empirical question this plugin lets the leaderboard answer.

``--objective rrhf`` replaces PPO's update by RRHF's (Yuan et al. 2023): a hinge ranking loss on
length-normalised sequence log-probs, ordered by the RM, plus an SFT term on each group's best
response, plus (by default) β × the KL estimate to π_ref on the sampled tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from harness_plugins.ppo import PPO, PromptSampler, anneal_lr, kl_penalty, updates_in_budget
from harness_plugins.ppo_config import PPOConfig

from harness import hookimpl
from harness.api import Policy, Rollout, TrainContext
from harness.config import help_field
from harness.fast_gpt2 import policy_logits, sample_batch
from harness.generation import token_log_probs


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


def rrhf_loss(seq_logp: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """RRHF's ranking term: Σ over pairs with score_i < score_j of max(0, p_i − p_j), where p is
    the length-normalised sequence log-prob, per group ``[G, K]``, averaged over groups."""
    worse = scores.unsqueeze(2) < scores.unsqueeze(1)  # [G, i, j]: i scored below j
    gaps = (seq_logp.unsqueeze(2) - seq_logp.unsqueeze(1)).clamp_min(0)
    return torch.where(worse, gaps, 0.0).sum((1, 2)).mean()


@dataclass
class RMRankingConfig(PPOConfig):
    k: int = help_field("responses sampled per prompt and ranked by the RM (2..9)", 4)
    reward: Literal["rank", "score"] = help_field(
        "rank: centred, normalised rank within the prompt's K responses; score: the RM's raw score", "rank"
    )
    objective: Literal["ppo", "rrhf"] = help_field("ppo: PPO on the rank rewards; rrhf: RRHF's ranking + SFT loss", "ppo")
    sft_coef: float = help_field("weight of the SFT term on the best response (--objective rrhf)", 1.0)

    def __post_init__(self):
        super().__post_init__()
        if not 2 <= self.k <= 9:
            raise ValueError(f"--k must be in 2..9, got {self.k}")
        if self.batch_size % self.k:
            raise ValueError(f"--batch-size ({self.batch_size}) must be a multiple of --k ({self.k})")
        if self.sft_coef < 0:
            raise ValueError("--sft-coef must be >= 0")


class RMRanking(PPO):
    name = "rm-ranking"
    description = "K responses per prompt, ranked by the RM; ranks become rewards for PPO (or RRHF)"
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

    # -- RRHF ------------------------------------------------------------------------------------

    def train(self, ctx: TrainContext) -> Policy:
        if self.config.objective == "ppo":
            return super().train(ctx)
        return self.train_rrhf(ctx)

    def train_rrhf(self, ctx: TrainContext) -> Policy:
        c = self.config
        torch.manual_seed(ctx.seed)
        generator = torch.Generator().manual_seed(ctx.seed)
        policy, ref = ctx.policy, ctx.ref_policy
        n_updates = updates_in_budget(ctx.budget, c.batch_size)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=c.lr, eps=c.adam_eps, weight_decay=c.weight_decay)
        beta = c.kl_coef if c.kl else 0.0
        temperature, sampler = ctx.generation.temperature, PromptSampler(ctx.train_prompts, generator)
        with ctx.progress(n_updates, f"{self.name} (rrhf) updates") as progress:
            for update in range(1, n_updates + 1):
                anneal_lr(optimizer, c.lr, c.lr_decay, update, n_updates)
                ctx.budget.spend(c.batch_size)
                rollout = sample_batch(policy, ctx.tokenizer, self.rollout_prompts(sampler, c.batch_size), ctx.generation, generator)
                mask = rollout.response_mask
                with torch.no_grad():
                    raw = ctx.reward_model.score(rollout).float()
                    ref_logp = token_log_probs(policy_logits(ref, rollout, temperature), rollout)
                    scores = self.episode_scores(ctx, rollout, raw).view(-1, c.k)
                for _ in range(c.num_ppo_epochs):
                    logp = token_log_probs(policy_logits(policy, rollout, temperature), rollout)
                    seq_logp = (logp.sum(1) / rollout.lengths.clamp_min(1)).view(-1, c.k)  # length-normalised
                    best = scores.argmax(1) + torch.arange(scores.size(0)) * c.k
                    sft = -(logp[best].sum(1) / rollout.lengths[best].clamp_min(1)).mean()
                    kl = torch.where(mask, kl_penalty(logp, ref_logp, c.kl_estimator), 0.0).sum(1).mean()
                    loss = rrhf_loss(seq_logp, scores) + c.sft_coef * sft + beta * kl
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if c.max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(policy.parameters(), c.max_grad_norm)
                    optimizer.step()
                ctx.log(update, {
                    "objective/scores": raw.mean().item(),
                    "objective/kl": kl.item(),
                    "loss/policy": loss.item(),
                    "loss/sft": sft.item(),
                    "val/response_length": rollout.lengths.float().mean().item(),
                    "val/eos_rate": rollout.ended.float().mean().item(),
                    "budget/episodes_used": ctx.budget.episodes_used,
                })  # fmt: skip
                progress.update(1)
        return Policy(policy, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(RMRanking)
