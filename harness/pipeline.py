"""The benchmark pipeline, stage by stage, each cached by a hash of its inputs:

    data (corpus, SFT pairs, prompts, tokenizer) ─► base LM (pretraining) ─► π_sft (= π_ref)
                                                 └► judge LM (for gold fluency, if any)
    π_sft samples ─► simulated annotator(r*) ─► preferences (pairs or K-rankings)

Every algorithm on a benchmark starts from the same π_sft; the benchmark's own ``seed`` (not
the run's) fixes all of it.
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

from harness.api import Benchmark, GenerationSettings, Rollout
from harness.cache import StageCache
from harness.config import config_hash, help_field
from harness.generation import sample_rollout
from harness.lm import (
    LMShape,
    TrainSettings,
    load_tokenizer,
    mean_token_log_likelihood,
    new_lm,
    train_causal_lm,
    train_tokenizer,
)
from harness.progress import bar

# Bump when a stage's code changes what it produces.
STAGE_CODE_VERSION = {"data": 1, "base_lm": 1, "sft": 1, "judge": 1, "preferences": 1}


def judge_heads(width: int) -> int:
    """Attention heads of a judge LM: one per 64 dimensions."""
    return max(1, width // 64)


@dataclass
class BenchmarkConfig:
    """Settings shared by embedded benchmarks. Override with ``--bench key=value``."""

    seed: int = help_field("seed of everything the benchmark builds (data, base LM, π_sft, RM data)", 1234)
    corpus_size: int = help_field("pretraining texts", 20000)
    sft_size: int = help_field("SFT (prompt, response) demonstrations", 5000)
    policy_layers: int = help_field("GPT-2 layers of the policy", 2)
    policy_width: int = help_field("GPT-2 width (n_embd) of the policy", 128)
    policy_heads: int = help_field("attention heads of the policy", 2)
    max_positions: int = help_field("context length of every model", 64)
    pretrain_epochs: float = help_field("pretraining epochs over the corpus", 1.0)
    pretrain_lr: float = help_field("pretraining learning rate", 1e-3)
    sft_epochs: float = help_field("SFT epochs", 1.0)
    sft_lr: float = help_field("SFT learning rate", 5e-4)
    judge_layers: int = help_field("GPT-2 layers of the judge LM behind gold fluency (0: no judge)", 0)
    judge_width: int = help_field("width of the judge LM", 192)
    judge_epochs: float = help_field("judge LM epochs over the corpus", 1.0)
    max_new_tokens: int = help_field("maximum response length, in tokens, for every sampler", 16)
    temperature: float = help_field("sampling temperature for rollouts, RM data and evaluation", 1.0)
    preference_prompts: int = help_field("prompts the annotator labels for RM training", 4000)
    preference_eval_prompts: int = help_field("held-out (eval-prompt) items for RM accuracy", 500)
    annotator_noise: float = help_field("τ of the annotator: P(a ≻ b) = σ((r*(a) − r*(b)) / τ)", 0.2)
    ranking_k: int = help_field("responses per prompt in K-wise rankings", 4)
    eval_samples_per_prompt: int = help_field("samples per held-out prompt at evaluation", 8)
    default_budget: int = help_field("episodes an optimizer gets when --budget is not given", 4096)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value}")
        for name in ("corpus_size", "sft_size", "policy_layers", "policy_width", "policy_heads", "max_positions",
                     "max_new_tokens", "preference_prompts", "preference_eval_prompts", "eval_samples_per_prompt",
                     "default_budget"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.policy_width % self.policy_heads:
            raise ValueError(f"policy_width ({self.policy_width}) must be a multiple of policy_heads ({self.policy_heads})")
        if self.judge_layers and self.judge_width % judge_heads(self.judge_width):
            raise ValueError(f"judge_width ({self.judge_width}) must be a multiple of {judge_heads(self.judge_width)} (its heads)")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 2 <= self.ranking_k <= 9:
            raise ValueError(f"ranking_k must be in 2..9, got {self.ranking_k}")

    @property
    def generation(self) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature)


def _pick(config, names: list[str]) -> dict[str, Any]:
    return {n: getattr(config, n) for n in names}


def annotate(gold: torch.Tensor, noise: float, generator: torch.Generator) -> list[int]:
    """A simulated annotator's ranking (indices best → worst) of responses with gold scores
    ``gold``: a Plackett–Luce draw, i.e. sort by r*/τ + Gumbel noise. For two responses this
    is exactly Bradley–Terry: P(a ≻ b) = σ((r*(a) − r*(b)) / τ). τ = 0 is a noiseless judge."""
    if noise == 0:
        return torch.argsort(gold, descending=True, stable=True).tolist()
    uniform = torch.rand(gold.shape, generator=generator, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(uniform))
    return torch.argsort(gold.double() / noise + gumbel, descending=True).tolist()


class BenchmarkArtifacts:
    """A built benchmark: tokenizer, π_sft, prompts, the gold reward and preference data."""

    def __init__(self, benchmark: Benchmark, cache: StageCache, device: torch.device, quiet: bool = False):
        self.benchmark = benchmark
        self.config: BenchmarkConfig = benchmark.config
        self.cache = cache
        self.device = device
        self.quiet = quiet
        self.keys: dict[str, str] = {}
        self.generation = self.config.generation
        self._build()

    # -- stages ----------------------------------------------------------------------------

    def _key(self, stage: str, *parts, remember: bool = True) -> str:
        key = config_hash(self.benchmark.name, self.benchmark.version, stage, STAGE_CODE_VERSION[stage], *parts)
        if remember:  # the keys of the stages every run shares (preference sets are per RM)
            self.keys[stage] = key
        return key

    def _build(self) -> None:
        c, b = self.config, self.benchmark
        data_only = {k: v for k, v in self._specific_config().items() if k not in b.gold_settings}
        data_cfg = {**_pick(c, ["seed", "corpus_size", "sft_size"]), **data_only}
        self.data_dir = self.cache.get_or_build("data", self._key("data", data_cfg), self._build_data, data_cfg)
        self.tokenizer = load_tokenizer(self.data_dir / "tokenizer")
        data = json.loads((self.data_dir / "prompts.json").read_text())
        self.train_prompts: list[str] = data["train"]
        self.eval_prompts: list[str] = data["eval"]

        base_cfg = _pick(c, ["policy_layers", "policy_width", "policy_heads", "max_positions", "pretrain_epochs", "pretrain_lr"])
        base_dir = self.cache.get_or_build("base_lm", self._key("base_lm", self.keys["data"], base_cfg), self._build_base, base_cfg)
        sft_cfg = _pick(c, ["sft_epochs", "sft_lr"])
        self.sft_dir = self.cache.get_or_build(
            "sft", self._key("sft", self.keys["base_lm"], sft_cfg), lambda out: self._build_sft(base_dir, out), sft_cfg
        )
        self.judge_dir = None
        if c.judge_layers > 0:
            judge_cfg = _pick(c, ["judge_layers", "judge_width", "judge_epochs", "max_positions"])
            self.judge_dir = self.cache.get_or_build("judge", self._key("judge", self.keys["data"], judge_cfg), self._build_judge, judge_cfg)
        self.gold_fn = b.gold_reward(self)

    def _specific_config(self) -> dict[str, Any]:
        """The fields a benchmark adds to :class:`BenchmarkConfig` (its data and gold settings).
        Preferences are keyed on all of them; the data stage on all but ``gold_settings``."""
        base = {f.name for f in fields(BenchmarkConfig)}
        return {k: v for k, v in asdict(self.config).items() if k not in base}

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
        settings = TrainSettings(epochs=epochs, lr=lr)
        train_causal_lm(model, examples, settings, seed=seed, desc=desc, quiet=self.quiet)
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
        model = GPT2LMHeadModel.from_pretrained(str(base_dir))
        c = self.config
        model = self._train_lm(self._policy_shape(), examples, c.sft_epochs, c.sft_lr, c.seed + 1, "SFT π_sft", model=model)
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

    # -- what runs use ---------------------------------------------------------------------

    def load_sft(self) -> GPT2LMHeadModel:
        """A fresh copy of π_sft on the run's device, in eval mode."""
        model = GPT2LMHeadModel.from_pretrained(str(self.sft_dir)).to(self.device)
        return model.eval()

    @cached_property
    def judge(self) -> GPT2LMHeadModel | None:
        if self.judge_dir is None:
            return None
        return GPT2LMHeadModel.from_pretrained(str(self.judge_dir)).to(self.device).eval()

    @cached_property
    def fluency_stats(self) -> dict[str, float]:
        return json.loads((self.judge_dir / "fluency_stats.json").read_text())

    def judge_fluency(self, texts: list[str]) -> torch.Tensor:
        """Standardised mean per-token log-likelihood of ``texts`` under the judge LM."""
        ll = mean_token_log_likelihood(self.judge, self.tokenizer, texts)
        return (ll - self.fluency_stats["mean"]) / self.fluency_stats["std"]

    def gold(self, rollout: Rollout) -> torch.Tensor:
        """r*(prompt, response) for each row: for annotators and evaluators only."""
        return torch.as_tensor(self.gold_fn(rollout.prompts, rollout.responses, rollout.ended.cpu()), dtype=torch.float32)

    def preferences(self, kind: str, k: int | None = None, count: int | None = None) -> dict[str, list[dict]]:
        """Annotated preference data: ``{"train": [...], "eval": [...]}``. Each item is
        ``{"prompt", "responses", "ended", "ranking"}`` (ranking = indices best → worst);
        ``eval`` items also carry ``gold`` (for held-out RM metrics, never for fitting).
        ``kind`` is ``pairs`` (K = 2) or ``rankings`` (K = ``k`` or the benchmark's);
        ``count`` train items (default: the benchmark's ``preference_prompts``)."""
        if kind not in ("pairs", "rankings"):
            raise ValueError(f"unknown preference kind {kind!r}")
        k = 2 if kind == "pairs" else (k or self.config.ranking_k)
        count = self.config.preference_prompts if count is None else count
        cfg = {
            "k": k,
            "count": count,
            **_pick(self.config, ["preference_eval_prompts", "annotator_noise", "temperature", "max_new_tokens"]),
            **self._specific_config(),  # the gold reward's settings decide the rankings
        }
        key = self._key("preferences", self.keys["sft"], self.keys.get("judge"), cfg, remember=False)
        folder = self.cache.get_or_build("preferences", key, lambda out: self._build_preferences(out, k, count), cfg)
        data = json.loads((folder / "preferences.json").read_text())
        for item in data["train"]:
            item.pop("gold", None)
        return data

    def _build_preferences(self, out: Path, k: int, count: int) -> None:
        c = self.config
        policy = self.load_sft()
        generator = torch.Generator().manual_seed(c.seed + 3)
        rng = random.Random(c.seed + 3)
        result = {}
        for split, prompts, n_items in [("train", self.train_prompts, count), ("eval", self.eval_prompts, c.preference_eval_prompts)]:
            chosen = [rng.choice(prompts) for _ in range(n_items)]
            items = []
            chunk = max(1, 1024 // k)
            with bar(n_items, f"annotate {split} {'pairs' if k == 2 else f'{k}-rankings'}", disable=self.quiet) as progress:
                for start in range(0, n_items, chunk):
                    group = chosen[start : start + chunk]
                    rollout = sample_rollout(policy, self.tokenizer, [p for p in group for _ in range(k)], self.generation, generator)
                    gold = self.gold(rollout).view(len(group), k)
                    texts, ended = rollout.responses, rollout.ended.view(len(group), k).tolist()
                    for i, prompt in enumerate(group):
                        items.append(
                            {
                                "prompt": prompt,
                                "responses": texts[i * k : (i + 1) * k],
                                "ended": ended[i],
                                "ranking": annotate(gold[i], c.annotator_noise, generator),
                                "gold": gold[i].tolist(),
                            }
                        )
                    progress.update(len(group))
            result[split] = items
        (out / "preferences.json").write_text(json.dumps(result))


def prepare(benchmark: Benchmark, cache: StageCache | None = None, device: torch.device | str = "cpu", quiet: bool = False) -> BenchmarkArtifacts:
    """Build (or load from the cache) everything ``benchmark`` needs."""
    return BenchmarkArtifacts(benchmark, cache or StageCache(), torch.device(device), quiet=quiet)


