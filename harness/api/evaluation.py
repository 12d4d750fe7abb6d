"""What an evaluator implements (:class:`Evaluator`) and receives (:class:`EvalBatch`: the trained
policy's and π_sft's samples on held-out prompts). Part of the contract (ground floor)."""

from __future__ import annotations

import abc
from functools import cached_property
from typing import Callable, ClassVar

import torch

from harness.api.plugin import Plugin
from harness.api.policy import Policy
from harness.api.preferences import FittedRewardModel
from harness.errors import UsageError
from harness.rollout import Rollout


class EvalBatch:
    """Samples of the trained policy and of π_sft on the held-out prompts, with everything
    evaluators need computed once, on first use. ``gold`` is r*: evaluators may see it."""

    def __init__(
        self,
        policy: Policy,
        ref_policy: Policy,
        rollout: Rollout,
        ref_rollout: Rollout,
        gold: Callable[[Rollout], torch.Tensor] | None,
        proxy: FittedRewardModel,
        temperature: float,
    ):
        self.policy = policy
        self.ref_policy = ref_policy
        self.rollout = rollout
        self.ref_rollout = ref_rollout
        self._gold = gold
        self.proxy_model = proxy
        self.temperature = temperature

    @property
    def has_gold(self) -> bool:
        """Whether the benchmark has a gold reward (evaluators with ``needs_gold`` run only then)."""
        return self._gold is not None

    @cached_property
    def gold(self) -> torch.Tensor:
        if self._gold is None:
            raise UsageError("this benchmark has no gold reward r*: an evaluator that reads it must set needs_gold = True")
        return self._gold(self.rollout)

    @cached_property
    def ref_gold(self) -> torch.Tensor:
        if self._gold is None:
            raise UsageError("this benchmark has no gold reward r*: an evaluator that reads it must set needs_gold = True")
        return self._gold(self.ref_rollout)

    @cached_property
    def proxy(self) -> torch.Tensor:
        with torch.no_grad():
            return self.proxy_model.score(self.rollout)

    @cached_property
    def kl_per_sequence(self) -> torch.Tensor | None:
        """Monte-Carlo KL(π‖π_ref) per sequence: the sum of per-token log-ratios on π's own
        samples (exactly 0 when π = π_ref). ``None`` when π has no tractable log-probs."""
        if not self.policy.has_log_probs:
            return None
        with torch.no_grad():
            logp = self.policy.log_probs(self.rollout, self.temperature)
            ref_logp = self.ref_policy.log_probs(self.rollout, self.temperature)
        return ((logp - ref_logp) * self.rollout.response_mask).sum(1)


class Evaluator(Plugin):
    """Computes metrics on an :class:`EvalBatch`. Keys are namespaced (``eval/gold``)."""

    #: metric key → True when higher is better (the leaderboard prints ↑/↓).
    higher_is_better: ClassVar[dict[str, bool | None]] = {}
    #: whether it reads ``batch.gold``/``batch.ref_gold``: on a benchmark without a gold reward
    #: it is skipped and its metrics are stored as not measured (NaN, shown as "–").
    needs_gold: ClassVar[bool] = False

    @abc.abstractmethod
    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        """Namespaced metric values for ``batch``."""
