"""The typed examples every adapter yields, and the report that comes with them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Union

#: a chat message: ``{"role": "system" | "user" | "assistant", "content": str}``, plus, for an
#: Alpaca/Dolly prompt with an input, ``"instruction"`` and ``"input"`` (see :mod:`harness.data.render`)
Message = dict
Messages = list[Message]

#: what a loader can be asked for; ``prompts`` is derived from a format's first kind
SFT, PAIRS, RANKINGS, PROMPTS = "sft", "pairs", "rankings", "prompts"
KINDS = (SFT, PAIRS, RANKINGS, PROMPTS)


@dataclass
class SFTExample:
    """A demonstration: the conversation so far and the assistant reply to imitate."""

    prompt: Messages
    response: str
    #: the source's task category (Dolly's ``category``), for per-category evaluation
    category: str | None
    #: record number in the source, 0-based (for nested OASST trees: the tree's record)
    index: int


@dataclass
class PreferencePair:
    """Two replies to one prompt, ``chosen`` preferred over ``rejected``."""

    prompt: Messages
    chosen: str
    rejected: str
    #: record number in the source, 0-based
    index: int


@dataclass
class Ranking:
    """K ≥ 2 replies to one prompt and a strict order over them."""

    prompt: Messages
    responses: list[str]
    #: indices into ``responses``, best → worst, each once
    ranking: list[int]
    #: record number in the source, 0-based (flat OASST: the prompt message's record)
    index: int

    @property
    def k(self) -> int:
        return len(self.responses)


Example = Union[SFTExample, PreferencePair, Ranking, Messages]


@dataclass
class LoadReport:
    """What a load read, kept and skipped, so that no record disappears unaccounted for."""

    source: str
    format: str
    kind: str
    #: records read from the source (rows; for nested OASST: trees)
    records: int = 0
    #: examples returned
    kept: int = 0
    #: reason → how many records (or, for OASST, messages and reply groups) were left out for it
    skipped: Counter[str] = field(default_factory=Counter)
    #: rankings only: K → how many rankings of K replies
    per_k: Counter[int] = field(default_factory=Counter)
    #: SFT only: distinct conversations the examples come from (OASST threads; else one per example)
    conversations: int | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def skipped_summary(self) -> str:
        """``3 × message deleted, 1 × reply without a rank`` (most frequent first), or ``none``."""
        return ", ".join(f"{n} × {reason}" for reason, n in self.skipped.most_common()) or "none"


@dataclass(frozen=True)
class LoadOptions:
    """Filters that only some formats use (today: OASST)."""

    #: keep messages in this language only (OASST ``lang``); ``None`` keeps all
    lang: str | None = "en"
    #: leave out messages marked ``synthetic`` (written by a model)
    drop_synthetic: bool = True
