"""RRHF: its ranking loss, a KL regulariser that really pulls toward π_ref, and learning on the
embedded benchmark."""

from __future__ import annotations


import pytest
import torch
from harness_plugins.ppo import kl_penalty
from harness_plugins.rrhf import RRHF, RRHFConfig, exact_token_kl, kl_regulariser, rank_loss

from harness.lm import best_of_groups

from tests.conftest import make_train_context, proxy_gain


def test_rank_loss_penalises_only_misordered_pairs():
    scores = torch.tensor([[0.0, 1.0, 2.0]])
    ordered = torch.tensor([[-3.0, -2.0, -1.0]])  # log-probs agree with the RM: no loss
    assert rank_loss(ordered, scores).item() == 0.0
    swapped = torch.tensor([[-1.0, -2.0, -3.0]])  # every pair misordered
    assert rank_loss(swapped, scores).item() == pytest.approx(1.0 + 2.0 + 1.0)


def test_best_of_groups_indexes_rows_on_the_scores_device():
    scores = torch.tensor([[0.1, 0.9, 0.3], [2.0, -1.0, 0.0]])
    assert best_of_groups(scores).tolist() == [1, 3]
    # on another device (meta stands in for CUDA here): a CPU index tensor would not mix with it
    on_meta = best_of_groups(scores.to("meta"))
    assert on_meta.device.type == "meta" and on_meta.shape == (2,)


def _example():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 6, generator=generator, requires_grad=True)  # [B, T, V]
    ref_logits = torch.randn(3, 4, 6, generator=generator)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False], [True, True, True, True]])
    return logits, ref_logits, mask


def test_the_kl_term_has_no_gradient_without_kl_and_pulls_toward_the_reference_with_it():
    logits, ref_logits, mask = _example()
    off, _ = kl_regulariser(logits, ref_logits, mask, kl_coef=0.0)  # --no-kl
    assert not off.requires_grad or not torch.autograd.grad(off, logits, allow_unused=True)[0].any()

    on, kl = kl_regulariser(logits, ref_logits, mask, kl_coef=0.1)
    (grad,) = torch.autograd.grad(on, logits)
    assert grad.abs().sum() > 0 and not grad[~mask].any()  # nothing from padding
    with torch.no_grad():  # a small step against the gradient brings π closer to π_ref, at every real position
        before = exact_token_kl(logits, ref_logits, mask)
        after = exact_token_kl(logits - 1.0 * grad, ref_logits, mask)
    assert (after[mask] < before[mask]).all() and kl == before.sum(1).mean()
    assert torch.equal(exact_token_kl(ref_logits, ref_logits, mask), torch.zeros(3, 4))


def test_a_k1_term_on_sampled_tokens_would_not_regularise():
    """Why the exact KL: the gradient of k1 = log π(y) − log π_ref(y) at y ~ π is ∇ log π(y),
    whose mean over π is zero (computed here exactly, over every token y); the exact KL's is not."""
    logits = torch.randn(1, 1, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    ref_logits = torch.zeros(1, 1, 8)
    logp, ref_logp = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
    probs = logp.exp().detach()[0, 0]
    expected_k1_grad = sum(p * torch.autograd.grad(kl_penalty(logp[..., y], ref_logp[..., y], "k1").sum(), logits, retain_graph=True)[0]
                           for y, p in enumerate(probs))  # fmt: skip
    assert expected_k1_grad.abs().max() < 1e-6
    exact, _ = kl_regulariser(logits, ref_logits, torch.ones(1, 1, dtype=torch.bool), kl_coef=1.0)
    assert torch.autograd.grad(exact, logits)[0].abs().max() > 1e-2


def test_config_checks():
    with pytest.raises(ValueError, match="multiple of --k"):
        RRHFConfig(k=3, batch_size=64)
    with pytest.raises(ValueError, match="--k must be in 2..9"):
        RRHFConfig(k=1)
    assert RRHFConfig().kl_coef > 0


def test_rrhf_raises_the_proxy_score(tiny_prepared, tiny_proxy):
    ctx = make_train_context(tiny_prepared, tiny_proxy, budget=512, seed=0)
    policy = RRHF(RRHFConfig(k=4, batch_size=64, lr=3e-4)).train(ctx)
    assert ctx.budget.episodes_used == 512
    gap, stderr, message = proxy_gain(policy.model, ctx.ref_model, tiny_prepared, tiny_proxy)
    assert gap > 5 * stderr, message
