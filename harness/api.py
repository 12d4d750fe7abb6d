"""The few types a plugin implements or receives.

- :class:`PolicyOptimizer` — an algorithm: ``train(ctx) -> Policy``.
- :class:`RewardModel` — ``fit(ctx) -> FittedRewardModel``; a fitted model scores rollouts.
- :class:`Evaluator` — ``evaluate(batch) -> {metric: value}`` on held-out prompts.
- :class:`Benchmark` — data plus a gold reward (see :mod:`harness.pipeline` for the stages).

Every one of them declares a ``Config`` dataclass whose fields become CLI flags, a unique
``name`` and a one-line ``description``.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

    from harness.pipeline import BenchmarkArtifacts


@dataclass
class EmptyConfig:
    """No options."""


class Plugin(abc.ABC):
    """What every registered class has: a name, a one-line description, a config dataclass."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()


# -------------------------------------------------------------------------
# token batches
# -------------------------------------------------------------------------


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
        index = torch.as_tensor(index, dtype=torch.long)
        return Rollout(
            prompts=[self.prompts[i] for i in index.tolist()],
            query_ids=self.query_ids[index],
            query_mask=self.query_mask[index],
            response_ids=self.response_ids[index],
            tokenizer=self.tokenizer,
        )


@dataclass
class GenerationSettings:
    """How responses are sampled: pure temperature sampling (top-k 0, top-p 1), so that the
    log-probs recomputed with logits / T are those of the sampling distribution."""

    max_new_tokens: int = 16
    temperature: float = 1.0


# -------------------------------------------------------------------------
# policies
# -------------------------------------------------------------------------


class Policy:
    """A causal LM with a frozen decoding setting: what an optimizer returns.

    Subclasses may override :meth:`sample` (best-of-n does) and then set :attr:`analytic_kl`
    when their per-token log-probs are not available.
    """

    #: KL(π‖π_ref) per sequence when known in closed form, else ``None`` (then it is estimated).
    analytic_kl: float | None = None

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
        self.model = model
        self.tokenizer = tokenizer

    @property
    def has_log_probs(self) -> bool:
        """Whether :meth:`log_probs` gives this policy's own sampling log-probs."""
        return type(self).sample is Policy.sample

    def sample(self, prompts: list[str], settings: GenerationSettings, generator: torch.Generator, desc: str | None = None) -> Rollout:
        """Responses to ``prompts`` (a progress bar when ``desc`` is given)."""
        from harness.generation import sample_rollout

        return sample_rollout(self.model, self.tokenizer, prompts, settings, generator, desc=desc)

    def log_probs(self, rollout: Rollout, temperature: float) -> torch.Tensor:
        """Per-token log π(response token | prefix) at ``temperature``; 0 at padding."""
        from harness.generation import response_log_probs

        return response_log_probs(self.model, rollout, temperature)

    def save(self, path: Path) -> None:
        """Save the weights as safetensors (``save_model`` de-duplicates tied embeddings)."""
        from safetensors.torch import save_model

        save_model(self.model, str(path))


# -------------------------------------------------------------------------
# budget
# -------------------------------------------------------------------------


class BudgetExceeded(RuntimeError):
    """An optimizer asked for more episodes than its budget allows."""


@dataclass
class Budget:
    """The sample budget every optimizer gets: episodes = prompt–response pairs generated
    during training. RM queries (responses scored by the proxy) are counted beside it."""

    episodes: int
    episodes_used: int = 0
    rm_queries: int = 0

    @property
    def remaining(self) -> int:
        return self.episodes - self.episodes_used

    def spend(self, episodes: int, rm_queries: int | None = None) -> None:
        """Record ``episodes`` generated responses (and, by default, as many RM queries)."""
        if episodes > self.remaining:
            raise BudgetExceeded(f"asked for {episodes} episodes with {self.remaining} left of {self.episodes}")
        self.episodes_used += episodes
        self.rm_queries += episodes if rm_queries is None else rm_queries

    def as_dict(self) -> dict[str, int]:
        return {"episodes": self.episodes, "episodes_used": self.episodes_used, "rm_queries": self.rm_queries}


# -------------------------------------------------------------------------
# reward models
# -------------------------------------------------------------------------


class FittedRewardModel(abc.ABC):
    """A reward model ready to score. ``score`` returns one float per rollout row."""

    #: The sequence-classification model behind the scores, if there is one (PPO may
    #: initialise its critic from it).
    model: PreTrainedModel | None = None
    #: Whether this is the gold reward itself (an oracle upper bound; tables mark it).
    is_oracle: bool = False
    #: Held-out quality figures of the fit (``rm/accuracy``, ``rm/spearman``...).
    metrics: dict[str, float] = {}

    @abc.abstractmethod
    def score(self, rollout: Rollout) -> torch.Tensor:
        """One score per rollout row."""


@dataclass
class RewardFitContext:
    """What a reward model's ``fit`` receives."""

    artifacts: BenchmarkArtifacts
    device: torch.device
    cache_dir: Path
    seed: int


class RewardModel(Plugin):
    """A reward-model recipe. ``fit`` is cached by the runner under a hash of the benchmark,
    this class's name and config, so every algorithm on a benchmark optimizes the same r̂."""

    #: What preference data it trains on: ``pairs``, ``rankings`` or ``None`` (gold).
    preference_kind: ClassVar[str | None] = "pairs"

    @abc.abstractmethod
    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        """Train on the benchmark's annotations (or wrap r*) and return the fitted model."""

    def load(self, ctx: RewardFitContext, folder: Path) -> FittedRewardModel:
        """Rebuild a fitted model saved by :meth:`save` (the cache). Default: fit again."""
        return self.fit(ctx)

    def save(self, fitted: FittedRewardModel, folder: Path) -> bool:
        """Save ``fitted`` into ``folder``; return False when there is nothing to cache."""
        return False


# -------------------------------------------------------------------------
# optimizers
# -------------------------------------------------------------------------


@dataclass
class TrainContext:
    """What a policy optimizer's ``train`` receives. The gold reward is not in it."""

    policy: PreTrainedModel  # a fresh, trainable copy of π_sft
    ref_policy: PreTrainedModel  # π_ref = π_sft, frozen
    tokenizer: PreTrainedTokenizerFast
    reward_model: FittedRewardModel  # the proxy r̂
    train_prompts: list[str]
    generation: GenerationSettings
    budget: Budget
    seed: int
    device: torch.device
    run_dir: Path
    log: Callable[[int, dict[str, float]], None]
    quiet: bool = False

    def progress(self, total: int, desc: str):
        """A progress bar over ``total`` units that honours ``--quiet``."""
        from harness.progress import bar

        return bar(total=total, desc=desc, disable=self.quiet)


class PolicyOptimizer(Plugin):
    """An RLHF algorithm. One run: ``train(ctx)`` on the train prompts within ``ctx.budget``
    episodes, returning the final policy."""

    @abc.abstractmethod
    def train(self, ctx: TrainContext) -> Policy:
        """Optimize ``ctx.policy`` within ``ctx.budget`` and return the final policy."""


# -------------------------------------------------------------------------
# evaluation
# -------------------------------------------------------------------------


class EvalBatch:
    """Samples of the trained policy and of π_sft on the held-out prompts, with everything
    evaluators need computed once, on first use."""

    def __init__(
        self,
        policy: Policy,
        ref_policy: Policy,
        rollout: Rollout,
        ref_rollout: Rollout,
        gold: Callable[[Rollout], torch.Tensor],
        proxy: FittedRewardModel,
        temperature: float,
    ):
        self.policy = policy
        self.ref_policy = ref_policy
        self.rollout = rollout
        self.ref_rollout = ref_rollout
        self._gold = gold
        self.proxy_model = proxy
        self.temperature = temperature

    @cached_property
    def gold(self) -> torch.Tensor:
        return self._gold(self.rollout)

    @cached_property
    def ref_gold(self) -> torch.Tensor:
        return self._gold(self.ref_rollout)

    @cached_property
    def proxy(self) -> torch.Tensor:
        with torch.no_grad():
            return self.proxy_model.score(self.rollout)

    @cached_property
    def kl_per_sequence(self) -> torch.Tensor | None:
        """Monte-Carlo KL(π‖π_ref) per sequence: the sum of per-token log-ratios on π's own
        samples (exactly 0 when π = π_ref). ``None`` when π has no tractable log-probs."""
        if not self.policy.has_log_probs:
            return None
        with torch.no_grad():
            logp = self.policy.log_probs(self.rollout, self.temperature)
            ref_logp = self.ref_policy.log_probs(self.rollout, self.temperature)
        return ((logp - ref_logp) * self.rollout.response_mask).sum(1)


class Evaluator(Plugin):
    """Computes metrics on an :class:`EvalBatch`. Keys are namespaced (``eval/gold``)."""

    #: metric key → True when higher is better (the leaderboard prints ↑/↓).
    higher_is_better: ClassVar[dict[str, bool]] = {}

    @abc.abstractmethod
    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        """Namespaced metric values for ``batch``."""


# -------------------------------------------------------------------------
# benchmarks
# -------------------------------------------------------------------------


class Benchmark(Plugin):
    """Data plus a gold reward. The pipeline (:mod:`harness.pipeline`) turns it into a
    tokenizer, a pretrained base LM, π_sft, prompts and preference data, all cached.

    ``Config`` must subclass :class:`harness.pipeline.BenchmarkConfig`. Bump ``version`` when
    results would change.
    """

    version: ClassVar[str] = "1"
    #: Config fields that only the gold reward reads: changing one re-annotates preferences
    #: but does not rebuild the corpus, the base LM or π_sft.
    gold_settings: ClassVar[tuple[str, ...]] = ()

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
    def gold_reward(self, artifacts: BenchmarkArtifacts) -> Callable[[list[str], list[str], torch.Tensor], torch.Tensor]:
        """The gold reward r*: ``(prompts, responses, ended) -> scores``. Hidden from every
        optimizer; only the annotator and evaluators call it."""


@dataclass
class RunInfo:
    """A run as lifecycle hooks see it."""

    run_id: str
    name: str
    benchmark: str
    algorithm: str
    reward_model: str
    seed: int
    algo_config: dict[str, Any]
    run_dir: Path


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict."""
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in dataclasses.asdict(config).items()}
