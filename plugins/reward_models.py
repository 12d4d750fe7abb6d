"""Built-in reward models: ``pairwise`` (Bradley–Terry on the annotator's pairs) and ``ranking``
(K-wise rankings: InstructGPT's all-pairs loss or Plackett–Luce, at an equal annotation budget).
They see preference data only; the gold oracle (``--reward-model gold``) is the harness's own."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.api import (
    FittedRewardModel,
    PreferenceRequest,
    RewardFitContext,
    RewardModel,
    annotation_cost,
    help_field,
    hookimpl,
)
from harness.lm import ClassifierReward, all_pairs_loss, fit_on_rankings, lm_to_classifier, plackett_luce_loss


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

    def _loss(self):
        return all_pairs_loss

    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        c = self.config
        # InstructGPT initialises the RM from the SFT model; the score head is fresh.
        model = lm_to_classifier(ctx.initial_model(), seed=ctx.seed).to(ctx.device)
        fit_on_rankings(model, ctx.preferences, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, seed=ctx.seed,
                        device=ctx.device, loss_fn=self._loss(), quiet=ctx.quiet)  # fmt: skip
        # The RM reads its own tokens when its base is not π_sft (reward_model_base).
        fitted = ClassifierReward(model, tokenizer=ctx.tokenizer if ctx.own_tokenizer else None)
        if c.normalise:
            fitted.normalise_on(ctx.normalisation_rollout)
        return fitted

    def save(self, fitted: FittedRewardModel, folder: Path) -> bool:
        fitted.save(folder)
        return True

    def load(self, folder: Path, device) -> FittedRewardModel:
        return ClassifierReward.load(folder, device)


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

    def resolved_config(self, annotation_budget: int, default_k: int) -> RankingConfig:
        c = self.config
        return dataclasses.replace(c, k=c.k or default_k, annotation_budget=c.annotation_budget or annotation_budget)

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest:
        c = self.resolved_config(annotation_budget, default_k)
        # Equal annotation budget: a K-ranking costs log2(K!) pairs (see annotation_cost).
        return PreferenceRequest(k=c.k, count=max(1, math.floor(c.annotation_budget / annotation_cost(c.k))))

    def _loss(self):
        return plackett_luce_loss if self.config.loss == "plackett-luce" else all_pairs_loss


@hookimpl
def harness_register_reward_models(registry):
    registry.add(Pairwise)
    registry.add(Ranking)
