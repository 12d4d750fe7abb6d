"""Settings every embedded benchmark shares (``--benchmark-set key=value``); a benchmark's
``Config`` subclasses :class:`BenchmarkConfig` and adds its own."""

from __future__ import annotations

from dataclasses import dataclass, fields

from harness.config import help_field
from harness.rollout import GenerationSettings


SFT_TRAINERS = ("auto", "trl", "lean")


def judge_heads(width: int) -> int:
    """Attention heads of a judge LM: one per 64 dimensions."""
    return max(1, width // 64)


@dataclass
class BenchmarkConfig:
    """Settings shared by embedded benchmarks. Override with ``--benchmark-set key=value``."""

    seed: int = help_field("seed of everything the benchmark builds (data, base LM, π_sft, RM data)", 1234)
    policy_model: str = help_field(
        "start from this causal LM (a hub id or a local save_pretrained folder, with its tokenizer and chat "
        "template; SFT on the benchmark's demonstrations when sft_epochs > 0) instead of building one "
        "(''; the policy_* and pretrain_* settings then do not apply; also --policy-model)",
        "",
    )
    reward_model_base: str = help_field(
        "initialise reward models from this causal LM (hub id or local folder, its own tokenizer: texts are "
        "re-tokenized for it) instead of π_sft (''; InstructGPT's choice; also --reward-model-base)",
        "",
    )
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
    sft_trainer: str = help_field(
        "SFT loop: 'trl' (TRL's SFTTrainer: completion-only loss, EOS appended), 'lean' (the harness's own loop, "
        "faster at embedded sizes) or 'auto' (TRL for a --policy-model, lean for a built one)",
        "auto",
    )
    judge_layers: int = help_field("GPT-2 layers of the judge LM behind gold fluency (0: no judge)", 0)
    judge_width: int = help_field("width of the judge LM", 192)
    judge_epochs: float = help_field("judge LM epochs over the corpus", 1.0)
    max_new_tokens: int = help_field("maximum response length, in tokens, for every sampler", 16)
    temperature: float = help_field("sampling temperature for rollouts, RM data and evaluation", 1.0)
    preference_prompts: int = help_field("annotation budget of reward models, in pair-equivalents (pairs)", 4000)
    preference_eval_prompts: int = help_field("held-out (eval-prompt) items for RM accuracy", 500)
    annotator_noise: float = help_field("τ of the annotator: P(a ≻ b) = σ((r*(a) − r*(b)) / τ)", 0.2)
    ranking_k: int = help_field("responses per item in K-wise rankings (reward models that ask for rankings)", 4)
    default_budget: int = help_field("training episodes an optimizer gets when --budget is not given", 4096)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value}")
        for name in ("corpus_size", "sft_size", "policy_layers", "policy_width", "policy_heads", "max_positions",
                     "max_new_tokens", "preference_prompts", "preference_eval_prompts", "default_budget"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.policy_width % self.policy_heads:
            raise ValueError(f"policy_width ({self.policy_width}) must be a multiple of policy_heads ({self.policy_heads})")
        if self.judge_layers and self.judge_width % judge_heads(self.judge_width):
            raise ValueError(f"judge_width ({self.judge_width}) must be a multiple of {judge_heads(self.judge_width)} (its heads)")
        if self.max_positions <= self.max_new_tokens:
            raise ValueError(f"max_positions ({self.max_positions}) must exceed max_new_tokens ({self.max_new_tokens}): "
                             "the context holds the prompt and the response")  # fmt: skip
        if not 0 < self.temperature < float("inf"):
            raise ValueError(f"temperature must be > 0 and finite, got {self.temperature}")
        if self.sft_trainer not in SFT_TRAINERS:
            raise ValueError(f"sft_trainer must be one of {', '.join(SFT_TRAINERS)}, got {self.sft_trainer!r}")
        if not 2 <= self.ranking_k <= 9:
            raise ValueError(f"ranking_k must be in 2..9, got {self.ranking_k}")

    @property
    def uses_trl_sft(self) -> bool:
        """Whether π_sft is fine-tuned with TRL's SFTTrainer (else the lean loop)."""
        return self.sft_trainer == "trl" or (self.sft_trainer == "auto" and bool(self.policy_model))

    @property
    def generation(self) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=self.max_new_tokens, temperature=self.temperature)
