"""``rrhf``: Rank Responses to align Human Feedback (Yuan et al. 2023), without PPO.

Per update, ``batch_size / k`` train prompts get ``k`` responses each from π_θ; the proxy RM
scores them, and the policy is trained for ``num_epochs`` full-batch AdamW steps on

    L = L_rank + sft_coef · L_sft + kl_coef · KL

- L_rank = Σ over pairs of a group with r̂_i < r̂_j of max(0, p_i − p_j), where p is the
  length-normalised sequence log-prob: a response the RM ranks lower must not be likelier;
- L_sft = the length-normalised negative log-likelihood of each group's best response;
- KL = the exact per-token KL(π_θ(·|x, y<t) ‖ π_ref(·|x, y<t)) over the whole vocabulary, summed
  over the response and averaged over responses. An estimate on the sampled tokens (k1 =
  log π(y) − log π_ref(y), y ~ π, with the gradient flowing through it) would not regularise at
  all: its gradient is ∇ log π(y), whose expectation under π is 0. The exact per-position KL has
  a real gradient that moves π_θ toward π_ref at every visited prefix.

``--no-kl`` (``--kl-coef 0``) drops the KL term; KL to π_ref is still logged and evaluated.
Every sampled response is charged to the budget (``ctx.sample``), every RM call counted.

Defaults (lr 1e-3, kl_coef 0.2) come from a one-seed grid on the embedded ``sentiment`` benchmark
at its default budget, gold r* at KL(π‖π_ref) in nats: lr 1e-5 … 1e-3 at kl_coef 0.05 gave gold
0.05 @ 0.1, −0.01 @ 2.3, 0.12 @ 6.3, 0.33 @ 12.2, 0.38 @ 16.4; at lr 1e-3, kl_coef 0.5 / 0.2 /
0.1 gave 0.28 @ 0.5, 0.42 @ 1.5, 0.46 @ 4.3. Without the KL term (lr 3e-4) it collapses: gold
−0.61 @ KL 77 — what the earlier RRHF inside rm-ranking did, whose k1 term had no effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from harness_plugins.ppo import PromptSampler, anneal_lr, updates_in_budget
from harness_plugins.ppo_config import AdamWConfig

from harness.api import Policy, PolicyOptimizer, TrainContext, UsageError, help_field, hookimpl, parallel
from harness.lm import best_of_groups, policy_logits, token_log_probs


def rank_loss(seq_logp: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """RRHF's ranking term: Σ over pairs with score_i < score_j of max(0, p_i − p_j), where p is
    the length-normalised sequence log-prob, per group ``[G, K]``, averaged over groups."""
    worse = scores.unsqueeze(2) < scores.unsqueeze(1)  # [G, i, j]: i scored below j
    gaps = (seq_logp.unsqueeze(2) - seq_logp.unsqueeze(1)).clamp_min(0)
    return torch.where(worse, gaps, 0.0).sum((1, 2)).mean()


def exact_token_kl(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(π‖π_ref) of the next-token distributions at every response position, ``[B, T]``, 0 at
    padding: Σ_v π(v) (log π(v) − log π_ref(v)) from logits ``[B, T, V]`` (already / T)."""
    logp, ref_logp = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
    return torch.where(mask, (logp.exp() * (logp - ref_logp)).sum(-1), 0.0)


def kl_regulariser(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(kl_coef · mean over responses of the summed exact KL, that KL detached). With
    ``kl_coef = 0`` the term is a constant 0: no gradient at all."""
    kl = exact_token_kl(logits, ref_logits, mask).sum(1).mean()
    term = kl_coef * kl if kl_coef else torch.zeros((), device=logits.device)
    return term, kl.detach()


@dataclass
class RRHFConfig(AdamWConfig):  # AdamW's options: adam_eps, weight_decay, lr_decay, max_grad_norm
    k: int = help_field("responses sampled per prompt and ranked by the proxy RM (2..9)", 4)
    batch_size: int = help_field("episodes (responses) per update; a multiple of --k", 64)
    num_epochs: int = help_field("full-batch AdamW steps on each update's responses", 4)
    lr: float = help_field("AdamW learning rate (tuned with --kl-coef on the embedded sentiment benchmark, see the docstring)", 1e-3)
    sft_coef: float = help_field("weight of the SFT term on each group's best response", 1.0)
    kl_coef: float = help_field("weight of the exact per-token KL to π_ref (0, --no-kl: none)", 0.2, aliases={"no_kl": 0.0})

    def __post_init__(self):
        if not 2 <= self.k <= 9:
            raise ValueError(f"--k must be in 2..9, got {self.k}")
        if self.batch_size <= 0 or self.batch_size % self.k:
            raise ValueError(f"--batch-size ({self.batch_size}) must be a positive multiple of --k ({self.k})")
        if self.num_epochs < 1:
            raise ValueError(f"--num-epochs must be >= 1, got {self.num_epochs}")
        if not self.lr > 0 or not self.adam_eps > 0:
            raise ValueError("--lr and --adam-eps must be > 0")
        if self.weight_decay < 0 or self.sft_coef < 0 or self.kl_coef < 0:
            raise ValueError("--weight-decay, --sft-coef and --kl-coef must be >= 0")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"--max-grad-norm must be > 0, got {self.max_grad_norm}")


class RRHF(PolicyOptimizer):
    name = "rrhf"
    description = "RRHF: a ranking loss on the RM's order of K responses per prompt + SFT on the best + exact KL to π_sft"
    Config = RRHFConfig
    #: ``harness run --num-processes N``: each rank samples and trains on batch_size / (N·K) of each update's
    #: prompt groups; gradients and logged scalars are averaged over ranks (harness.parallel)
    data_parallel = True

    def check_data_parallel(self, n: int) -> None:
        groups = self.config.batch_size // self.config.k
        if groups % n:
            raise UsageError(f"--num-processes {n}: the {groups} prompt groups of a batch (--batch-size "
                             f"{self.config.batch_size} / --k {self.config.k}) must split evenly over the processes")  # fmt: skip

    def episodes_per_update(self) -> int:
        return self.config.batch_size

    def train(self, ctx: TrainContext) -> Policy:
        c = self.config
        torch.manual_seed(ctx.seed)
        policy, ref, temperature = ctx.model, ctx.ref_model, ctx.generation.temperature
        dp = parallel.state()  # one process: rank 0 of 1, and every parallel.* call below is a no-op
        prompt_generator = ctx.generator
        if dp.enabled:
            self.check_data_parallel(dp.world_size)
            ctx.generator = torch.Generator().manual_seed(ctx.seed + dp.rank)  # each rank samples its own stream
            prompt_generator = torch.Generator().manual_seed(ctx.seed)  # the same global groups on every rank
        parallel.broadcast_parameters(policy)
        n_updates = updates_in_budget(ctx.budget, c.batch_size)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=c.lr, eps=c.adam_eps, weight_decay=c.weight_decay)
        sampler = PromptSampler(ctx.train_prompts, prompt_generator)
        with ctx.progress(n_updates, f"{self.name} updates") as progress:
            for update in range(1, n_updates + 1):
                lr = anneal_lr(optimizer, c.lr, c.lr_decay, update, n_updates)
                groups = parallel.shard(sampler.next(c.batch_size // c.k))  # data-parallel: this rank's groups
                rollout = ctx.sample(groups, k=c.k)  # group g: rows g·k … g·k + k − 1
                mask, lengths = rollout.response_mask, rollout.lengths.clamp_min(1)
                scores = ctx.score(rollout).view(-1, c.k)
                if dp.enabled:  # the budget counts the global batch: the other ranks' episodes and RM queries too
                    ctx.budget.spend(c.batch_size - len(rollout))
                    ctx.budget.count_rm_queries(c.batch_size - len(rollout))
                best = best_of_groups(scores)
                with torch.no_grad():
                    ref_logits = policy_logits(ref, rollout, temperature)
                for _ in range(c.num_epochs):
                    logits = policy_logits(policy, rollout, temperature)
                    logp = token_log_probs(logits, rollout)
                    seq_logp = (logp.sum(1) / lengths).view(-1, c.k)  # length-normalised
                    ranking = rank_loss(seq_logp, scores)
                    sft = -(logp[best].sum(1) / lengths[best]).mean()
                    kl_term, kl = kl_regulariser(logits, ref_logits, mask, c.kl_coef)
                    loss = ranking + c.sft_coef * sft + kl_term
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    parallel.average_gradients(optimizer)  # data-parallel: each gradient's mean over ranks
                    if c.max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(policy.parameters(), c.max_grad_norm)
                    optimizer.step()
                ctx.log(update, parallel.mean_over_ranks({
                    "objective/scores": scores.mean().item(),
                    "objective/kl": kl.item(),  # exact, nats per response, before the last step
                    "loss/total": loss.item(),
                    "loss/rank": ranking.item(),
                    "loss/sft": sft.item(),
                    "val/response_length": rollout.lengths.float().mean().item(),
                    "val/eos_rate": rollout.ended.float().mean().item(),
                    "optim/lr": lr,
                    "budget/episodes_used": ctx.budget.episodes_used,
                }, ctx.device))  # fmt: skip
                progress.update(1)
        return Policy(policy, ctx.tokenizer)


@hookimpl
def harness_register_algorithms(registry):
    registry.add(RRHF)
