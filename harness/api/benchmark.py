"""What a benchmark implements (:class:`Benchmark`: data plus a gold reward) and what lifecycle
hooks see of a run (:class:`RunInfo`). Part of the contract (ground floor)."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from harness.api.plugin import Plugin
from harness.api.preferences import PreferenceItem


class Benchmark(Plugin):
    """Data plus a gold reward. The embedded pipeline turns it into a tokenizer, a pretrained
    base LM, π_sft, prompts and preference data, all cached.

    ``Config`` must subclass :class:`BenchmarkConfig`. Bump ``version`` when results would change.
    """

    version: ClassVar[str] = "1"
    #: Config fields that only the gold reward reads: changing one re-annotates preferences
    #: but does not rebuild the corpus, the base LM or π_sft.
    gold_settings: ClassVar[tuple[str, ...]] = ()
    #: The loaded policy's tokenizer when π_sft is loaded (``--policy-model``), else ``None``: set
    #: by the pipeline before the data methods are called, so that a benchmark renders prompts
    #: with the model's chat template (``harness.data.render_prompt``).
    chat_tokenizer: Any = None

    def data_fingerprint(self) -> str:
        """A digest of the local files the data methods read (part of the data stage's cache key,
        so that an edited file rebuilds; :func:`source_fingerprint` makes one). Default: nothing
        read from disk."""
        return ""

    def human_preferences(self, rng) -> list[PreferenceItem] | None:
        """Real human preferences (pairs or K-wise rankings, best → worst; K may vary), which
        reward models and offline optimizers then learn from instead of the simulated
        annotator's; held-out items measure the fits against the human labels. Default ``None``:
        the simulated annotator labels π_sft's samples by the gold reward."""
        return None

    @abc.abstractmethod
    def corpus(self, rng) -> list[str]:
        """Pretraining texts: whitespace-separated words."""

    @abc.abstractmethod
    def sft_pairs(self, rng) -> list[tuple[str, str]]:
        """(prompt, response) demonstrations for supervised fine-tuning."""

    @abc.abstractmethod
    def prompts(self, rng) -> tuple[list[str], list[str]]:
        """(train prompts, held-out eval prompts); no string in both."""

    @abc.abstractmethod
    def gold_reward(self, judge) -> Callable[[list[str], list[str], torch.Tensor], torch.Tensor] | None:
        """The gold reward r*: ``(prompts, responses, ended) -> scores``, or ``None`` when the
        benchmark has none (then the evaluators that need it are skipped, their metrics shown as
        "–", and preferences must be human). ``judge`` offers ``judge.judge_fluency(texts)`` (the
        judge LM's standardised log-likelihood) when the benchmark has a judge LM and
        ``judge.device``. Hidden from every optimizer and reward model; only the annotator and the
        evaluators call it."""


@dataclass
class RunInfo:
    """A run as lifecycle hooks see it. ``spec`` is its full :class:`harness.specs.RunSpec`
    as a JSON-ready dict (``spec_key``: its identity without the seed)."""

    run_id: str
    name: str
    benchmark: str
    algorithm: str
    reward_model: str
    seed: int
    algo_config: dict[str, Any]
    run_dir: Path
    spec: dict[str, Any] = field(default_factory=dict)
    spec_key: str = ""
