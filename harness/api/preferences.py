"""Preference data (annotated pairs and K-wise rankings, their annotation cost) and reward models:
what a reward-model plugin implements and receives. Part of the contract (ground floor)."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from harness.api.plugin import Plugin
from harness.api.toolkit import installed_toolkit
from harness.progress import bar
from harness.rollout import GenerationSettings, Rollout

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast


def annotation_cost(k: int) -> float:
    """Annotation cost of one K-ranking in pair-equivalents: log2(K!) — the bits in a full
    ranking, i.e. the binary comparisons an optimal sort needs on average. A pair costs 1; a
    4-ranking costs 4.58, not C(4,2) = 6 (its pairs are not independent labels).

    >>> annotation_cost(2), round(annotation_cost(4), 2)
    (1.0, 4.58)
    """
    return math.log2(math.factorial(k))


def preference_kind(k: int) -> str:
    """``pairs`` for K = 2, else ``K-rankings``."""
    return "pairs" if k == 2 else f"{k}-rankings"


@dataclass(frozen=True)
class PreferenceRequest:
    """What preference data a reward model trains on: ``count`` items of ``k`` responses each
    (k = 2: pairs), each ranked by the simulated annotator."""

    k: int
    count: int

    @property
    def kind(self) -> str:
        return preference_kind(self.k)

    @property
    def cost(self) -> float:
        """The annotation cost in pair-equivalents (see :func:`annotation_cost`)."""
        return self.count * annotation_cost(self.k)


@dataclass
class PreferenceItem:
    """One annotated item: K responses to one prompt and the annotator's ranking of them."""

    prompt: str
    responses: list[str]
    ended: list[bool]  # whether each response ended with EOS (a cut-off response is scored as such)
    ranking: list[int]  # response indices, best → worst


@dataclass
class PreferenceData:
    """The training preferences a reward model receives: texts and rankings, token ids on
    demand (:meth:`rollout`). Gold scores are not in it."""

    items: list[PreferenceItem]
    k: int
    tokenizer: PreTrainedTokenizerFast = field(repr=False)

    @property
    def kind(self) -> str:
        return preference_kind(self.k)

    def __len__(self) -> int:
        return len(self.items)

    def rollout(self, device: torch.device | str = "cpu") -> tuple[Rollout, torch.Tensor]:
        """Every response as one rollout (item i's responses at rows ``i·K … i·K + K − 1``) and
        the rankings as a ``[N, K]`` tensor of row offsets, best → worst."""
        rollout, _ = installed_toolkit().items_rollout(self.tokenizer, self.items, device)
        return rollout, torch.tensor([item.ranking for item in self.items], device=device)


class FittedRewardModel(abc.ABC):
    """A reward model ready to score. ``score`` returns one float per rollout row."""

    #: The sequence-classification model behind the scores, if there is one (PPO may
    #: initialise its critic from it).
    model: PreTrainedModel | None = None
    #: Whether this is the gold reward itself (an oracle upper bound; tables mark it).
    is_oracle: bool = False
    #: Held-out quality figures of the fit (``rm/accuracy``, ``rm/spearman``...), set by the harness.
    metrics: dict[str, float] = {}

    @abc.abstractmethod
    def score(self, rollout: Rollout) -> torch.Tensor:
        """One score per rollout row."""


class RewardFitContext:
    """What a reward model's ``fit`` receives: the annotated preferences, a fresh copy of the
    starting policy π_sft to initialise from, π_sft's own samples to normalise on, and the
    device. Nothing in it leads to the gold reward."""

    def __init__(
        self,
        preferences: PreferenceData,
        tokenizer: PreTrainedTokenizerFast,
        generation: GenerationSettings,
        device: torch.device,
        seed: int,
        initial_model: Callable[[], PreTrainedModel],
        normalisation_samples: Callable[[], Rollout],
        quiet: bool = False,
        own_tokenizer: bool = False,
    ):
        self.preferences, self.tokenizer, self.generation = preferences, tokenizer, generation
        self.device, self.seed, self.quiet = device, seed, quiet
        #: True when :meth:`initial_model` is not π_sft but the benchmark's ``reward_model_base``
        #: with a tokenizer of its own (:attr:`tokenizer`, which :attr:`preferences` use too): a
        #: fitted model must then re-tokenize the policy's rollouts (``ClassifierReward(tokenizer=…)``)
        self.own_tokenizer = own_tokenizer
        self._initial_model, self._normalisation_samples = initial_model, normalisation_samples

    def initial_model(self) -> PreTrainedModel:
        """A fresh copy of π_sft on :attr:`device` (InstructGPT initialises its RM from it), or of
        the benchmark's ``reward_model_base`` when it has one."""
        return self._initial_model()

    @cached_property
    def normalisation_rollout(self) -> Rollout:
        """π_sft's samples on the train prompts (4 each, a fixed seed): what a reward model
        normalises its scores on, so that every RM means the same scale to an optimizer."""
        return self._normalisation_samples()

    def progress(self, total: int, desc: str, unit: str = "step"):
        return bar(total=total, desc=desc, disable=self.quiet, unit=unit)


class RewardModel(Plugin):
    """A reward-model recipe. The harness asks it what preference data it wants
    (:meth:`preference_request`), has the simulated annotator label exactly that, calls
    :meth:`fit`, measures the fit on held-out preferences, and caches the result under a hash of
    the benchmark, this class's name and config: every algorithm on a benchmark optimizes the
    same r̂."""

    def resolved_config(self, annotation_budget: int, default_k: int) -> Any:
        """This model's config with every "the benchmark's default" value filled in from the
        benchmark's annotation budget and ranking size, so that one experiment has one run spec
        however it was spelt. Default: the config as it is."""
        return self.config

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest:
        """The preference data to fit on, within ``annotation_budget`` pair-equivalents
        (``default_k``: the benchmark's ranking size). Default: that many pairs."""
        return PreferenceRequest(k=2, count=annotation_budget)

    @abc.abstractmethod
    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        """Train on ``ctx.preferences`` and return the fitted model."""

    def save(self, fitted: FittedRewardModel, folder: Path) -> bool:
        """Save ``fitted`` into ``folder`` (the stage cache); return False when there is nothing
        to cache (then every run fits again)."""
        return False

    def load(self, folder: Path, device: torch.device) -> FittedRewardModel | None:
        """Rebuild a fitted model saved by :meth:`save` on ``device``; ``None``: fit again."""
        return None
