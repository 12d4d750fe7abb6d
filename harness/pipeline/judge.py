"""The judge: the only holder of the gold reward r*.

A :class:`Judge` wraps a benchmark's gold function and the judge LM behind its fluency term. The
simulated annotator, the evaluators and the gold oracle call it; the runner never hands it (or
anything that leads to it) to an optimizer or a reward-model plugin.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import torch

from harness.errors import UsageError
from harness.lm import load_causal_lm, mean_token_log_likelihood
from harness.rollout import Rollout


class Judge:
    def __init__(self, benchmark, tokenizer, judge_dir: Path | None, device: torch.device):
        self.benchmark_name = benchmark.name
        self.tokenizer = tokenizer
        self.judge_dir = judge_dir
        self.device = device
        self._gold_fn = benchmark.gold_reward(self)

    @cached_property
    def judge_lm(self):
        if self.judge_dir is None:
            raise ValueError(f"benchmark {self.benchmark_name!r} asks for judge fluency but has no judge LM (judge_layers=0)")
        return load_causal_lm(self.judge_dir, self.device)

    @cached_property
    def fluency_stats(self) -> dict[str, float]:
        self.judge_lm  # noqa: B018 -- the same clear error when there is no judge
        return json.loads((self.judge_dir / "fluency_stats.json").read_text())

    def judge_fluency(self, texts: list[str]) -> torch.Tensor:
        """Standardised mean per-token log-likelihood of ``texts`` under the judge LM."""
        ll = mean_token_log_likelihood(self.judge_lm, self.tokenizer, texts)
        return (ll - self.fluency_stats["mean"]) / self.fluency_stats["std"]

    @property
    def has_gold(self) -> bool:
        """Whether the benchmark has a gold reward (a real-data benchmark may have none)."""
        return self._gold_fn is not None

    def gold(self, rollout: Rollout) -> torch.Tensor:
        """r*(prompt, response) for each row, ``[B]`` float32 on the CPU."""
        if self._gold_fn is None:
            raise UsageError(f"benchmark {self.benchmark_name!r} has no gold reward r* (configure one, e.g. a gold reward model)")
        return torch.as_tensor(self._gold_fn(rollout.prompts, rollout.responses, rollout.ended.cpu()), dtype=torch.float32)

    __call__ = gold
