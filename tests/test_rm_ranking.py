"""The rm-ranking optimizer: rank rewards, RRHF's loss, and learning on the embedded benchmark."""

from __future__ import annotations


import pytest
import torch
from harness_plugins.ppo import PPO
from harness_plugins.rm_ranking import RMRanking, RMRankingConfig, rank_rewards

from tests.conftest import make_train_context, proxy_gain


def test_rank_rewards_are_centred_bounded_and_equivariant():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(32, 5, generator=g)
    rewards = rank_rewards(scores)
    assert rewards.min() >= -1 and rewards.max() <= 1
    torch.testing.assert_close(rewards.sum(1), torch.zeros(32), atol=1e-6, rtol=0)
    assert torch.equal(rewards.argsort(1), scores.argsort(1))  # the best response gets the top reward
    perm = torch.randperm(5, generator=g)
    torch.testing.assert_close(rank_rewards(scores[:, perm]), rewards[:, perm])
    assert rank_rewards(torch.tensor([[0.1, 5.0, -3.0]])).tolist() == [[0.0, 1.0, -1.0]]


def test_ties_get_equal_rewards():
    rewards = rank_rewards(torch.tensor([[2.0, 1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    assert rewards[0, 0] == rewards[0, 2] and rewards[0, 0] > rewards[0, 1] > rewards[0, 3]
    assert rewards[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_config_checks_k_and_batch():
    with pytest.raises(ValueError, match="multiple of --k"):
        RMRankingConfig(k=3, batch_size=64)
    with pytest.raises(ValueError, match="--k must be in 2..9"):
        RMRankingConfig(k=10, batch_size=60)


def test_groups_are_consecutive_and_scores_become_ranks(tiny_prepared, tiny_proxy):
    algo = RMRanking(RMRankingConfig(k=4, batch_size=16))
    from harness_plugins.ppo import PromptSampler

    prompts = algo.rollout_prompts(PromptSampler(tiny_prepared.train_prompts, torch.Generator().manual_seed(0)), 16)
    assert len(prompts) == 16 and all(len(set(prompts[i : i + 4])) == 1 for i in range(0, 16, 4))
    raw = torch.tensor([0.3, -1.0, 2.0, 0.0] * 4)
    torch.testing.assert_close(algo.episode_scores(None, None, raw), torch.tensor([1 / 3, -1.0, 1.0, -1 / 3] * 4))
    assert issubclass(RMRanking, PPO) and RMRanking.train is PPO.train  # PPO's loop, not a copy


def test_rm_ranking_raises_the_proxy_score(tiny_prepared, tiny_proxy):
    ctx = make_train_context(tiny_prepared, tiny_proxy, budget=512, seed=0)
    policy = RMRanking(RMRankingConfig(k=4, batch_size=64, lr=5e-4)).train(ctx)
    assert ctx.budget.episodes_used == 512
    gap, stderr, message = proxy_gain(policy.model, ctx.ref_model, tiny_prepared, tiny_proxy)
    assert gap > 5 * stderr, message
