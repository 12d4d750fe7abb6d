"""What a policy optimizer implements (:class:`PolicyOptimizer`) and receives (:class:`TrainContext`).
Part of the contract (ground floor)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from harness.api.budget import Budget, already_charged
from harness.api.plugin import Plugin
from harness.api.policy import Policy
from harness.api.preferences import FittedRewardModel, PreferenceData, PreferenceRequest
from harness.api.toolkit import LMToolkit, installed_toolkit
from harness.progress import bar
from harness.rollout import GenerationSettings, Rollout

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast


@dataclass
class TrainContext:
    """What a policy optimizer's ``train`` receives. The gold reward is not in it.

    The models are on :attr:`device` and in eval mode (dropout off, so that sampling and
    training see the same function); gradients flow through ``model`` only. (A *model* is a
    network; a :class:`Policy` is what ``train`` returns: a model with its decoding.)
    """

    model: PreTrainedModel  # the policy being trained: a fresh, trainable copy of π_sft
    ref_model: PreTrainedModel  # π_ref = π_sft, frozen
    tokenizer: PreTrainedTokenizerFast
    reward_model: FittedRewardModel  # the proxy r̂ (every score() call is counted as RM queries)
    train_prompts: list[str]
    generation: GenerationSettings  # the benchmark's sampler: max_new_tokens, temperature
    budget: Budget
    seed: int
    device: torch.device
    run_dir: Path
    log: Callable[[int, dict[str, float]], None]  # log(step, {"loss/policy": ...}): stored curves
    quiet: bool = False
    #: the annotated preferences the optimizer asked for (:meth:`PolicyOptimizer.preference_request`;
    #: offline methods such as DPO learn from them), else ``None``
    preferences: PreferenceData | None = None
    #: seeded with :attr:`seed`: the default source of randomness for sampling and shuffling
    generator: torch.Generator = field(default=None)  # type: ignore[assignment]

    #: the LM operations :meth:`sample`, :meth:`log_probs` and :meth:`nll` call (default: the one
    #: :mod:`harness.lm` installs): the contract names their shape only
    toolkit: LMToolkit = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self):
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(self.seed)
        if self.toolkit is None:
            self.toolkit = installed_toolkit()

    def sample(self, prompts: list[str], k: int = 1, *, model=None, stop_at_eos: bool = True) -> Rollout:
        """``k`` responses per prompt from ``model`` (default: :attr:`model`, the policy), prompt i's at rows
        ``i·k … i·k + k − 1``, charged to the budget before sampling (``k · len(prompts)``
        episodes; :class:`BudgetExceeded` when they do not fit). Uses :attr:`generator`.
        ``stop_at_eos=False`` samples exactly ``max_new_tokens`` tokens with EOS as an ordinary token."""
        repeated = [p for p in prompts for _ in range(k)]
        self.budget.spend(len(repeated))
        with already_charged():  # the toolkit's sampler would charge a metered run again
            return self.toolkit.sample_batch(model if model is not None else self.model, self.tokenizer, repeated,
                                             self.generation, self.generator, stop_at_eos=stop_at_eos)  # fmt: skip

    def score(self, rollout: Rollout) -> torch.Tensor:
        """The proxy reward of each row, ``[B]`` float, on the rollout's device (no gradient)."""
        with torch.no_grad():
            return self.reward_model.score(rollout).float().to(rollout.device)

    def log_probs(self, model, rollout: Rollout) -> torch.Tensor:
        """Per-token log π(y_t | x, y_<t) of ``model`` at the sampling temperature, ``[B, Tr]``,
        0 at padding; differentiable (wrap in ``torch.no_grad()`` for π_ref)."""
        return self.toolkit.model_log_probs(model, rollout, self.generation.temperature)

    def nll(self, model, rollout: Rollout) -> torch.Tensor:
        """A supervised step's loss: the mean over rows of the per-token negative log-likelihood
        of each response (EOS included) under ``model`` at temperature 1; differentiable."""
        return self.toolkit.response_nll(model, rollout)

    def progress(self, total: int, desc: str):
        """A progress bar over ``total`` units that honours ``--quiet``."""
        return bar(total=total, desc=desc, disable=self.quiet)


class PolicyOptimizer(Plugin):
    """An RLHF algorithm. One run: ``train(ctx)`` on the train prompts within ``ctx.budget``
    episodes, returning the final policy."""

    #: Whether :meth:`train` runs on every rank of ``harness run --num-processes N`` (or a
    #: ``torchrun`` / ``accelerate launch``): each rank calls ``train`` with the same context; the
    #: optimizer shards its batches and averages gradients and logged scalars through
    #: :mod:`harness.api.parallel <harness.parallel>` (or through a library that does, as TRL's
    #: trainers do), and counts the budget globally. Rank 0 evaluates and stores; an optimizer left
    #: ``False`` is refused under ``--num-processes`` before anything runs.
    data_parallel: bool = False

    def check_data_parallel(self, n: int) -> None:
        """Raise :class:`UsageError` if this config cannot train on ``n`` processes (a batch that
        does not split evenly). The CLI calls it for every spec before anything runs."""

    @classmethod
    def row_name(cls, config: Any) -> str:
        """The name runs with ``config`` are stored and tabled under: :attr:`name` unless a
        config value makes the run another registered algorithm (``ppo`` with β = 0 is
        ``ppo-nokl``), so that one experiment has one name however it was spelt."""
        return cls.name

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest | None:
        """The preference data this algorithm learns from directly (offline methods such as DPO),
        within ``annotation_budget`` pair-equivalents — the same budget, annotator and prompts a
        reward model gets; it reaches :meth:`train` as ``ctx.preferences`` and is charged as
        annotations. Default ``None``: the algorithm learns from the proxy reward model only."""
        return None

    def episodes_per_update(self) -> int:
        """The episodes one update spends (its rollout batch). A budget smaller than that buys no
        update: the harness refuses it before any work starts. Default 0: no minimum (offline
        learners, baselines)."""
        return 0

    @abc.abstractmethod
    def train(self, ctx: TrainContext) -> Policy:
        """Optimize ``ctx.model`` within ``ctx.budget`` and return the final policy."""
