"""``instructions``: the classic recipe on real data — SFT on instruction demonstrations, a reward
model on real human preferences, RL on the prompts, evaluation on held-out instructions.

Every part comes from a dataset (a Hugging Face Hub id or a local json/jsonl/parquet/csv file,
read by :mod:`harness.data`'s adapters):
- SFT demonstrations (``sft_data`` in ``sft_format``: alpaca, dolly, prompt-response, oasst2);
  ``eval_prompts`` of their distinct prompts are held out for evaluation and never trained on;
- human preferences (``preference_data`` in ``preference_format``: HH-RLHF pairs, plain pairs,
  ShareGPT pairs, Stack Exchange pairs, or OASST2's K-wise rankings of sibling replies): what
  reward models and DPO learn from, instead of the simulated annotator;
- train prompts for RL: the remaining SFT prompts and the preference prompts;
- π_sft: built (a tiny GPT-2 pretrained on the data's own text, then SFT — runs on a CPU in
  seconds) or loaded with ``--policy-model`` (any causal LM, its chat template renders prompts);
- the gold reward r*: a reward model (``gold_reward_model``: hub id or local folder) scoring
  prompt + response, or none (the default: no r* on a laptop), in which case the gold metrics
  are not measured and show as "–".

Prompts are rendered with the policy's chat template when it has one, else the Alpaca / HH
templates of :mod:`harness.data.render`. The defaults name the real datasets on the Hub; on a
machine without the Hub, point them at local files (README: "Real models and data").
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

import torch

from harness.api import Benchmark, BenchmarkConfig, PreferenceItem, UsageError, help_field, source_fingerprint
from harness.data import load_pairs, load_rankings, load_sft, render_prompt
from harness.lm import load_sequence_classifier

PAIR_FORMATS = ("hh", "pairs", "sharegpt-pairs", "stack-exchange")
RANKING_FORMATS = ("oasst2",)


@dataclass
class InstructionsConfig(BenchmarkConfig):
    sft_data: str = help_field("SFT demonstrations: a hub id or a local json/jsonl/parquet/csv file", "tatsu-lab/alpaca")
    sft_format: str = help_field("format of sft_data: alpaca, dolly, prompt-response or oasst2", "alpaca")
    preference_data: str = help_field("human preferences: a hub id or a local file", "Anthropic/hh-rlhf")
    preference_format: str = help_field(
        "format of preference_data: hh, pairs, sharegpt-pairs, stack-exchange (pairs) or oasst2 (K-wise rankings)", "hh"
    )
    lang: str = help_field("language filter for oasst2 data ('all': every language)", "en")
    eval_prompts: int = help_field("held-out evaluation prompts, taken from the SFT data's distinct prompts", 64)
    gold_reward_model: str = help_field(
        "gold reward r*: a sequence-classification reward model (hub id or local folder); '': none (gold metrics not measured)", ""
    )
    corpus_size: int = help_field("pretraining texts for a built policy (from the SFT and preference data)", 20000)
    sft_size: int = help_field("SFT demonstrations used (at most)", 5000)
    max_positions: int = help_field("context length of every model (prompt + response, in tokens)", 256)
    max_new_tokens: int = help_field("maximum response length, in tokens, for every sampler", 32)
    preference_prompts: int = help_field("annotation budget: human preference items a reward model trains on (at most)", 4000)
    preference_eval_prompts: int = help_field("held-out human preference items for RM accuracy", 100)
    default_budget: int = help_field("training episodes an optimizer gets when --budget is not given", 1024)

    def __post_init__(self):
        super().__post_init__()
        if self.preference_format not in PAIR_FORMATS + RANKING_FORMATS:
            raise ValueError(f"preference_format must be one of {', '.join(PAIR_FORMATS + RANKING_FORMATS)}, got {self.preference_format!r}")
        if self.eval_prompts < 1:
            raise ValueError(f"eval_prompts must be >= 1, got {self.eval_prompts}")


class Instructions(Benchmark):
    name = "instructions"
    description = "real data: SFT on instructions (alpaca/dolly/oasst2), RMs on human preferences (HH/oasst2), r* optional"
    Config = InstructionsConfig
    gold_settings = ("gold_reward_model",)

    def data_fingerprint(self) -> str:
        c = self.config
        return f"{source_fingerprint(c.sft_data)}:{source_fingerprint(c.preference_data)}"

    # -- the data, loaded once ----------------------------------------------------------------
    # Every example keeps its conversation's opening user message (its "root"): held-out
    # conversations are held out whole, so that a later turn of an OASST thread (whose prompt
    # contains the held-out first turn and its reply) never reaches training.

    def _render(self, messages) -> str:
        return render_prompt(messages, self.chat_tokenizer)

    @cached_property
    def _demonstrations(self) -> list[tuple[str, str, str]]:
        """(root, rendered prompt, response) of every SFT example."""
        c = self.config
        examples, _ = load_sft(c.sft_format, c.sft_data, lang=None if c.lang == "all" else c.lang)
        return [(_root(e.prompt), self._render(e.prompt), e.response) for e in examples]

    @cached_property
    def _preferences(self) -> list[tuple[str, PreferenceItem]]:
        """(root, item) of every human preference item."""
        c = self.config
        options = {"lang": None if c.lang == "all" else c.lang}
        if c.preference_format in RANKING_FORMATS:
            rankings, _ = load_rankings(c.preference_format, c.preference_data, **options)
            return [(_root(r.prompt), PreferenceItem(self._render(r.prompt), r.responses, [True] * len(r.responses), r.ranking))
                    for r in rankings]  # fmt: skip
        pairs, _ = load_pairs(c.preference_format, c.preference_data, **options)
        return [(_root(p.prompt), PreferenceItem(self._render(p.prompt), [p.chosen, p.rejected], [True, True], [0, 1])) for p in pairs]

    @cached_property
    def _held_out(self) -> tuple[set[str], list[str]]:
        """(held-out roots, evaluation prompts): ``eval_prompts`` conversations of the SFT data,
        drawn with the benchmark's seed, each evaluated on its opening prompt."""
        opening = {}  # root → the rendered prompt of its first turn
        for root, prompt, _ in self._demonstrations:
            opening.setdefault(root, prompt)
        roots = list(opening)
        if len(roots) < self.config.eval_prompts + 1:
            raise UsageError(f"{self.config.sft_data}: {len(roots)} distinct conversations, not enough to hold out "
                             f"eval_prompts={self.config.eval_prompts} and train on the rest")  # fmt: skip
        chosen = random.Random(self.config.seed).sample(roots, self.config.eval_prompts)
        return set(chosen), [opening[root] for root in chosen]

    def _train_demonstrations(self) -> list[tuple[str, str]]:
        held_out, _ = self._held_out
        return [(prompt, response) for root, prompt, response in self._demonstrations if root not in held_out]

    # -- the Benchmark interface ----------------------------------------------------------------

    def sft_pairs(self, rng) -> list[tuple[str, str]]:
        pairs = self._train_demonstrations()
        rng.shuffle(pairs)
        return pairs[: self.config.sft_size]

    def corpus(self, rng) -> list[str]:
        texts = [f"{p} {r}" for p, r in self._train_demonstrations()]
        texts += [f"{item.prompt} {r}" for item in self.human_preferences(rng) for r in item.responses]
        rng.shuffle(texts)
        return texts[: self.config.corpus_size]

    def prompts(self, rng) -> tuple[list[str], list[str]]:
        _, eval_prompts = self._held_out
        train = [p for p, _ in self._train_demonstrations()] + [item.prompt for item in self.human_preferences(rng)]
        evaluated = set(eval_prompts)  # the same text in another conversation is held out too
        return list(dict.fromkeys(p for p in train if p not in evaluated)), eval_prompts

    def human_preferences(self, rng) -> list[PreferenceItem]:
        held_out, _ = self._held_out
        return [item for root, item in self._preferences if root not in held_out]

    def gold_reward(self, judge):
        if not self.config.gold_reward_model:
            return None
        return RewardModelGold(self.config.gold_reward_model, judge.device)


def _root(messages) -> str:
    """A conversation's identity: its first user message (a system message before it aside)."""
    return next((m["content"] for m in messages if m["role"] == "user"), messages[0]["content"] if messages else "")


class RewardModelGold:
    """r* from a reward model (``AutoModelForSequenceClassification``, safetensors only): its
    scalar for prompt + response, read at the last token (transformers' own rule)."""

    def __init__(self, source: str, device, batch_size: int = 64):
        from transformers import AutoTokenizer

        self.model = load_sequence_classifier(source, device)  # safetensors only, float32, one-line errors
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise UsageError(f"gold_reward_model {source!r}: cannot load its tokenizer ({exc})") from None
        # Texts longer than the model's context keep their end (the response), not their start.
        self.tokenizer.truncation_side = "left"
        self.max_length = getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length
        if self.model.config.num_labels != 1:
            raise UsageError(f"gold_reward_model {source!r}: expected one score per text, the model has {self.model.config.num_labels} labels")
        if self.tokenizer.pad_token is None:  # right padding: the last real token is found by the pad id
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def __call__(self, prompts: list[str], responses: list[str], ended: torch.Tensor) -> torch.Tensor:
        texts = [p + r for p, r in zip(prompts, responses)]
        scores = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt")  # fmt: skip
            scores.append(self.model(**batch.to(self.device)).logits[:, 0].float().cpu())
        return torch.cat(scores) if scores else torch.zeros(0)
