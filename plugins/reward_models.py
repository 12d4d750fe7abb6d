"""Built-in reward models: ``pairwise`` (Bradley–Terry on the annotator's pairs), ``ranking``
(K-wise rankings: InstructGPT's all-pairs loss or Plackett–Luce) and ``gold`` (r* itself, an
oracle upper bound that tables mark as such)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from harness import hookimpl
from harness.api import FittedRewardModel, RewardFitContext, RewardModel, Rollout
from harness.config import help_field
from harness.generation import sample_rollout
from harness.lm import lm_to_classifier
from harness.reward import (
    ClassifierReward,
    all_pairs_loss,
    annotation_cost,
    fit_on_rankings,
    held_out_metrics,
    plackett_luce_loss,
)


def sft_samples(art) -> Rollout:
    """π_sft's samples on the train prompts (4 each) that reward models are normalised on."""
    return sample_rollout(art.load_sft(), art.tokenizer, art.train_prompts * 4, art.generation,
                          torch.Generator().manual_seed(art.config.seed + 5))


@dataclass
class PairwiseConfig:
    epochs: float = help_field("epochs over the preference pairs", 3.0)
    lr: float = help_field("AdamW learning rate", 5e-4)
    batch_size: int = help_field("pairs per step", 64)
    normalise: bool = help_field("rescale scores to mean 0, std 1 on π_sft samples", True)

    def __post_init__(self):
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size <= 0:
            raise ValueError("--rm-epochs, --rm-lr and --rm-batch-size must be > 0")


class Pairwise(RewardModel):
    name = "pairwise"
    description = "Bradley–Terry reward model (GPT-2 classifier from π_sft) on annotated pairs"
    Config = PairwiseConfig
    preference_kind = "pairs"

    def _preferences(self, ctx: RewardFitContext) -> dict[str, list[dict]]:
        return ctx.artifacts.preferences(self.preference_kind)

    def _loss(self):
        return all_pairs_loss

    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        art, c = ctx.artifacts, self.config
        data = self._preferences(ctx)
        # InstructGPT initialises the RM from the SFT model; the score head is fresh.
        model = lm_to_classifier(art.load_sft(), seed=art.config.seed + 4).to(ctx.device)
        fit_on_rankings(model, art.tokenizer, data["train"], epochs=c.epochs, lr=c.lr, batch_size=c.batch_size,
                        seed=art.config.seed + 4, device=ctx.device, loss_fn=self._loss(), quiet=art.quiet)
        fitted = ClassifierReward(model)
        if c.normalise:
            fitted.normalise_on(sft_samples(art))
        fitted.metrics = held_out_metrics(fitted, art.tokenizer, data["eval"], ctx.device)
        fitted.metrics["rm/train_items"] = float(len(data["train"]))
        return fitted

    def save(self, fitted: FittedRewardModel, folder: Path) -> bool:
        fitted.save(folder)
        return True

    def load(self, ctx: RewardFitContext, folder: Path) -> FittedRewardModel:
        return ClassifierReward.load(folder, ctx.device)


@dataclass
class RankingConfig(PairwiseConfig):
    k: int = help_field("responses per ranking, 2..9 (0: the benchmark's ranking_k)", 0)
    loss: Literal["all-pairs", "plackett-luce"] = help_field(
        "all-pairs: InstructGPT's mean over the C(K,2) pairs of an item; plackett-luce: listwise", "all-pairs"
    )
    annotation_budget: int = help_field(
        "annotation budget in pair-equivalents, a K-ranking costing log2(K!) (0: the benchmark's preference_prompts)", 0
    )
    batch_size: int = help_field("rankings per step", 32)

    def __post_init__(self):
        super().__post_init__()
        if self.k and not 2 <= self.k <= 9:
            raise ValueError(f"--rm-k must be in 2..9, got {self.k}")
        if self.annotation_budget < 0:
            raise ValueError("--rm-annotation-budget must be >= 0")


class Ranking(Pairwise):
    name = "ranking"
    description = "K-wise ranking reward model (InstructGPT all-pairs or Plackett–Luce) at an equal annotation budget"
    Config = RankingConfig
    preference_kind = "rankings"

    def _preferences(self, ctx: RewardFitContext) -> dict[str, list[dict]]:
        art, c = ctx.artifacts, self.config
        k = c.k or art.config.ranking_k
        budget = c.annotation_budget or art.config.preference_prompts
        # Equal annotation budget: a K-ranking costs log2(K!) pairs (see annotation_cost).
        count = max(1, math.floor(budget / annotation_cost(k)))
        return art.preferences("rankings", k=k, count=count)

    def _loss(self):
        return plackett_luce_loss if self.config.loss == "plackett-luce" else all_pairs_loss


class GoldScores(FittedRewardModel):
    is_oracle = True

    def __init__(self, artifacts, gain: float = 1.0, bias: float = 0.0):
        self.artifacts, self.gain, self.bias = artifacts, gain, bias
        self.metrics = {}

    def score(self, rollout: Rollout) -> torch.Tensor:
        return self.gain * self.artifacts.gold(rollout).to(rollout.response_ids.device) + self.bias


@dataclass
class GoldConfig:
    normalise: bool = help_field(
        "rescale r* to mean 0, std 1 on π_sft samples, as the learned RMs are, so a KL coefficient weighs the same", True
    )


class Gold(RewardModel):
    name = "gold"
    description = "the gold reward r* itself: an oracle upper bound, not a fair comparison"
    Config = GoldConfig
    preference_kind = None

    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        art = ctx.artifacts
        if not self.config.normalise:
            return GoldScores(art)
        # The same samples the learned RMs are normalised on (an affine map keeps the optimum).
        gold = art.gold(sft_samples(art))
        std = gold.std().clamp_min(1e-6).item()
        return GoldScores(art, 1.0 / std, -gold.mean().item() / std)


@hookimpl
def harness_register_reward_models(registry):
    registry.add(Pairwise)
    registry.add(Ranking)
    registry.add(Gold)
