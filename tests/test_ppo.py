"""PPO: the math against hand-computed values, the loop's invariants on tiny random models, and
one short seeded run on the embedded benchmark that must raise the proxy score."""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import harness_plugins.ppo as ppo
import pytest
import torch
from tests.conftest import make_train_context, proxy_gain
from harness_plugins.ppo import (
    PPO,
    AdaptiveKLController,
    NonFiniteError,
    PPONoKL,
    compute_gae,
    kl_penalty,
    per_token_rewards,
    policy_loss,
    value_loss,
    whiten,
)
from harness_plugins.ppo_bench import build_prompts, build_tokenizer
from harness_plugins.ppo_config import PPOConfig
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

import harness.lm.fast_gpt2 as fast_gpt2
from harness.api import (
    Budget,
    FittedRewardModel,
    GenerationSettings,
    PolicyOptimizer,
    TrainContext,
    UsageError,
)
from harness.config import add_dataclass_arguments, build_config
from harness.lm import (
    ClassifierReward,
    LMShape,
    gpt2_config,
    response_logits,
    sample_rollout,
    sequence_inputs,
    token_log_probs,
)
from harness.registry import Registry

# ---------------------------------------------------------------------------------------------
# A tiny synthetic set-up (random GPT-2s over a 59-token vocabulary): fast, for the loop's
# invariants. The embedded benchmark is used only where learning must be shown.
# ---------------------------------------------------------------------------------------------

TOKENIZER = build_tokenizer()
PROMPTS = build_prompts(64, seed=7)


def synthetic_context(*, budget: int = 64, seed: int = 0, reward=None, temperature: float = 1.0, log=None) -> TrainContext:
    shape = LMShape(n_layer=1, n_embd=32, n_head=2, n_positions=40)
    torch.manual_seed(123)  # the same models for every seed: the run's seed must be the only difference
    policy = GPT2LMHeadModel(gpt2_config(TOKENIZER, shape)).eval()
    ref = copy.deepcopy(policy).requires_grad_(False)
    if reward is None:
        reward = ClassifierReward(GPT2ForSequenceClassification(gpt2_config(TOKENIZER, shape, num_labels=1)), gain=20.0)
    return TrainContext(
        model=policy,
        ref_model=ref,
        tokenizer=TOKENIZER,
        reward_model=reward,
        train_prompts=PROMPTS,
        generation=GenerationSettings(max_new_tokens=8, temperature=temperature),
        budget=Budget(budget),
        seed=seed,
        device=torch.device("cpu"),
        run_dir=Path("."),
        log=log or (lambda step, metrics: None),
        quiet=True,
    )


SMALL = dict(batch_size=16, num_mini_batches=2, num_ppo_epochs=2, lr=1e-3)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------------------------------------
# the fast GPT-2 path computes what transformers and harness.lm.sampling compute
# ---------------------------------------------------------------------------------------------


def test_fast_forward_matches_transformers_and_stacked_models_match_separate_ones():
    ctx = synthetic_context()
    critic = ppo.make_critic(ctx, "policy", seed=1)
    torch.nn.init.normal_(critic.score.weight)
    ppo.disable_dropout(critic)
    rollout = sample_rollout(ctx.model, TOKENIZER, PROMPTS, ctx.generation, torch.Generator().manual_seed(0))
    mask = rollout.response_mask
    assert not mask.all() and mask.any(1).all()  # some responses ended early: padding is exercised
    with torch.no_grad():
        expected = response_logits(ctx.model, rollout, 0.7)  # transformers' forward
        torch.testing.assert_close(fast_gpt2.policy_logits(ctx.model, rollout, 0.7)[mask], expected[mask], rtol=0, atol=1e-5)
        input_ids, attention, positions = sequence_inputs(rollout)
        hidden = critic.transformer(input_ids=input_ids, attention_mask=attention, position_ids=positions).last_hidden_state
        start = rollout.query_ids.size(1) - 1
        hf_values = critic.score(hidden[:, start : start + mask.size(1)]).squeeze(-1)
        torch.testing.assert_close(fast_gpt2.token_values(critic, rollout)[mask], hf_values[mask], rtol=0, atol=1e-5)
        together = fast_gpt2.response_hidden([ctx.model, critic, ctx.ref_model], rollout)
        apart = [fast_gpt2.response_hidden([m], rollout)[0] for m in (ctx.model, critic, ctx.ref_model)]
        for a, b in zip(together, apart):
            torch.testing.assert_close(a[mask], b[mask], rtol=0, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_fast_sampler_draws_what_harness_generation_draws(temperature):
    ctx = synthetic_context()
    settings = GenerationSettings(max_new_tokens=12, temperature=temperature)
    ours = fast_gpt2.sample_batch(ctx.model, TOKENIZER, PROMPTS, settings, torch.Generator().manual_seed(3))
    theirs = sample_rollout(ctx.model, TOKENIZER, PROMPTS, settings, torch.Generator().manual_seed(3))
    assert torch.equal(ours.response_ids, theirs.response_ids)
    assert (ours.response_ids == TOKENIZER.pad_token_id).any()  # rows stopped at EOS, then PAD
    fixed = fast_gpt2.sample_batch(ctx.model, TOKENIZER, PROMPTS, settings, torch.Generator().manual_seed(3), stop_at_eos=False)
    assert fixed.response_ids.shape == (len(PROMPTS), 12) and fixed.response_mask.all()
    assert (fixed.response_ids == TOKENIZER.eos_token_id).any()  # EOS sampled as an ordinary token


def test_other_models_go_through_transformers_with_the_same_results(monkeypatch):
    def run() -> tuple[list, torch.Tensor]:
        logs = []
        policy = PPO(PPOConfig(**SMALL, stop_at_eos=False)).train(synthetic_context(budget=32, log=lambda s, m: logs.append(m)))
        return logs, policy.model.transformer.wte.weight.detach().clone()

    fast_logs, fast_weights = run()
    monkeypatch.setattr(fast_gpt2, "is_plain_gpt2", lambda model: False)  # as for any model but a plain GPT-2
    slow_logs, slow_weights = run()
    assert all(m["val/response_length"] == 8 for m in slow_logs)  # fixed length through harness.lm.sampling too
    assert slow_logs[0]["objective/scores"] == pytest.approx(fast_logs[0]["objective/scores"], abs=1e-5)
    torch.testing.assert_close(slow_weights, fast_weights, rtol=0, atol=1e-4)


def test_held_stacked_weights_are_the_models_weights_trained_once_then_released():
    ctx = synthetic_context()
    policy, critic = ctx.model, ppo.make_critic(ctx, "policy", seed=1)
    ppo.disable_dropout(critic)
    rollout = sample_rollout(policy, TOKENIZER, PROMPTS[:8], ctx.generation, torch.Generator().manual_seed(0))
    fc = [m.transformer.h[0].mlp.c_fc.weight for m in (policy, critic)]
    with fast_gpt2.StackedWeights([policy, critic]) as weights:
        held = fast_gpt2._stack(fc)  # what the batched forward multiplies by: no copy
        trained = [id(p) for p in weights.parameters()]
        assert id(held) in trained and id(fc[0]) not in trained
        assert torch.equal(held[1], fc[1]) and held[1].data_ptr() == fc[1].data_ptr()
        sum(h.sum() for h in fast_gpt2.response_hidden([policy, critic], rollout)).backward()
        assert fc[0].grad is None and held.grad is not None  # one gradient, on the held tensor
        assert len(weights.gradients(policy)) == len(list(policy.parameters()))  # every one, held or not
        with torch.no_grad():
            held[0].add_(1.0)  # an optimizer step on the held tensor is the model's
    assert not fast_gpt2._HELD
    storages = [p.untyped_storage().data_ptr() for m in (policy, critic) for p in m.parameters()]
    assert len(set(storages)) == len(storages)  # every parameter owns its storage again
    torch.testing.assert_close(fc[0], held[0].detach(), rtol=0, atol=0)


def test_held_stacked_weights_give_exactly_the_numbers_of_stacking_at_every_call(monkeypatch):
    def run() -> tuple[list, dict]:
        logs = []
        config = PPOConfig(**SMALL, max_grad_norm=0.05)  # small enough that every step clips
        policy = PPO(config).train(synthetic_context(budget=48, log=lambda s, m: logs.append(m))).model
        return logs, policy.state_dict()

    held_logs, held_weights = run()

    class HoldNothing(fast_gpt2.StackedWeights):  # each forward stacks the weights anew, as before
        def __init__(self, models):
            super().__init__(models[:1])
            self.models = list(models)

    monkeypatch.setattr(ppo, "StackedWeights", HoldNothing)
    stacked_logs, stacked_weights = run()
    assert all(m["policy/grad_norm"] > 0.05 and m["val/grad_norm"] > 0.05 for m in held_logs)
    untimed = [[{k: v for k, v in m.items() if not k.startswith("time/")} for m in logs] for logs in (held_logs, stacked_logs)]
    assert untimed[0] == untimed[1]  # every metric, every update, to the last bit
    assert all(torch.equal(held_weights[k], stacked_weights[k]) for k in held_weights)


# ---------------------------------------------------------------------------------------------
# GAE, whitening, rewards
# ---------------------------------------------------------------------------------------------


def test_gae_and_returns_match_hand_computed_values_with_masking():
    nan = float("nan")  # whatever lies after a response's end must not matter
    rewards = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, nan]])
    values = torch.tensor([[0.5, 1.0, -1.0], [0.2, 0.4, 99.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0: δ2 = 2 + 0 − (−1) = 3;  δ1 = 0 + 0.9·(−1) − 1 = −1.9;  δ0 = 1 + 0.9·1 − 0.5 = 1.4
    #        A2 = 3;  A1 = −1.9 + 0.72·3 = 0.26;  A0 = 1.4 + 0.72·0.26 = 1.5872
    # row 1 ends after 2 tokens (V after the end is 0): δ1 = 1 − 0.4 = 0.6;  δ0 = 0.5 + 0.9·0.4 − 0.2 = 0.66
    #        A1 = 0.6;  A0 = 0.66 + 0.72·0.6 = 1.092
    expected_adv = torch.tensor([[1.5872, 0.26, 3.0], [1.092, 0.6, 0.0]])
    torch.testing.assert_close(advantages, expected_adv)
    torch.testing.assert_close(returns, expected_adv + torch.tensor([[0.5, 1.0, -1.0], [0.2, 0.4, 0.0]]))


def test_gae_with_gamma_and_lambda_one_gives_reward_to_go():
    rewards = torch.tensor([[0.1, -0.2, 0.3, 1.0]])
    values = torch.tensor([[5.0, -3.0, 2.0, 7.0]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    advantages, returns = compute_gae(rewards, values, mask, gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[1.2, 1.1, 1.3, 1.0]]))  # Σ future rewards
    torch.testing.assert_close(advantages, returns - values)


def test_whiten_over_masked_positions_only():
    x = torch.tensor([[1.0, 2.0, 3.0, 1e9], [4.0, 5.0, float("nan"), float("inf")]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    valid = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    w = whiten(x, mask)
    torch.testing.assert_close(w[mask], (valid - valid.mean()) / valid.std())
    assert torch.equal(w[~mask], torch.zeros(3))
    scaled = whiten(x, mask, shift_mean=False)  # [B] 7 reward whitening: scale only
    torch.testing.assert_close(scaled[mask], (valid - valid.mean()) / valid.std() + valid.mean())


def test_kl_term_in_the_reward_has_the_right_sign():
    # π_θ put more mass than π_ref on the sampled tokens (log-ratio > 0): the reward must DROP.
    logp = torch.log(torch.tensor([[0.5, 0.4, 0.9]]))
    ref_logp = torch.log(torch.tensor([[0.1, 0.2, 0.3]]))
    mask = torch.ones(1, 3, dtype=torch.bool)
    kl = kl_penalty(logp, ref_logp, "k1")
    assert (kl > 0).all()
    rewards, non_score = per_token_rewards(torch.tensor([2.0]), kl, mask, kl_coef=0.1)
    torch.testing.assert_close(non_score, -0.1 * (logp - ref_logp))
    assert (non_score < 0).all()
    torch.testing.assert_close(rewards, non_score + torch.tensor([[0.0, 0.0, 2.0]]))  # score at the last real token


def test_score_lands_on_the_last_real_token_and_nothing_after_the_end():
    kl = torch.full((2, 4), 0.5)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    rewards, _ = per_token_rewards(torch.tensor([1.0, -1.0]), kl, mask, kl_coef=0.2)
    torch.testing.assert_close(rewards, torch.tensor([[-0.1, 0.9, 0.0, 0.0], [-0.1, -0.1, -0.1, -1.1]]))
    no_kl, non_score = per_token_rewards(torch.tensor([1.0, -1.0]), kl, mask, kl_coef=0.0)
    torch.testing.assert_close(no_kl, torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0]]))
    assert not non_score.any()


def test_kl_estimators_exactly_zero_when_policy_equals_reference():
    ctx = synthetic_context()
    rollout = sample_rollout(ctx.model, TOKENIZER, PROMPTS[:32], ctx.generation, torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp = token_log_probs(response_logits(ctx.model, rollout, 0.7), rollout)
        ref_logp = token_log_probs(response_logits(ctx.ref_model, rollout, 0.7), rollout)
    for estimator in ("k1", "k3"):
        assert torch.equal(kl_penalty(logp, ref_logp, estimator), torch.zeros_like(logp))


def test_k1_and_k3_are_unbiased_and_k3_is_never_negative():
    generator = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(20, generator=generator), 0)
    q = torch.softmax(torch.randn(20, generator=generator), 0)
    exact = (p * (p.log() - q.log())).sum()
    tokens = torch.multinomial(p, 200_000, replacement=True, generator=generator)
    logp, logq = p.log()[tokens], q.log()[tokens]
    k1, k3 = kl_penalty(logp, logq, "k1"), kl_penalty(logp, logq, "k3")
    assert (k3 >= 0).all()
    for estimate in (k1, k3):
        stderr = estimate.std() / math.sqrt(len(tokens))
        assert abs(estimate.mean() - exact) < 5 * stderr


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------


def test_policy_loss_clips_the_ratio():
    mask = torch.ones(1, 4, dtype=torch.bool)
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.9]]))
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, stats = policy_loss(new, old, adv, mask, cliprange=0.2)
    # max(−A·ρ, −A·clip(ρ)): [−1.2, 0.8, −1.1, 0.9] → the first two are clipped
    torch.testing.assert_close(loss, torch.tensor((-1.2 + 0.8 - 1.1 + 0.9) / 4))
    torch.testing.assert_close(stats["clipfrac"], torch.tensor(0.5))


def test_positions_after_eos_contribute_nothing_to_any_loss():
    generator = torch.Generator().manual_seed(0)
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    tensors = [torch.randn(2, 5, generator=generator) for _ in range(6)]
    logp, old_logp, adv, values, old_values, returns = tensors
    garbage = [t.masked_fill(~mask, v) for t, v in zip(tensors, [float("nan"), 1e30, -float("inf"), float("inf"), 7.0, -3.0])]
    a, b = tensors, garbage
    pa, pa_stats = policy_loss(a[0], a[1], a[2], mask, 0.2)
    pb, pb_stats = policy_loss(b[0], b[1], b[2], mask, 0.2)
    va, va_stats = value_loss(a[3], a[4], a[5], mask, 0.2)
    vb, vb_stats = value_loss(b[3], b[4], b[5], mask, 0.2)
    assert torch.equal(pa, pb) and torch.equal(va, vb)
    for key in pa_stats:
        assert torch.equal(pa_stats[key], pb_stats[key])
    assert torch.equal(va_stats["clipfrac"], vb_stats["clipfrac"])
    assert torch.equal(compute_gae(a[2], a[3], mask, 1.0, 0.95)[0], compute_gae(b[2], b[3], mask, 1.0, 0.95)[0])
    # ... and no gradient reaches a masked position, even from NaN next to it
    logp_b = garbage[0].clone().requires_grad_(True)
    values_b = garbage[3].clone().requires_grad_(True)
    loss = policy_loss(logp_b, garbage[1], garbage[2], mask, 0.2)[0] + value_loss(values_b, garbage[4], garbage[5], mask, 0.2)[0]
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.equal(logp_b.grad[~mask], torch.zeros(int((~mask).sum())))
    assert torch.equal(values_b.grad[~mask], torch.zeros(int((~mask).sum())))


def test_value_loss_is_clipped_around_the_old_value():
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, stats = value_loss(torch.tensor([[1.0, 0.1]]), torch.zeros(1, 2), torch.tensor([[1.0, 0.1]]), mask, 0.2)
    # token 0: V = 1 (exact) but V_clip = 0.2 → error 0.64 wins; token 1: within the clip → 0
    torch.testing.assert_close(loss, torch.tensor(0.5 * (0.64 + 0.0) / 2))
    torch.testing.assert_close(stats["clipfrac"], torch.tensor(0.5))


def test_adaptive_kl_controller_follows_ziegler():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    ctl.update(9.0, n_episodes=1000)  # error +0.5 → clipped to +0.2
    assert ctl.value == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    ctl.update(5.4, n_episodes=1000)  # error −0.1
    assert ctl.value == pytest.approx(0.1 * 1.02 * (1 - 0.1 * 0.1))
    restored = AdaptiveKLController(1.0, 1.0, 1)
    restored.load_state_dict(ctl.state_dict())
    assert restored.value == ctl.value and restored.target == 6.0


# ---------------------------------------------------------------------------------------------
# the training loop on tiny random models
# ---------------------------------------------------------------------------------------------


def test_first_minibatch_of_first_epoch_has_ratio_exactly_one(monkeypatch):
    calls = []
    original = ppo.policy_loss

    def recording(logp, old_logp, advantages, mask, cliprange):
        calls.append((logp.detach().clone(), old_logp.clone(), mask.clone()))
        return original(logp, old_logp, advantages, mask, cliprange)

    monkeypatch.setattr(ppo, "policy_loss", recording)
    # two mini-batches: a fresh forward on half the batch; one: the rollout's own forward is reused
    for temperature, mini_batches in [(0.7, 2), (1.0, 2), (0.7, 1)]:
        calls.clear()
        config = PPOConfig(**{**SMALL, "num_mini_batches": mini_batches})
        PPO(config).train(synthetic_context(budget=16, temperature=temperature))
        logp, old_logp, mask = calls[0]
        ratio = torch.exp(logp - old_logp)[mask]
        assert torch.equal(ratio, torch.ones_like(ratio))  # exactly: same forward, same logits / T
        _, stats = original(logp, old_logp, torch.randn(logp.shape), mask, 0.2)
        assert stats["clipfrac"] == 0 and stats["approx_kl"] == 0
        later_logp, later_old, later_mask = calls[-1]  # the policy has moved by then
        assert not torch.equal(later_logp[later_mask], later_old[later_mask])


def _capture_rewards(monkeypatch) -> list[torch.Tensor]:
    captured = []
    original = ppo.compute_gae

    def recording(rewards, values, mask, gamma, lam):
        captured.append((rewards.clone(), mask.clone()))
        return original(rewards, values, mask, gamma, lam)

    monkeypatch.setattr(ppo, "compute_gae", recording)
    return captured


def test_no_kl_reward_carries_no_kl_term_but_kl_is_still_logged(monkeypatch):
    captured = _capture_rewards(monkeypatch)
    logs = []
    assert PPONoKL.Config().kl_coef == 0 and PPO.Config().kl_coef == 0.05
    PPONoKL(PPONoKL.Config(**SMALL)).train(synthetic_context(budget=64, log=lambda step, m: logs.append(m)))
    for rewards, mask in captured:
        last = mask.sum(1) - 1
        off_last = rewards.clone()
        off_last[torch.arange(len(last)), last] = 0.0
        assert not off_last.any()  # only the score, at the last real token
    assert all(m["objective/kl_coef"] == 0 and m["objective/non_score_reward"] == 0 for m in logs)
    assert logs[-1]["objective/kl"] != 0 and logs[-1]["objective/kl_k3"] > 0  # the policy moved; KL measured

    captured.clear()
    PPO(PPOConfig(batch_size=16, kl_coef=0.5)).train(synthetic_context(budget=32))
    rewards, mask = captured[-1]
    assert rewards[:, 0].abs().sum() > 0  # with the KL penalty on, every token carries a reward


def _recording_sampler(ctx: TrainContext) -> list:
    """Replace ``ctx.sample`` by a wrapper that keeps every rollout it returns."""
    rollouts, original = [], ctx.sample

    def sample(*args, **kwargs):
        rollouts.append(original(*args, **kwargs))
        return rollouts[-1]

    ctx.sample = sample
    return rollouts


def test_advantages_are_whitened_over_real_tokens_and_nothing_after_eos_is_trained_on(monkeypatch):
    calls = []
    original_policy_loss, original_value_loss = ppo.policy_loss, ppo.value_loss

    def policy_loss(logp, old_logp, advantages, mask, cliprange):
        calls.append(("policy", advantages.detach().clone(), mask.clone()))
        return original_policy_loss(logp, old_logp, advantages, mask, cliprange)

    def value_loss(values, old_values, returns, mask, cliprange_value):
        calls.append(("value", returns.detach().clone(), mask.clone()))
        return original_value_loss(values, old_values, returns, mask, cliprange_value)

    monkeypatch.setattr(ppo, "policy_loss", policy_loss)
    monkeypatch.setattr(ppo, "value_loss", value_loss)
    ctx = synthetic_context(budget=128)
    rollouts = _recording_sampler(ctx)
    PPO(PPOConfig(**{**SMALL, "batch_size": 64, "num_mini_batches": 1, "num_ppo_epochs": 1})).train(ctx)
    assert len(rollouts) == 2 and len(calls) == 4  # one full-batch step per update, policy and value
    for rollout, (_, advantages, mask), (_, returns, value_mask) in zip(rollouts, calls[0::2], calls[1::2]):
        real = rollout.response_mask
        assert not real.all() and real.any(1).all()  # some responses ended early: there is padding to leave out
        assert torch.equal(mask, real) and torch.equal(value_mask, real)  # the losses see real tokens only
        assert not advantages[~real].any() and not returns[~real].any()
        assert advantages[real].mean().abs() < 1e-5 and advantages[real].std() == pytest.approx(1.0, abs=1e-3)


def test_the_missing_eos_penalty_lowers_the_score_of_unfinished_responses(monkeypatch):
    class Constant(FittedRewardModel):
        def score(self, rollout):
            return torch.full((len(rollout),), 0.5)

    seen = []
    original = ppo.per_token_rewards

    def per_token_rewards(scores, kl, mask, kl_coef):
        seen.append(scores.clone())
        return original(scores, kl, mask, kl_coef)

    monkeypatch.setattr(ppo, "per_token_rewards", per_token_rewards)
    for option, unfinished in [({"missing_eos_penalty": 1.0}, -0.5), ({"missing_eos_score": -1.0}, -1.0), ({}, 0.5)]:
        seen.clear()
        ctx = synthetic_context(budget=64, reward=Constant())
        rollouts = _recording_sampler(ctx)
        PPO(PPOConfig(**{**SMALL, "batch_size": 64, **option})).train(ctx)
        ended = rollouts[0].ended
        assert ended.any() and not ended.all()
        assert torch.equal(seen[0], torch.where(ended, 0.5, unfinished)), option


def test_nan_reward_stops_the_run_with_a_clear_reason():
    class NaNReward(FittedRewardModel):
        def score(self, rollout):
            scores = torch.zeros(len(rollout))
            scores[3] = float("nan")
            return scores

    with pytest.raises(NonFiniteError, match=r"update 1: the reward model's score is NaN or inf for 1 of 16"):
        PPO(PPOConfig(**SMALL)).train(synthetic_context(budget=64, reward=NaNReward()))


def test_budget_is_respected_exactly():
    logs = []
    ctx = synthetic_context(budget=100, log=lambda step, m: logs.append(step))
    PPO(PPOConfig(**SMALL)).train(ctx)
    assert logs == [1, 2, 3, 4, 5, 6]  # 6 × 16 = 96 ≤ 100 < 7 × 16
    assert ctx.budget.as_dict()["episodes_used"] == 96
    exact = synthetic_context(budget=48)
    PPO(PPOConfig(**SMALL)).train(exact)
    assert exact.budget.episodes_used == 48
    with pytest.raises(UsageError, match="--batch-size 16 is more than the budget of 8"):
        PPO(PPOConfig(**SMALL)).train(synthetic_context(budget=8))


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    def final_weights(seed: int) -> dict[str, torch.Tensor]:
        return PPO(PPOConfig(**SMALL)).train(synthetic_context(budget=32, seed=seed)).model.state_dict()

    a, b, c = final_weights(0), final_weights(0), final_weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_fixed_length_rollouts_keep_every_token():
    logs = []
    PPO(PPOConfig(**SMALL, stop_at_eos=False)).train(synthetic_context(budget=32, log=lambda s, m: logs.append(m)))
    assert all(m["val/response_length"] == 8 for m in logs)


def test_adaptive_kl_coefficient_moves_is_logged_and_returned():
    logs = []
    config = PPOConfig(**SMALL, adaptive_kl=True, kl_coef=0.1, target_kl=1e-3, kl_horizon=100)
    policy = PPO(config).train(synthetic_context(budget=64, log=lambda s, m: logs.append(m)))
    coefs = [m["objective/kl_coef"] for m in logs]
    step = 0.2 * 16 / 100  # the clipped proportional error (±20%) times n / horizon
    assert coefs[0] == 0.1 and coefs[1] == pytest.approx(0.1 * (1 - step))  # update 1: π = π_ref, KL = 0 < target
    assert coefs[2] == pytest.approx(coefs[1] * (1 + step))  # then KL ≫ target
    assert policy.kl_controller["value"] == pytest.approx(coefs[-1] * (1 + step))


# ---------------------------------------------------------------------------------------------
# config and registration
# ---------------------------------------------------------------------------------------------


def test_config_flags_and_validation_messages():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, PPOConfig)
    config = build_config(PPOConfig, parser.parse_args(["--no-kl", "--kl-estimator", "k3", "--missing-eos-penalty", "1"]))
    assert config.kl_coef == 0.0 and config.kl_estimator == "k3" and config.missing_eos_penalty == 1.0
    assert build_config(PPOConfig, parser.parse_args(["--kl-coef", "0.2"])).kl_coef == 0.2
    for kwargs, flag in [({"kl_coef": -1}, "--kl-coef"), ({"batch_size": 10, "num_mini_batches": 3}, "--batch-size"),
                         ({"lam": 2.0}, "--lam"), ({"adaptive_kl": True, "kl_coef": 0.0}, "--adaptive-kl"),
                         ({"missing_eos_penalty": 1.0, "missing_eos_score": -1.0}, "--missing-eos-penalty")]:  # fmt: skip
        with pytest.raises(ValueError, match=flag):
            PPOConfig(**kwargs)


def test_both_algorithms_register_from_the_same_code():
    registry = Registry("algorithm", PolicyOptimizer)
    ppo.harness_register_algorithms(registry)
    assert registry.names() == ["ppo", "ppo-nokl"]
    assert issubclass(registry.get("ppo-nokl").cls, PPO) and registry.get("ppo-nokl").cls.train is PPO.train


# ---------------------------------------------------------------------------------------------
# learning on the embedded benchmark
# ---------------------------------------------------------------------------------------------


def test_short_ppo_run_raises_the_proxy_score_on_held_out_prompts(tiny_prepared, tiny_proxy):
    ctx = make_train_context(tiny_prepared, tiny_proxy, budget=512, seed=0)
    policy = PPO(PPOConfig(batch_size=64, lr=5e-4)).train(ctx)  # 8 updates; measured gap ≈ 19 SE
    gap, stderr, message = proxy_gain(policy.model, ctx.ref_model, tiny_prepared, tiny_proxy)
    assert gap > 8 * stderr, message
