"""PPO for language models, in one file: the math is in small named functions, the loop reads
top to bottom (in the spirit of CleanRL's ``ppo.py``).

One PPO update:

1. **Rollout**: sample a response for ``batch_size`` train prompts from π_θ (left padding, pure
   temperature sampling, everything after the first EOS masked).
2. **Score**: the proxy RM's scalar at the last real token; per-token log-probs of π_θ and π_ref
   recomputed with logits / T; per-token values from the critic.
3. **Reward**: r_t = −β·KL_t on every response token, plus the score at the last real token.
4. **GAE** over response tokens, advantage whitening.
5. **Optimise**: ``num_ppo_epochs`` passes of ``num_mini_batches`` AdamW steps on the clipped
   surrogate plus ``vf_coef`` × the clipped value loss.

Each implementation detail of the PPO checklist ([B] = "The N Implementation Details of RLHF with
PPO", 2023; [N] = "The N+ Implementation Details of RLHF with PPO", arXiv 2403.17031) is named
where it is implemented, as ``[B|N] <number> <name>``. ``--kl-coef 0`` (spelt ``--no-kl``, or ``--algo ppo-nokl``)
is the KL-ablated PPO, stored and tabled as ``ppo-nokl`` however it was asked for; KL(π_θ‖π_ref) is
still computed and logged.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from harness_plugins.ppo_config import PPOConfig, PPONoKLConfig

from harness.api import NonFiniteError, Policy, PolicyOptimizer, Rollout, TrainContext, UsageError, hookimpl, parallel
from harness.lm import StackedWeights, autocast, critic_values, lm_logits, lm_to_classifier, response_hidden, token_log_probs

__all__ = ["PPO", "PPONoKL", "PPOConfig", "PPONoKLConfig", "NonFiniteError"]


# =============================================================================================
# The math: small functions on [B, T] tensors; ``mask`` is True at real response tokens.
# Masked positions are selected away with torch.where (not multiplied by 0), so whatever lies
# after a response's end -- even NaN -- cannot reach a loss or a statistic ([N] 14).
# =============================================================================================


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, x, 0.0).sum() / mask.sum().clamp_min(1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance of ``x`` over the masked positions."""
    n = mask.sum()
    centred = torch.where(mask, x - masked_mean(x, mask), 0.0)
    return (centred**2).sum() / (n - 1).clamp_min(1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / std over the masked positions; with ``shift_mean=False`` the mean is added
    back (only the scale changes, as [B] 7 does for rewards). 0 at masked positions."""
    mean = masked_mean(x, mask)
    out = (x - mean) * torch.rsqrt(masked_var(x, mask) + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(mask, out, 0.0)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(π_θ‖π_ref) on tokens sampled from π_θ (Schulman's k1/k3).

    k1 = log π − log π_ref (unbiased, can be negative per sample); k3 = (r − 1) − log r with
    r = π_ref / π (unbiased, never negative). Both are exactly 0 where π_θ = π_ref.
    """
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}: use k1 or k3")


def per_token_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """[B] 1: r_t = −β·KL_t at every response token, plus the score at the last real token.

    Returns ``(rewards, non_score_rewards)``, both 0 after a response's end. With β = 0 the
    reward is the score alone (no KL term at all, not even −0·KL)."""
    if kl_coef:
        non_score = torch.where(mask, -kl_coef * kl, 0.0)  # minus: a policy far from π_ref is penalised
    else:
        non_score = torch.zeros_like(kl)
    last = mask.sum(1) - 1  # responses are right-padded: the last real token ([N] 11)
    rewards = non_score.clone()
    rewards[torch.arange(rewards.size(0), device=rewards.device), last] += scores
    return rewards, non_score


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens ([B] 7).

    δ_t = r_t + γ·V_{t+1} − V_t,   A_t = δ_t + γλ·A_{t+1},   returns R_t = A_t + V_t,
    where the step after the last real token is terminal (V = 0, A = 0). ``mask`` must be a
    prefix per row (right padding). Advantages and returns are 0 at masked positions."""
    rewards = torch.where(mask, rewards, 0.0)
    values = torch.where(mask, values, 0.0)
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(values[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage  # stays 0 on the padded tail
        advantages[:, t] = next_advantage
        next_value = values[:, t]
    advantages = torch.where(mask, advantages, 0.0)
    return advantages, torch.where(mask, advantages + values, 0.0)


def policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, cliprange: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate: mean over response tokens of max(−A·ρ, −A·clip(ρ, 1 ± ε)),
    ρ = π_θ / π_old. Returns the loss and detached statistics (clipfrac, approx_kl, ratio)."""
    logp = torch.where(mask, logp, 0.0)
    log_ratio = logp - torch.where(mask, old_logp, 0.0)
    advantages = torch.where(mask, advantages, 0.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    with torch.no_grad():
        stats = {
            "clipfrac": masked_mean((clipped > unclipped).float(), mask),
            "approx_kl": 0.5 * masked_mean(log_ratio**2, mask),
            "ratio": masked_mean(ratio, mask),
        }
    return loss, stats


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange_value: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """[B] 7 clipped value loss: 0.5 · mean of max((V − R)², (V_clip − R)²) with
    V_clip = V_old + clip(V − V_old, ±c)."""
    values = torch.where(mask, values, 0.0)
    old_values = torch.where(mask, old_values, 0.0)
    returns = torch.where(mask, returns, 0.0)
    clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    unclipped_error, clipped_error = (values - returns) ** 2, (clipped - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error), mask)
    with torch.no_grad():
        stats = {"clipfrac": masked_mean((clipped_error > unclipped_error).float(), mask)}
    return loss, stats


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the (temperature-scaled) next-token distribution at each position."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def clip_grad_norm(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """torch.nn.utils.clip_grad_norm_ on gradient tensors (a network's, some of them slices of
    stacked gradients): scale them in place so that their joint 2-norm is at most ``max_norm``;
    returns the norm before clipping. The same operations as torch's, so the same numbers."""
    total = torch.nn.utils.get_total_norm(grads, foreach=True)
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 − Var(R − V) / Var(R) over response tokens: 1 is a perfect critic, ≤ 0 a useless one."""
    return 1 - masked_var(returns - values, mask) / masked_var(returns, mask).clamp_min(1e-8)


# =============================================================================================
# KL coefficient: fixed or adaptive ([B] 6)
# =============================================================================================


class FixedKLController:
    """β stays at its initial value."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, kl: float, n_episodes: int) -> None:
        pass

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = state["value"]


class AdaptiveKLController(FixedKLController):
    """Ziegler et al. (2019): β ← β·(1 + clip(KL / target − 1, ±0.2) · n / horizon), after every
    batch of n episodes. ``kl`` should be a non-negative estimate: a k1 batch mean can dip below
    0 on few samples and would then push β the wrong way, so PPO feeds it the k3 estimate."""

    def __init__(self, kl_coef: float, target: float, horizon: int):
        super().__init__(kl_coef)
        self.target, self.horizon = target, horizon

    def update(self, kl: float, n_episodes: int) -> None:
        proportional_error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_episodes / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value, self.target, self.horizon = state["value"], state["target"], state["horizon"]


def make_critic(ctx: TrainContext, init: str, seed: int):
    """A sequence classifier used per token: [N] 13 critic initialised from the reward model (a
    deep copy: the RM itself stays frozen) when it can read the policy's tokens per token
    (its own tokenizer is the policy's; harness.lm.can_be_critic: same vocabulary size, a backbone
    and a score head), else from the
    policy (also when asked, or when the RM has no model); [B] 3 value head initialised to zero,
    so that V = 0 at the start (the reward head's N(0, 1/√(d+1)) initialisation is the RM
    plugin's, harness.lm.lm_to_classifier)."""
    from harness.lm import can_be_critic

    rm_model = getattr(ctx.reward_model, "model", None)
    # An RM with a tokenizer of its own (reward_model_base) reads other token ids, even at one vocabulary size.
    own_tokens = getattr(ctx.reward_model, "tokenizer", None) is not None
    if init == "reward_model" and rm_model is not None and not own_tokens and can_be_critic(rm_model, ctx.model):
        critic = copy.deepcopy(rm_model)
    else:
        critic = lm_to_classifier(ctx.model, seed=seed)
    torch.nn.init.zeros_(critic.score.weight)
    if getattr(critic.score, "bias", None) is not None:
        torch.nn.init.zeros_(critic.score.bias)
    critic.requires_grad_(True)
    return critic.to(ctx.device)


def disable_dropout(model) -> None:
    """[B]/[N] 8 dropout off: every dropout probability set to 0 and the model kept in eval mode
    (which also disables it), so sampling and training see the same function."""
    if model is None or not isinstance(model, torch.nn.Module):
        return
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.eval()


def updates_in_budget(budget, batch_size: int) -> int:
    """Whole batches only: never past the budget (a remainder stays unspent)."""
    n_updates = budget.remaining // batch_size
    if n_updates == 0:
        raise UsageError(f"--batch-size {batch_size} is more than the budget of {budget.remaining} episodes")
    return n_updates


def anneal_lr(optimizer, lr: float, decay: bool, update: int, n_updates: int) -> float:
    """[B] 9 LR annealing: linear to 0 over the updates (CleanRL's form); returns the LR set."""
    lr = lr * (1.0 - (update - 1) / n_updates) if decay else lr
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


class PromptSampler:
    """Train prompts in shuffled passes (a fresh seeded permutation per pass)."""

    def __init__(self, prompts: list[str], generator: torch.Generator):
        if not prompts:
            raise UsageError("PPO needs train prompts, and the benchmark has none")
        self.prompts, self.generator = prompts, generator
        self.order: list[int] = []

    def next(self, n: int) -> list[str]:
        while len(self.order) < n:
            self.order += torch.randperm(len(self.prompts), generator=self.generator).tolist()
        picked, self.order = self.order[:n], self.order[n:]
        return [self.prompts[i] for i in picked]


# =============================================================================================
# The algorithm
# =============================================================================================


class PPOPolicy(Policy):
    """π_θ after PPO, with the KL controller's final state ([B] 6: saved with the policy)."""

    def __init__(self, model, tokenizer, kl_controller: dict[str, float]):
        super().__init__(model, tokenizer)
        self.kl_controller = dict(kl_controller)


@dataclass
class Timings:
    """Wall seconds per phase, summed over updates (for ``harness bench ppo``)."""

    generate: float = 0.0
    score: float = 0.0  # forwards of π_θ, π_ref, critic and RM on the rollout; rewards, GAE
    optimize: float = 0.0  # forward + backward + AdamW over the PPO epochs


def _check_finite(what: str, x: torch.Tensor, update: int) -> None:
    """[faults] NaN or inf stops the run with the reason (the runner stores it as failed).
    Data-parallel: every rank stops at the same check when any rank's batch has one."""
    bad = ~torch.isfinite(x)
    here = bool(bad.any())
    if parallel.any_over_ranks(here, x.device) and not here:
        raise NonFiniteError(f"PPO update {update}: {what} is NaN or inf on another rank")
    if here:
        rows = bad.reshape(bad.size(0), -1).any(1) if bad.dim() else bad
        raise NonFiniteError(
            f"PPO update {update}: {what} is NaN or inf"
            + (f" for {int(rows.sum())} of {rows.numel()} responses" if bad.dim() else "")
        )


class PPO(PolicyOptimizer):
    name = "ppo"
    description = "PPO with a per-token KL penalty to π_sft, GAE and a critic from the RM ([B]/[N] details)"
    Config = PPOConfig
    #: ``harness run --num-processes N``: each rank samples batch_size / N episodes of every batch,
    #: gradients are averaged over ranks, logged scalars too (harness.parallel)
    data_parallel = True

    def check_data_parallel(self, n: int) -> None:
        """A :class:`UsageError` unless the batch splits into ``n`` equal shards, each of whole
        mini-batches and whole prompt groups (rm-ranking's K responses per prompt stay on one rank)."""
        c, group = self.config, getattr(self.config, "k", 1)
        if c.batch_size % (n * c.num_mini_batches) or (c.batch_size // n) % group:
            raise UsageError(
                f"--num-processes {n}: --batch-size {c.batch_size} must be a multiple of {n} × --num-mini-batches "
                f"({c.num_mini_batches})" + (f" and each rank's {c.batch_size // n} episodes a multiple of --k {group}" if group > 1 else "")
            )

    @classmethod
    def row_name(cls, config: PPOConfig) -> str:
        """One spelling of the KL ablation: PPO with β = 0 is ``ppo-nokl`` (``--no-kl``,
        ``--kl-coef 0`` and ``--algo ppo-nokl`` are one experiment); variants keep their name."""
        if cls.name not in (PPO.name, PPONoKL.name):
            return cls.name
        return PPONoKL.name if config.kl_coef == 0 else PPO.name

    # -- what a variant may change (rm-ranking does): which prompts, and an episode's score ------

    def rollout_prompts(self, sampler: PromptSampler, n: int) -> list[str]:
        """The ``n`` prompts of one rollout batch."""
        return sampler.next(n)

    def episode_scores(self, ctx: TrainContext, rollout: Rollout, raw_scores: torch.Tensor) -> torch.Tensor:
        """The score of each episode, added at its last token: here the proxy RM's own."""
        return raw_scores

    def episodes_per_update(self) -> int:
        return self.config.batch_size

    def train(self, ctx: TrainContext) -> Policy:
        c: PPOConfig = self.config
        self.timings = Timings()
        # -- set-up ----------------------------------------------------------------------------
        torch.manual_seed(ctx.seed)
        dp = parallel.state()  # one process: rank 0 of 1, and every parallel.* call below is a no-op
        if dp.enabled:
            self.check_data_parallel(dp.world_size)
            ctx.generator = torch.Generator().manual_seed(ctx.seed + dp.rank)  # each rank samples its own stream
            prompt_generator = torch.Generator().manual_seed(ctx.seed)  # the same global batches on every rank
        generator = ctx.generator  # seeded with the run's seed (+ rank): rollouts and mini-batch order
        local_batch = c.batch_size // dp.world_size  # the episodes this rank samples and trains on per update
        policy, ref_policy, rm_model = ctx.model, ctx.ref_model, getattr(ctx.reward_model, "model", None)
        critic = make_critic(ctx, c.critic_init, seed=ctx.seed)
        for model in (policy, ref_policy, critic, rm_model):
            disable_dropout(model)  # [B]/[N] 8 dropout off in policy, reference, RM and critic
        parallel.broadcast_parameters(policy, critic)  # data-parallel: one starting point on every rank
        n_updates = updates_in_budget(ctx.budget, c.batch_size)
        prompts = PromptSampler(ctx.train_prompts, prompt_generator if dp.enabled else generator)
        # One AdamW over both networks, as [N]/TRL: one backward of the joint loss, one step. The
        # networks share no parameter, so this equals two AdamWs with the same settings (and since
        # Adam is invariant to a loss's scale per parameter, vf_coef mostly acts through clipping
        # and ε). Gradient norms are clipped per network, so a large value gradient cannot shrink
        # the policy's step.
        # [perf] Policy and critic run as one batched computation; their block weights are held
        # stacked for the whole run (the models' parameters are views of them), so no forward
        # re-stacks them: the optimizer trains the held tensors (harness.lm.StackedWeights).
        weights = StackedWeights([policy, critic])
        optimizer = torch.optim.AdamW(
            weights.parameters(), lr=c.lr, eps=c.adam_eps, weight_decay=c.weight_decay, fused=True,  # [B] 9 Adam ε
        )  # fmt: skip
        if c.adaptive_kl:
            kl_ctl: FixedKLController = AdaptiveKLController(c.kl_coef, c.target_kl, c.kl_horizon)  # [B] 6
        else:
            kl_ctl = FixedKLController(c.kl_coef)  # β = 0 (--no-kl): the KL-ablated PPO
        temperature = ctx.generation.temperature
        # --precision bf16: every forward below runs under autocast (bf16 matmuls) but the LM and value heads,
        # which lm_logits and critic_values run in fp32; the RM's scores are cast to fp32, so log-probs, KL,
        # GAE, ratios and losses are fp32
        mixed = autocast(ctx.device, c.precision)
        started = time.perf_counter()

        with weights, ctx.progress(n_updates, f"{self.name} updates") as progress:  # leaving: own weights again
            for update in range(1, n_updates + 1):
                lr = anneal_lr(optimizer, c.lr, c.lr_decay, update, n_updates)  # [B] 9

                # -- 1. rollout ([B] 4 pure temperature sampling, [N] 10/11 left padding) -------------
                t0 = time.perf_counter()
                batch_prompts = self.rollout_prompts(prompts, c.batch_size)  # the global batch: the same on every rank
                batch_prompts = parallel.shard(batch_prompts)  # data-parallel: this rank's local_batch of it
                with mixed:
                    rollout = ctx.sample(batch_prompts, stop_at_eos=c.stop_at_eos)  # charged to the budget
                if dp.enabled:  # the budget counts the global batch: the other ranks' episodes too
                    ctx.budget.spend(c.batch_size - local_batch)
                mask = rollout.response_mask  # [N] 14 padding masked from every loss and statistic
                t1 = time.perf_counter()

                # -- 2. score, log-probs, values ------------------------------------------------------
                # [perf] With one mini-batch, the first PPO epoch trains on exactly this batch with
                # exactly these weights, so its forward pass is this one, kept with gradients: old
                # log-probs and values are its detached outputs (the ratio is 1 by construction).
                reuse = c.num_mini_batches == 1
                with torch.set_grad_enabled(reuse), mixed:
                    # [perf] one batched pass for policy and critic (and π_ref, when nothing is kept for backward)
                    hidden = response_hidden([policy, critic] if reuse else [policy, critic, ref_policy], rollout)
                    logits = lm_logits(policy, hidden[0], temperature)  # [B] 5 logits / T, as sampled
                    logp_now, values_now = token_log_probs(logits, rollout), critic_values(critic, hidden[1])
                old_logp, old_values = logp_now.detach(), values_now.detach()
                with torch.no_grad():
                    token_entropy = entropy(logits.detach())
                    with mixed:
                        ref_hidden = response_hidden([ref_policy], rollout)[0] if reuse else hidden[2]
                        ref_logits = lm_logits(ref_policy, ref_hidden, temperature)
                        # [B] 1 / [N] 11 the RM sees query + response, read at the last real token;
                        # [B] 2 it is normalised (mean 0, std 1 on π_sft samples) by the RM plugin.
                        raw_scores = ctx.score(rollout)  # fp32 (TrainContext.score)
                    ref_logp = token_log_probs(ref_logits, rollout)  # [B] 5
                    if dp.enabled:  # and their RM queries
                        ctx.budget.count_rm_queries((dp.world_size - 1) * len(rollout))
                _check_finite("the reward model's score", raw_scores, update)
                scores = self.episode_scores(ctx, rollout, raw_scores)
                if c.missing_eos_penalty is not None:  # [N] 12 EOS trick, TRL's form
                    scores = torch.where(rollout.ended, scores, scores - c.missing_eos_penalty)
                if c.missing_eos_score is not None:  # [N] 12 EOS trick, [N]'s form
                    scores = torch.where(rollout.ended, scores, torch.full_like(scores, c.missing_eos_score))

                # -- 3. per-token reward with the KL penalty ([B] 1) ------------------------------
                kl = kl_penalty(old_logp, ref_logp, c.kl_estimator)
                kl_k3 = kl_penalty(old_logp, ref_logp, "k3")  # non-negative: what the controller sees
                beta = kl_ctl.value
                rewards, non_score = per_token_rewards(scores, kl, mask, beta)
                if c.whiten_rewards:
                    rewards = whiten(rewards, mask, shift_mean=False)  # [B] 7 reward whitening, no mean shift
                _check_finite("the per-token reward", torch.where(mask, rewards, 0.0), update)

                # -- 4. GAE and advantage whitening ([B] 7) ---------------------------------------
                advantages, returns = compute_gae(rewards, old_values, mask, c.gamma, c.lam)
                if c.whiten_advantages:
                    advantages = whiten(advantages, mask)
                t2 = time.perf_counter()

                # -- 5. PPO epochs over mini-batches ----------------------------------------------
                stats: list[torch.Tensor] = []
                for epoch in range(c.num_ppo_epochs):
                    if c.num_mini_batches == 1:  # the whole batch: a mean over tokens needs no shuffle
                        batches = [slice(None)]
                    else:
                        batches = torch.randperm(local_batch, generator=generator).split(local_batch // c.num_mini_batches)
                    for index in batches:
                        mb_mask = mask[index]
                        if reuse and epoch == 0:
                            logp, values = logp_now, values_now
                        else:
                            mb = rollout if isinstance(index, slice) else rollout.select(index)
                            with mixed:
                                policy_hidden, critic_hidden = response_hidden([policy, critic], mb)  # [perf] one pass
                                logits_mb, values = lm_logits(policy, policy_hidden, temperature), critic_values(critic, critic_hidden)
                            logp = token_log_probs(logits_mb, mb)  # [B] 5, fp32
                        pg_loss, pg_stats = policy_loss(logp, old_logp[index], advantages[index], mb_mask, c.cliprange)
                        vf_loss, vf_stats = value_loss(values, old_values[index], returns[index], mb_mask, c.cliprange_value)
                        loss = pg_loss + c.vf_coef * vf_loss
                        _check_finite("the loss", loss, update)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        parallel.average_gradients(optimizer)  # data-parallel: each gradient's mean over ranks
                        grad_norms = [torch.zeros((), device=loss.device)] * 2
                        if c.max_grad_norm is not None:
                            grad_norms = [clip_grad_norm(weights.gradients(m), c.max_grad_norm) for m in (policy, critic)]
                        optimizer.step()
                        stats.append(torch.stack([
                            pg_loss.detach(), vf_loss.detach(), pg_stats["clipfrac"], pg_stats["approx_kl"],
                            pg_stats["ratio"], vf_stats["clipfrac"], *grad_norms,
                        ]))  # fmt: skip
                t3 = time.perf_counter()

                # -- 6. β update and logs -----------------------------------------------------------
                kl_per_seq = torch.where(mask, kl, 0.0).sum(1)
                kl_k3_mean = torch.where(mask, kl_k3, 0.0).sum(1).mean().item()
                if dp.enabled:  # β sees the global batch's KL, identical on every rank
                    kl_k3_mean = parallel.mean_over_ranks({"kl": kl_k3_mean}, ctx.device)["kl"]
                kl_ctl.update(kl_k3_mean, c.batch_size)
                mb_stats = torch.stack(stats).mean(0).tolist()
                self.timings.generate += t1 - t0
                self.timings.score += t2 - t1
                self.timings.optimize += t3 - t2
                non_score_per_seq = non_score.sum(1)
                metrics = {
                    "objective/scores": scores.mean().item(),
                    "objective/raw_scores": raw_scores.mean().item(),
                    "objective/kl": kl_per_seq.mean().item(),  # nats per response, reward's estimator
                    "objective/kl_k3": kl_k3_mean,
                    "objective/non_score_reward": non_score_per_seq.mean().item(),
                    "objective/rlhf_reward": (scores + non_score_per_seq).mean().item(),
                    # nats per response: the sampling distribution's entropy summed over its tokens
                    "objective/entropy": torch.where(mask, token_entropy, 0.0).sum(1).mean().item(),
                    "objective/kl_coef": beta,
                    "loss/policy": mb_stats[0],
                    "loss/value": mb_stats[1],
                    "policy/clipfrac": mb_stats[2],
                    "policy/approx_kl": mb_stats[3],
                    "policy/ratio": mb_stats[4],
                    "policy/grad_norm": mb_stats[6],
                    "val/clipfrac": mb_stats[5],
                    "val/grad_norm": mb_stats[7],
                    "val/explained_variance": explained_variance(old_values, returns, mask).item(),
                    "val/mean": masked_mean(old_values, mask).item(),
                    "val/response_length": rollout.lengths.float().mean().item(),
                    "val/eos_rate": rollout.ended.float().mean().item(),
                    "optim/lr": lr,
                    "budget/episodes_used": ctx.budget.episodes_used,
                    "time/episodes_per_second": update * c.batch_size / (time.perf_counter() - started),
                }
                metrics = parallel.mean_over_ranks(metrics, ctx.device)  # data-parallel: mean over ranks
                ctx.log(update, metrics)
                progress.update(1)
                progress.set_postfix(
                    score=f"{metrics['objective/scores']:.2f}", kl=f"{metrics['objective/kl']:.2f}", refresh=False
                )

        self.critic = critic
        return PPOPolicy(policy, ctx.tokenizer, kl_ctl.state_dict())


class PPONoKL(PPO):
    name = "ppo-nokl"
    description = "the KL-ablated PPO: PPO with β = 0 (same code as ppo --no-kl); KL is still measured"
    Config = PPONoKLConfig


@hookimpl
def harness_register_algorithms(registry):
    registry.add(PPO)
    registry.add(PPONoKL)


def _bench(argv: list[str]) -> int:
    from harness_plugins.ppo_bench import main

    return main(argv)


@hookimpl
def harness_register_commands(commands):
    commands.add("bench ppo", _bench, "PPO's speed on the TRL 1.12 peer's exact set-up (episodes/s, time breakdown)")
