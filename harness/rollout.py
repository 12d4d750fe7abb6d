"""The two value types every part of the harness passes around: :class:`Rollout` (prompts and
sampled responses as token ids) and :class:`GenerationSettings` (how responses are sampled).

A bottom module: it imports nothing of the harness, so the contract (:mod:`harness.api`), the LM
toolkit (:mod:`harness.lm`) and the pipeline can all use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


@dataclass
class GenerationSettings:
    """How responses are sampled: pure temperature sampling (top-k 0, top-p 1), so that the
    log-probs recomputed with logits / T are those of the sampling distribution."""

    max_new_tokens: int = 16
    temperature: float = 1.0


@dataclass
class Rollout:
    """Prompts and their sampled responses, as token ids.

    ``query_ids`` is left-padded (so generation appends at one column); ``response_ids`` is
    right-padded: everything after a response's first EOS is ``pad_id``, and the EOS itself is
    kept. ``pad_id`` lies outside the models' vocabulary, so it can never be sampled.
    """

    prompts: list[str]
    query_ids: torch.Tensor  # [B, Tq] long, left-padded
    query_mask: torch.Tensor  # [B, Tq] bool
    response_ids: torch.Tensor  # [B, Tr] long, right-padded
    tokenizer: PreTrainedTokenizerFast = field(repr=False)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def device(self) -> torch.device:
        return self.response_ids.device

    @cached_property
    def response_mask(self) -> torch.Tensor:
        """True at real response tokens, the first EOS included."""
        return self.response_ids != self.pad_id

    @cached_property
    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(1)

    @cached_property
    def ended(self) -> torch.Tensor:
        """True where the response contains an EOS (it stopped by itself)."""
        return ((self.response_ids == self.eos_id) & self.response_mask).any(1)

    @cached_property
    def responses(self) -> list[str]:
        """The responses as text, without EOS and padding."""
        out = []
        for row, mask in zip(self.response_ids.tolist(), self.response_mask.tolist()):
            ids = [t for t, m in zip(row, mask) if m and t != self.eos_id]
            out.append(self.tokenizer.decode(ids))
        return out

    def __len__(self) -> int:
        return len(self.prompts)

    def select(self, index: torch.Tensor | list[int]) -> Rollout:
        """The rows at ``index`` (a tensor on any device, or a list)."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        return Rollout(
            prompts=[self.prompts[i] for i in index.tolist()],
            query_ids=self.query_ids[index.to(self.query_ids.device)],
            query_mask=self.query_mask[index.to(self.query_mask.device)],
            response_ids=self.response_ids[index.to(self.response_ids.device)],
            tokenizer=self.tokenizer,
        )
