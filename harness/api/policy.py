"""Policies: a causal LM with a frozen decoding setting, what an optimizer returns. Part of the
contract (ground floor)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from harness.api.toolkit import installed_toolkit
from harness.rollout import GenerationSettings, Rollout

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast


class Policy:
    """A causal LM with a frozen decoding setting: what an optimizer returns.

    Subclasses may override :meth:`sample` (best-of-n does); they then set :attr:`analytic_kl`
    when their per-token log-probs are not available, and the inference cost of one returned
    response (:attr:`samples_per_response`, :attr:`rm_queries_per_response`).
    """

    #: KL(π‖π_ref) per sequence when known in closed form, else ``None`` (then it is estimated).
    analytic_kl: float | None = None
    #: responses sampled from the model, and proxy-RM queries made, per response returned
    samples_per_response: int = 1
    rm_queries_per_response: int = 0
    #: a policy that answers with the proxy's best of n samples names the policy it samples from:
    #: the runner then also traces the best-of-k curve (k = 1, 2, 4, …) from one set of its samples
    best_of_n_base: Policy | None = None

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
        self.model = model
        self.tokenizer = tokenizer

    @property
    def has_log_probs(self) -> bool:
        """Whether :meth:`log_probs` gives this policy's own sampling log-probs."""
        return type(self).sample is Policy.sample

    def sample(self, prompts: list[str], settings: GenerationSettings, generator: torch.Generator, desc: str | None = None) -> Rollout:
        """One response per prompt (a progress bar when ``desc`` is given), through
        :func:`harness.lm.sample_rollout`: a plain GPT-2 takes its fast sampler, which draws the
        same tokens from ``generator`` as transformers would."""
        return installed_toolkit().sample_rollout(self.model, self.tokenizer, prompts, settings, generator, desc=desc)

    def log_probs(self, rollout: Rollout, temperature: float) -> torch.Tensor:
        """Per-token log π(response token | prefix) at ``temperature``; 0 at padding."""
        return installed_toolkit().response_log_probs(self.model, rollout, temperature)

    def save(self, path: Path) -> None:
        """Save the weights as safetensors (``save_model`` de-duplicates tied embeddings)."""
        from safetensors.torch import save_model

        save_model(self.model, str(path))
