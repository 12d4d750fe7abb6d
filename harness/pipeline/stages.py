"""The benchmark pipeline, stage by stage, each cached by a hash of its inputs:

    data (corpus, SFT pairs, prompts, human preferences, tokenizer) ─► base LM (pretraining) ─► π_sft (= π_ref)
                                                                    └► judge LM (for gold fluency, if any)

With ``policy_model`` set (``--policy-model``), π_sft starts from that model instead (a hub id or
a local ``save_pretrained`` folder, its tokenizer and chat template included): no tokenizer is
trained and no base LM pretrained; the SFT stage fine-tunes it on the benchmark's demonstrations
with TRL's ``SFTTrainer`` (``sft_trainer=lean``: the harness's own loop, which built models use;
``sft_epochs=0`` keeps it as it is).

:func:`prepare` builds (or loads) every stage and returns a :class:`PreparedBenchmark`: what runs
use. Every algorithm on a benchmark starts from the same π_sft; the benchmark's own ``seed`` (not
the run's) fixes all of it. Preference data is drawn on demand by :mod:`harness.pipeline.annotator`.
"""

from __future__ import annotations

import json
import random
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers import GPT2LMHeadModel

from harness.benchmark_config import BenchmarkConfig, judge_heads
from harness.config import config_hash
from harness.errors import UsageError
from harness.fingerprint import source_fingerprint
from harness.lm import (
    LMShape,
    TrainSettings,
    load_causal_lm,
    load_tokenizer,
    mean_token_log_likelihood,
    new_lm,
    tokenizer_for_trainers,
    train_causal_lm,
    train_tokenizer,
)
from harness.pipeline.cache import DONE, StageCache
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
    human_preferences: Path | None = None  # the benchmark's real preference data, if it has any

    @property
    def config(self) -> BenchmarkConfig:
        return self.benchmark.config

    @property
    def generation(self) -> GenerationSettings:
        return self.config.generation

    def load_sft(self):
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
        loaded = bool(c.policy_model)
        data_only = {k: v for k, v in specific_settings(c).items() if k not in b.gold_settings}
        data_cfg = {**pick_settings(c, ["seed", "corpus_size", "sft_size"]), **data_only}
        # Added only when set, so that the embedded benchmarks' cache keys stay as they were.
        if loaded:  # its tokenizer and chat template are part of the data (rendered prompts)
            data_cfg["policy_model"] = {"source": c.policy_model, "fingerprint": source_fingerprint(c.policy_model)}
        if fingerprint := b.data_fingerprint():
            data_cfg["files"] = fingerprint
        key = self._key("data", data_cfg)
        if loaded:  # π_sft starts from a given model: its tokenizer (and chat template) come first
            self.tokenizer = self._loaded_tokenizer(self.cache.folder("data", key))
            b.chat_tokenizer = self.tokenizer
        self.data_dir = self.cache.get_or_build("data", key, self._build_data, data_cfg)
        if not loaded:
            self.tokenizer = load_tokenizer(self.data_dir / "tokenizer")
        prompts = json.loads((self.data_dir / "prompts.json").read_text())
        # Checked before any model is built: a context too short for the prompts is a setting to fix.
        train_prompts, eval_prompts = self._fitting_prompts(prompts["train"], "train"), self._fitting_prompts(prompts["eval"], "eval")

        if loaded:
            model_cfg = {"policy_model": c.policy_model, "fingerprint": source_fingerprint(c.policy_model), "trl": c.uses_trl_sft,
                         **pick_settings(c, ["sft_epochs", "sft_lr", "max_positions"])}  # fmt: skip
            sft_dir = self.cache.get_or_build("sft", self._key("sft", self.keys["data"], model_cfg), self._build_loaded_sft, model_cfg)
        else:
            base_cfg = pick_settings(c, ["policy_layers", "policy_width", "policy_heads", "max_positions", "pretrain_epochs", "pretrain_lr"])
            base_dir = self.cache.get_or_build("base_lm", self._key("base_lm", self.keys["data"], base_cfg), self._build_base, base_cfg)
            sft_cfg = pick_settings(c, ["sft_epochs", "sft_lr"])
            if c.uses_trl_sft:  # only when set, so that the embedded benchmarks' cache keys stay as they were
                sft_cfg["sft_trainer"] = "trl"
            sft_dir = self.cache.get_or_build(
                "sft", self._key("sft", self.keys["base_lm"], sft_cfg), lambda out: self._build_sft(base_dir, out), sft_cfg
            )
        judge_dir = None
        if c.judge_layers > 0:
            judge_cfg = pick_settings(c, ["judge_layers", "judge_width", "judge_epochs", "max_positions"])
            judge_dir = self.cache.get_or_build("judge", self._key("judge", self.keys["data"], judge_cfg), self._build_judge, judge_cfg)
        human = self.data_dir / "human_preferences.json"
        return PreparedBenchmark(
            benchmark=b, cache=self.cache, device=self.device, tokenizer=self.tokenizer,
            train_prompts=train_prompts, eval_prompts=eval_prompts,
            sft_dir=sft_dir, judge_dir=judge_dir, keys=dict(self.keys), quiet=self.quiet,
            human_preferences=human if human.exists() else None,
        )  # fmt: skip

    def _loaded_tokenizer(self, data_dir: Path):
        """The loaded policy's tokenizer with a PAD the model can never produce: set up against
        the model's output rows the first time (``load_pretrained_tokenizer(model=...)`` checks the
        pair), then read back from the data stage, which keeps it (no model load per run)."""
        from harness.lm import load_pretrained_tokenizer

        if (data_dir / DONE).exists():
            return load_pretrained_tokenizer(data_dir / "tokenizer")
        return load_pretrained_tokenizer(self.config.policy_model, model=load_causal_lm(self.config.policy_model))

    def _fitting_prompts(self, prompts: list[str], split: str) -> list[str]:
        """The prompts that leave room for a full response in the context (``max_positions``);
        the others are dropped with a warning, and none left is an error naming the settings."""
        room = prompt_room(self.config)
        kept = [p for p, n in zip(prompts, token_counts(self.tokenizer, prompts)) if n <= room]
        if not kept:
            raise UsageError(f"benchmark {self.benchmark.name}: no {split} prompt fits in max_positions={self.config.max_positions} "
                             f"with max_new_tokens={self.config.max_new_tokens}; raise max_positions")  # fmt: skip
        if len(kept) < len(prompts):
            warnings.warn(f"{self.benchmark.name}: {len(prompts) - len(kept)} of {len(prompts)} {split} prompts are longer than "
                          f"{room} tokens (max_positions − max_new_tokens) and were dropped", stacklevel=2)  # fmt: skip
        return kept

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
        human = b.human_preferences(random.Random(self.config.seed + 3))
        if self.config.policy_model:
            self.tokenizer.save_pretrained(str(out / "tokenizer"))  # the loaded one, its PAD set up: later runs read it here
        else:
            texts = corpus + [f"{p} {r}" for p, r in sft] + train + held_out
            texts += [f"{item.prompt} {r}" for item in human or [] for r in item.responses]
            train_tokenizer(texts).save_pretrained(str(out / "tokenizer"))
        (out / "corpus.json").write_text(json.dumps(corpus))
        (out / "sft.json").write_text(json.dumps(sft))
        (out / "prompts.json").write_text(json.dumps({"train": train, "eval": held_out}))
        if human is not None:
            (out / "human_preferences.json").write_text(json.dumps([asdict(item) for item in human]))

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

    def _corpus_examples(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        """Next-token examples of corpus texts, each cut to the context (``max_positions``)."""
        eos, limit = self.tokenizer.eos_token_id, self.config.max_positions
        return [([], (self._encode(t) + [eos])[:limit]) for t in texts]

    def _build_base(self, out: Path) -> None:
        examples = self._corpus_examples(self._texts("corpus"))
        c = self.config
        model = self._train_lm(self._policy_shape(), examples, c.pretrain_epochs, c.pretrain_lr, c.seed, "pretrain base LM")
        model.save_pretrained(str(out))

    def _build_sft(self, base_dir: Path, out: Path) -> None:
        c = self.config
        model = GPT2LMHeadModel.from_pretrained(str(base_dir))
        if c.uses_trl_sft:
            self._sft_with_trl(model.to(self.device))
        else:
            model = self._train_lm(self._policy_shape(), self._sft_examples(), c.sft_epochs, c.sft_lr, c.seed + 1, "SFT π_sft",
                                   model=model)  # fmt: skip
        model.cpu().save_pretrained(str(out))

    def _sft_examples(self) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, response ids + EOS) of the SFT demonstrations, cut to ``max_positions``
        (the response's tail is dropped; a prompt that leaves no room drops the example)."""
        eos, limit = self.tokenizer.eos_token_id, self.config.max_positions
        examples = []
        for prompt, response in self._texts("sft"):
            context = self._encode(prompt)
            if len(context) < limit:
                examples.append((context, (self._encode(response) + [eos])[: limit - len(context)]))
        if not examples:
            raise UsageError(f"benchmark {self.benchmark.name}: no SFT demonstration fits in max_positions={limit}; raise max_positions")
        return examples

    def _build_loaded_sft(self, out: Path) -> None:
        c = self.config
        model = load_causal_lm(c.policy_model, self.device)
        if c.sft_epochs > 0 and c.uses_trl_sft:
            self._sft_with_trl(model)
        elif c.sft_epochs > 0:
            train_causal_lm(model, self._sft_examples(), TrainSettings(epochs=c.sft_epochs, lr=c.sft_lr), seed=c.seed + 1,
                            desc="SFT π_sft", quiet=self.quiet)  # fmt: skip
        model.cpu().save_pretrained(str(out))  # safetensors
        self.tokenizer.save_pretrained(str(out))

    def _sft_with_trl(self, model) -> None:
        """TRL's SFTTrainer on the demonstrations as prompt–completion pairs: loss on the
        completion only, EOS appended, sequences cut at ``max_positions``; tokenized as the harness
        samples (no special tokens added), padded with EOS (``tokenizer_for_trainers``)."""
        import datasets
        from trl import SFTConfig, SFTTrainer

        c = self.config
        self._sft_examples()  # the same clear error when nothing fits
        pairs = [{"prompt": p, "completion": r} for p, r in self._texts("sft")]
        if self.quiet:  # TRL's dataset preparation shows `datasets` bars
            datasets.disable_progress_bars()
        with tempfile.TemporaryDirectory() as tmp:
            args = SFTConfig(
                output_dir=tmp, num_train_epochs=c.sft_epochs, learning_rate=c.sft_lr, per_device_train_batch_size=16,
                max_length=c.max_positions, completion_only_loss=True,
                lr_scheduler_type="linear", warmup_steps=0.05, seed=c.seed + 1, data_seed=c.seed + 1, report_to=[],
                save_strategy="no", logging_strategy="no", bf16=False, fp16=False, use_cpu=self.device.type == "cpu",
                disable_tqdm=self.quiet, dataloader_num_workers=0,
            )  # fmt: skip
            SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(pairs),
                       processing_class=tokenizer_for_trainers(self.tokenizer)).train()  # fmt: skip
        model.eval()

    def _build_judge(self, out: Path) -> None:
        c = self.config
        corpus = self._texts("corpus")
        held_out = max(200, len(corpus) // 20)
        examples = self._corpus_examples(corpus[held_out:])
        shape = LMShape(c.judge_layers, c.judge_width, judge_heads(c.judge_width), c.max_positions)
        model = self._train_lm(shape, examples, c.judge_epochs, 1e-3, c.seed + 2, "judge LM")
        model.save_pretrained(str(out))
        # Fluency is standardised on held-out corpus text: z = (ll − mean) / std.
        ll = mean_token_log_likelihood(model, self.tokenizer, corpus[:held_out])
        (out / "fluency_stats.json").write_text(json.dumps({"mean": ll.mean().item(), "std": ll.std().item()}))


def prompt_room(config: BenchmarkConfig) -> int:
    """The most prompt tokens that leave room for a full response in the context."""
    return config.max_positions - config.max_new_tokens


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def prepare(benchmark, cache: StageCache | None = None, device: torch.device | str = "cpu", quiet: bool = False) -> PreparedBenchmark:
    """Build (or load from the cache) every stage ``benchmark`` needs."""
    return _Builder(benchmark, cache or StageCache(), torch.device(device), quiet).build()
