"""The embedded pipeline, stage by stage, each cached by a hash of its inputs:

    data (corpus, SFT pairs, prompts, tokenizer) ─► base LM (pretraining) ─► π_sft (= π_ref)
                                                 └► judge LM (for gold fluency, if any)

:func:`prepare` builds (or loads) every stage and returns a :class:`PreparedBenchmark`: what runs
use. Every algorithm on a benchmark starts from the same π_sft; the benchmark's own ``seed`` (not
the run's) fixes all of it. Preference data is drawn on demand by :mod:`harness.pipeline.annotator`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers import GPT2LMHeadModel

from harness.config import config_hash
from harness.lm import (
    LMShape,
    TrainSettings,
    load_causal_lm,
    load_tokenizer,
    mean_token_log_likelihood,
    new_lm,
    train_causal_lm,
    train_tokenizer,
)
from harness.pipeline.cache import StageCache
from harness.pipeline.config import BenchmarkConfig, judge_heads
from harness.pipeline.judge import Judge
from harness.rollout import GenerationSettings

# Bump when a stage's code changes what it produces.
STAGE_CODE_VERSION = {"data": 1, "base_lm": 1, "sft": 1, "judge": 1, "preferences": 1}


def pick_settings(config, names: list[str]) -> dict[str, Any]:
    """``{name: value}`` of the named config fields (a stage's inputs)."""
    return {n: getattr(config, n) for n in names}


def stage_key(benchmark, stage: str, *parts) -> str:
    """A stage's cache key: the benchmark's name and version, the stage's code version, its inputs."""
    return config_hash(benchmark.name, benchmark.version, stage, STAGE_CODE_VERSION[stage], *parts)


def specific_settings(config: BenchmarkConfig) -> dict[str, Any]:
    """The fields a benchmark adds to :class:`BenchmarkConfig` (its data and gold settings)."""
    base = {f.name for f in fields(BenchmarkConfig)}
    return {k: v for k, v in asdict(config).items() if k not in base}


@dataclass
class PreparedBenchmark:
    """A built benchmark: tokenizer, prompt splits, π_sft on disk, and the judge (r*).

    Runs read π_sft through :meth:`load_sft`; only the annotator and the evaluators touch
    :attr:`judge`."""

    benchmark: Any
    cache: StageCache
    device: torch.device
    tokenizer: Any
    train_prompts: list[str]
    eval_prompts: list[str]
    sft_dir: Path
    judge_dir: Path | None
    keys: dict[str, str]  # stage → cache key of the stages every run shares
    quiet: bool = False

    @property
    def config(self) -> BenchmarkConfig:
        return self.benchmark.config

    @property
    def generation(self) -> GenerationSettings:
        return self.config.generation

    def load_sft(self) -> GPT2LMHeadModel:
        """A fresh copy of π_sft on the run's device, in eval mode."""
        return load_causal_lm(self.sft_dir, self.device)

    @cached_property
    def judge(self) -> Judge:
        return Judge(self.benchmark, self.tokenizer, self.judge_dir, self.device)



class _Builder:
    """Builds the stages of one benchmark into the cache."""

    def __init__(self, benchmark, cache: StageCache, device: torch.device, quiet: bool):
        self.benchmark, self.config, self.cache, self.device, self.quiet = benchmark, benchmark.config, cache, device, quiet
        self.keys: dict[str, str] = {}

    def _key(self, stage: str, *parts) -> str:
        self.keys[stage] = stage_key(self.benchmark, stage, *parts)
        return self.keys[stage]

    def build(self) -> PreparedBenchmark:
        c, b = self.config, self.benchmark
        data_only = {k: v for k, v in specific_settings(c).items() if k not in b.gold_settings}
        data_cfg = {**pick_settings(c, ["seed", "corpus_size", "sft_size"]), **data_only}
        self.data_dir = self.cache.get_or_build("data", self._key("data", data_cfg), self._build_data, data_cfg)
        self.tokenizer = load_tokenizer(self.data_dir / "tokenizer")
        prompts = json.loads((self.data_dir / "prompts.json").read_text())

        base_cfg = pick_settings(c, ["policy_layers", "policy_width", "policy_heads", "max_positions", "pretrain_epochs", "pretrain_lr"])
        base_dir = self.cache.get_or_build("base_lm", self._key("base_lm", self.keys["data"], base_cfg), self._build_base, base_cfg)
        sft_cfg = pick_settings(c, ["sft_epochs", "sft_lr"])
        sft_dir = self.cache.get_or_build(
            "sft", self._key("sft", self.keys["base_lm"], sft_cfg), lambda out: self._build_sft(base_dir, out), sft_cfg
        )
        judge_dir = None
        if c.judge_layers > 0:
            judge_cfg = pick_settings(c, ["judge_layers", "judge_width", "judge_epochs", "max_positions"])
            judge_dir = self.cache.get_or_build("judge", self._key("judge", self.keys["data"], judge_cfg), self._build_judge, judge_cfg)
        return PreparedBenchmark(
            benchmark=b, cache=self.cache, device=self.device, tokenizer=self.tokenizer, train_prompts=prompts["train"],
            eval_prompts=prompts["eval"], sft_dir=sft_dir, judge_dir=judge_dir, keys=dict(self.keys), quiet=self.quiet,
        )  # fmt: skip

    def _texts(self, name: str) -> Any:
        return json.loads((self.data_dir / f"{name}.json").read_text())

    def _build_data(self, out: Path) -> None:
        b = self.benchmark
        corpus = b.corpus(random.Random(self.config.seed))
        sft = b.sft_pairs(random.Random(self.config.seed + 1))
        train, held_out = b.prompts(random.Random(self.config.seed + 2))
        overlap = set(train) & set(held_out)
        if overlap:
            raise ValueError(f"benchmark {b.name}: {len(overlap)} prompts are in both splits, e.g. {sorted(overlap)[0]!r}")
        tokenizer = train_tokenizer(corpus + [f"{p} {r}" for p, r in sft] + train + held_out)
        tokenizer.save_pretrained(str(out / "tokenizer"))
        (out / "corpus.json").write_text(json.dumps(corpus))
        (out / "sft.json").write_text(json.dumps(sft))
        (out / "prompts.json").write_text(json.dumps({"train": train, "eval": held_out}))

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _train_lm(self, shape: LMShape, examples, epochs: float, lr: float, seed: int, desc: str, model=None) -> GPT2LMHeadModel:
        model = model if model is not None else new_lm(self.tokenizer, shape, seed)
        model.to(self.device)
        train_causal_lm(model, examples, TrainSettings(epochs=epochs, lr=lr), seed=seed, desc=desc, quiet=self.quiet)
        return model.cpu()

    def _policy_shape(self) -> LMShape:
        c = self.config
        return LMShape(c.policy_layers, c.policy_width, c.policy_heads, c.max_positions)

    def _build_base(self, out: Path) -> None:
        eos = self.tokenizer.eos_token_id
        examples = [([], self._encode(t) + [eos]) for t in self._texts("corpus")]
        c = self.config
        model = self._train_lm(self._policy_shape(), examples, c.pretrain_epochs, c.pretrain_lr, c.seed, "pretrain base LM")
        model.save_pretrained(str(out))

    def _build_sft(self, base_dir: Path, out: Path) -> None:
        eos = self.tokenizer.eos_token_id
        examples = [(self._encode(p), self._encode(r) + [eos]) for p, r in self._texts("sft")]
        c = self.config
        model = self._train_lm(self._policy_shape(), examples, c.sft_epochs, c.sft_lr, c.seed + 1, "SFT π_sft",
                               model=GPT2LMHeadModel.from_pretrained(str(base_dir)))  # fmt: skip
        model.save_pretrained(str(out))

    def _build_judge(self, out: Path) -> None:
        c = self.config
        eos = self.tokenizer.eos_token_id
        corpus = self._texts("corpus")
        held_out = max(200, len(corpus) // 20)
        examples = [([], self._encode(t) + [eos]) for t in corpus[held_out:]]
        shape = LMShape(c.judge_layers, c.judge_width, judge_heads(c.judge_width), c.max_positions)
        model = self._train_lm(shape, examples, c.judge_epochs, 1e-3, c.seed + 2, "judge LM")
        model.save_pretrained(str(out))
        # Fluency is standardised on held-out corpus text: z = (ll − mean) / std.
        ll = mean_token_log_likelihood(model, self.tokenizer, corpus[:held_out])
        (out / "fluency_stats.json").write_text(json.dumps({"mean": ll.mean().item(), "std": ll.std().item()}))


def prepare(benchmark, cache: StageCache | None = None, device: torch.device | str = "cpu", quiet: bool = False) -> PreparedBenchmark:
    """Build (or load from the cache) every stage ``benchmark`` needs."""
    return _Builder(benchmark, cache or StageCache(), torch.device(device), quiet).build()
