"""Reward-model losses and the K-wise ranking RM."""

from __future__ import annotations

import math

import pytest
import torch

from harness.api import PreferenceRequest, annotation_cost
from harness.lm import all_pairs_loss, plackett_luce_loss, rollout_from_texts
from harness.pipeline.annotator import AnnotatedItem
from harness.running.reward_fit import fit_proxy, held_out_metrics


def bradley_terry(scores, rankings):
    ordered = scores.gather(1, rankings)
    return -torch.nn.functional.logsigmoid(ordered[:, 0] - ordered[:, 1]).mean()


@pytest.mark.parametrize("loss", [all_pairs_loss, plackett_luce_loss])
def test_k2_equals_bradley_terry(loss):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(16, 2, generator=g)
    rankings = torch.stack([torch.randperm(2, generator=g) for _ in range(16)])
    assert loss(scores, rankings).item() == pytest.approx(bradley_terry(scores, rankings).item(), rel=1e-6)


def test_all_pairs_averages_the_pairs_of_each_item():
    scores = torch.tensor([[3.0, 1.0, 2.0]])
    rankings = torch.tensor([[0, 2, 1]])  # best → worst: 3.0, 2.0, 1.0
    pairs = [(3.0, 2.0), (3.0, 1.0), (2.0, 1.0)]
    expected = sum(-math.log(1 / (1 + math.exp(-(a - b)))) for a, b in pairs) / 3
    assert all_pairs_loss(scores, rankings).item() == pytest.approx(expected, rel=1e-6)


def test_plackett_luce_by_hand():
    scores = torch.tensor([[0.5, -1.0, 2.0]])
    rankings = torch.tensor([[2, 0, 1]])
    s = [2.0, 0.5, -1.0]
    first = s[0] - math.log(sum(math.exp(x) for x in s))
    second = s[1] - math.log(math.exp(s[1]) + math.exp(s[2]))
    assert plackett_luce_loss(scores, rankings).item() == pytest.approx(-(first + second) / 2, rel=1e-6)


def test_annotation_cost_is_log2_k_factorial():
    assert annotation_cost(2) == 1.0
    assert annotation_cost(4) == pytest.approx(math.log2(24))
    assert annotation_cost(4) < math.comb(4, 2)


def test_ranking_rm_at_equal_annotation_budget(tiny_prepared):
    from harness_plugins.reward_models import Ranking, RankingConfig

    fit = fit_proxy(Ranking(RankingConfig(k=4, epochs=6)), tiny_prepared, torch.device("cpu"))
    fitted, budget = fit.fitted, tiny_prepared.config.preference_prompts
    assert fit.request == PreferenceRequest(k=4, count=math.floor(budget / math.log2(24)))
    assert fit.request.cost <= budget < fit.request.cost + annotation_cost(4)  # one more ranking would not fit
    assert fitted.metrics["rm/train_items"] == fit.request.count
    assert fitted.metrics["rm/gold_accuracy"] > 0.6
    assert fitted.metrics["rm/spearman"] > 0.3
    scores = fitted.score(tiny_prepared_rollout(tiny_prepared))
    assert scores.shape == (8,) and torch.isfinite(scores).all()


def tiny_prepared_rollout(prepared):
    return rollout_from_texts(prepared.tokenizer, prepared.eval_prompts[:8], ["was good"] * 8)


class LengthReward:
    """A stand-in RM that prefers longer responses (FittedRewardModel's interface)."""

    is_oracle = False

    def score(self, rollout):
        return rollout.lengths.float()


def test_held_out_metrics_leave_out_pairs_without_a_preference(tiny_prepared):
    items = [
        # identical responses: no preference to get right, left out of both accuracies
        AnnotatedItem("the movie was", ["good", "good"], [True, True], [1, 0], [0.4, 0.4]),
        # the annotator and gold prefer the longer one: the RM agrees
        AnnotatedItem("the movie was", ["very good", "good"], [True, True], [0, 1], [0.5, 0.4]),
        # the annotator picked the shorter one (noise) but gold prefers the longer one
        AnnotatedItem("the plot was", ["dull", "really great"], [True, True], [0, 1], [-0.3, 0.6]),
    ]
    metrics = held_out_metrics(LengthReward(), tiny_prepared.tokenizer, items, "cpu")
    assert metrics["rm/accuracy"] == 0.5  # 1 of the 2 labelled pairs
    assert metrics["rm/gold_accuracy"] == 1.0  # both pairs with a gold difference
