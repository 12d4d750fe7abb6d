"""The public contract: everything a plugin or a benchmark may import from the core, besides the
LM toolkit :mod:`harness.lm` and the dataset adapters :mod:`harness.data`. A test fails if a
module under ``plugins/`` or ``benchmarks/`` imports any other part of ``harness``.

What a plugin implements (each declares a unique ``name``, a one-line ``description`` and a
``Config`` dataclass whose fields become CLI flags):

- :class:`PolicyOptimizer` — an algorithm: ``train(ctx: TrainContext) -> Policy``;
- :class:`RewardModel` — ``fit(ctx: RewardFitContext) -> FittedRewardModel`` on preference data;
- :class:`Evaluator` — ``evaluate(batch: EvalBatch) -> {metric: value}`` on held-out prompts;
- :class:`Benchmark` — data plus a gold reward r* (``Config`` subclasses :class:`BenchmarkConfig`).

Who sees what (the fairness rules): an optimizer gets the proxy reward model r̂, never r*; a
reward model gets preference data (texts, token ids, rankings), never r*; only the simulated
annotator and the evaluators see r*.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

from harness import hookimpl, parallel  # parallel: the collectives of a data-parallel train (--num-processes)
# argparse types for a plugin command's hand-written flags (``harness bench ppo``): one-line errors
from harness.config import config_dict, finite_float, help_field, non_negative_float, non_negative_int, positive_float, positive_int
from harness.errors import NonFiniteError, UsageError
from harness.pipeline.cache import source_fingerprint
from harness.pipeline.config import BenchmarkConfig
from harness.rollout import GenerationSettings, Rollout

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

__all__ = [
    "Benchmark", "BenchmarkConfig", "Budget", "BudgetExceeded", "EvalBatch", "Evaluator", "FittedRewardModel",
    "GenerationSettings", "NonFiniteError", "Plugin", "Policy", "PolicyOptimizer", "PreferenceData", "PreferenceItem",
    "PreferenceRequest", "RewardFitContext", "RewardModel", "Rollout", "RunInfo", "TrainContext", "UsageError",
    "annotation_cost", "config_dict", "finite_float", "help_field", "hookimpl", "non_negative_float", "non_negative_int",
    "parallel", "positive_float", "positive_int", "source_fingerprint",
]  # fmt: skip


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
# policies and the sample budget
# -------------------------------------------------------------------------


class Policy:
    """A causal LM with a frozen decoding setting: what an optimizer returns.

    Subclasses may override :meth:`sample` (best-of-n does); they then set :attr:`analytic_kl`
    when their per-token log-probs are not available, and the inference cost of one returned
    response (:attr:`samples_per_response`, :attr:`rm_queries_per_response`).
    """

    #: KL(π‖π_ref) per sequence when known in closed form, else ``None`` (then it is estimated).
    analytic_kl: float | None = None
    #: responses sampled from the model, and proxy-RM queries made, per response returned
    samples_per_response: int = 1
    rm_queries_per_response: int = 0
    #: a policy that answers with the proxy's best of n samples names the policy it samples from:
    #: the runner then also traces the best-of-k curve (k = 1, 2, 4, …) from one set of its samples
    best_of_n_base: Policy | None = None

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
        self.model = model
        self.tokenizer = tokenizer

    @property
    def has_log_probs(self) -> bool:
        """Whether :meth:`log_probs` gives this policy's own sampling log-probs."""
        return type(self).sample is Policy.sample

    def sample(self, prompts: list[str], settings: GenerationSettings, generator: torch.Generator, desc: str | None = None) -> Rollout:
        """One response per prompt (a progress bar when ``desc`` is given), through
        :func:`harness.lm.sample_rollout`: a plain GPT-2 takes its fast sampler, which draws the
        same tokens from ``generator`` as transformers would."""
        from harness.lm import sample_rollout

        return sample_rollout(self.model, self.tokenizer, prompts, settings, generator, desc=desc)

    def log_probs(self, rollout: Rollout, temperature: float) -> torch.Tensor:
        """Per-token log π(response token | prefix) at ``temperature``; 0 at padding."""
        from harness.lm import response_log_probs

        return response_log_probs(self.model, rollout, temperature)

    def save(self, path: Path) -> None:
        """Save the weights as safetensors (``save_model`` de-duplicates tied embeddings)."""
        from safetensors.torch import save_model

        save_model(self.model, str(path))


class BudgetExceeded(RuntimeError):
    """An optimizer asked for more episodes than its budget allows."""


@dataclass
class Budget:
    """The sample budget every optimizer gets: episodes = prompt–response pairs sampled from the
    policy during training. Proxy-RM queries are counted beside it (the runner counts every call
    of ``ctx.reward_model.score``)."""

    episodes: int
    episodes_used: int = 0
    rm_queries: int = 0

    @property
    def remaining(self) -> int:
        return self.episodes - self.episodes_used

    def spend(self, episodes: int) -> None:
        """Charge ``episodes`` sampled responses; more than :attr:`remaining` is an error."""
        if episodes > self.remaining:
            raise BudgetExceeded(f"asked for {episodes} episodes with {self.remaining} left of {self.episodes}")
        self.episodes_used += episodes

    def count_rm_queries(self, n: int) -> None:
        self.rm_queries += n

    def as_dict(self) -> dict[str, int]:
        return {"episodes": self.episodes, "episodes_used": self.episodes_used, "rm_queries": self.rm_queries}


# -------------------------------------------------------------------------
# preference data and reward models
# -------------------------------------------------------------------------


def annotation_cost(k: int) -> float:
    """Annotation cost of one K-ranking in pair-equivalents: log2(K!) — the bits in a full
    ranking, i.e. the binary comparisons an optimal sort needs on average. A pair costs 1; a
    4-ranking costs 4.58, not C(4,2) = 6 (its pairs are not independent labels).

    >>> annotation_cost(2), round(annotation_cost(4), 2)
    (1.0, 4.58)
    """
    return math.log2(math.factorial(k))


def preference_kind(k: int) -> str:
    """``pairs`` for K = 2, else ``K-rankings``."""
    return "pairs" if k == 2 else f"{k}-rankings"


@dataclass(frozen=True)
class PreferenceRequest:
    """What preference data a reward model trains on: ``count`` items of ``k`` responses each
    (k = 2: pairs), each ranked by the simulated annotator."""

    k: int
    count: int

    @property
    def kind(self) -> str:
        return preference_kind(self.k)

    @property
    def cost(self) -> float:
        """The annotation cost in pair-equivalents (see :func:`annotation_cost`)."""
        return self.count * annotation_cost(self.k)


@dataclass
class PreferenceItem:
    """One annotated item: K responses to one prompt and the annotator's ranking of them."""

    prompt: str
    responses: list[str]
    ended: list[bool]  # whether each response ended with EOS (a cut-off response is scored as such)
    ranking: list[int]  # response indices, best → worst


@dataclass
class PreferenceData:
    """The training preferences a reward model receives: texts and rankings, token ids on
    demand (:meth:`rollout`). Gold scores are not in it."""

    items: list[PreferenceItem]
    k: int
    tokenizer: PreTrainedTokenizerFast = field(repr=False)

    @property
    def kind(self) -> str:
        return preference_kind(self.k)

    def __len__(self) -> int:
        return len(self.items)

    def rollout(self, device: torch.device | str = "cpu") -> tuple[Rollout, torch.Tensor]:
        """Every response as one rollout (item i's responses at rows ``i·K … i·K + K − 1``) and
        the rankings as a ``[N, K]`` tensor of row offsets, best → worst."""
        from harness.lm import items_rollout

        rollout, _ = items_rollout(self.tokenizer, self.items, device)
        return rollout, torch.tensor([item.ranking for item in self.items], device=device)


class FittedRewardModel(abc.ABC):
    """A reward model ready to score. ``score`` returns one float per rollout row."""

    #: The sequence-classification model behind the scores, if there is one (PPO may
    #: initialise its critic from it).
    model: PreTrainedModel | None = None
    #: Whether this is the gold reward itself (an oracle upper bound; tables mark it).
    is_oracle: bool = False
    #: Held-out quality figures of the fit (``rm/accuracy``, ``rm/spearman``...), set by the harness.
    metrics: dict[str, float] = {}

    @abc.abstractmethod
    def score(self, rollout: Rollout) -> torch.Tensor:
        """One score per rollout row."""


class RewardFitContext:
    """What a reward model's ``fit`` receives: the annotated preferences, a fresh copy of the
    starting policy π_sft to initialise from, π_sft's own samples to normalise on, and the
    device. Nothing in it leads to the gold reward."""

    def __init__(
        self,
        preferences: PreferenceData,
        tokenizer: PreTrainedTokenizerFast,
        generation: GenerationSettings,
        device: torch.device,
        seed: int,
        initial_model: Callable[[], PreTrainedModel],
        normalisation_samples: Callable[[], Rollout],
        quiet: bool = False,
        own_tokenizer: bool = False,
    ):
        self.preferences, self.tokenizer, self.generation = preferences, tokenizer, generation
        self.device, self.seed, self.quiet = device, seed, quiet
        #: True when :meth:`initial_model` is not π_sft but the benchmark's ``reward_model_base``
        #: with a tokenizer of its own (:attr:`tokenizer`, which :attr:`preferences` use too): a
        #: fitted model must then re-tokenize the policy's rollouts (``ClassifierReward(tokenizer=…)``)
        self.own_tokenizer = own_tokenizer
        self._initial_model, self._normalisation_samples = initial_model, normalisation_samples

    def initial_model(self) -> PreTrainedModel:
        """A fresh copy of π_sft on :attr:`device` (InstructGPT initialises its RM from it), or of
        the benchmark's ``reward_model_base`` when it has one."""
        return self._initial_model()

    @cached_property
    def normalisation_rollout(self) -> Rollout:
        """π_sft's samples on the train prompts (4 each, a fixed seed): what a reward model
        normalises its scores on, so that every RM means the same scale to an optimizer."""
        return self._normalisation_samples()

    def progress(self, total: int, desc: str, unit: str = "step"):
        from harness.progress import bar

        return bar(total=total, desc=desc, disable=self.quiet, unit=unit)


class RewardModel(Plugin):
    """A reward-model recipe. The harness asks it what preference data it wants
    (:meth:`preference_request`), has the simulated annotator label exactly that, calls
    :meth:`fit`, measures the fit on held-out preferences, and caches the result under a hash of
    the benchmark, this class's name and config: every algorithm on a benchmark optimizes the
    same r̂."""

    def resolved_config(self, annotation_budget: int, default_k: int) -> Any:
        """This model's config with every "the benchmark's default" value filled in from the
        benchmark's annotation budget and ranking size, so that one experiment has one run spec
        however it was spelt. Default: the config as it is."""
        return self.config

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest:
        """The preference data to fit on, within ``annotation_budget`` pair-equivalents
        (``default_k``: the benchmark's ranking size). Default: that many pairs."""
        return PreferenceRequest(k=2, count=annotation_budget)

    @abc.abstractmethod
    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        """Train on ``ctx.preferences`` and return the fitted model."""

    def save(self, fitted: FittedRewardModel, folder: Path) -> bool:
        """Save ``fitted`` into ``folder`` (the stage cache); return False when there is nothing
        to cache (then every run fits again)."""
        return False

    def load(self, folder: Path, device: torch.device) -> FittedRewardModel | None:
        """Rebuild a fitted model saved by :meth:`save` on ``device``; ``None``: fit again."""
        return None


# -------------------------------------------------------------------------
# optimizers
# -------------------------------------------------------------------------


@dataclass
class TrainContext:
    """What a policy optimizer's ``train`` receives. The gold reward is not in it.

    The models are on :attr:`device` and in eval mode (dropout off, so that sampling and
    training see the same function); gradients flow through ``model`` only. (A *model* is a
    network; a :class:`Policy` is what ``train`` returns: a model with its decoding.)
    """

    model: PreTrainedModel  # the policy being trained: a fresh, trainable copy of π_sft
    ref_model: PreTrainedModel  # π_ref = π_sft, frozen
    tokenizer: PreTrainedTokenizerFast
    reward_model: FittedRewardModel  # the proxy r̂ (every score() call is counted as RM queries)
    train_prompts: list[str]
    generation: GenerationSettings  # the benchmark's sampler: max_new_tokens, temperature
    budget: Budget
    seed: int
    device: torch.device
    run_dir: Path
    log: Callable[[int, dict[str, float]], None]  # log(step, {"loss/policy": ...}): stored curves
    quiet: bool = False
    #: the annotated preferences the optimizer asked for (:meth:`PolicyOptimizer.preference_request`;
    #: offline methods such as DPO learn from them), else ``None``
    preferences: PreferenceData | None = None
    #: seeded with :attr:`seed`: the default source of randomness for sampling and shuffling
    generator: torch.Generator = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.generator is None:
            self.generator = torch.Generator().manual_seed(self.seed)

    def sample(self, prompts: list[str], k: int = 1, *, model=None, stop_at_eos: bool = True) -> Rollout:
        """``k`` responses per prompt from ``model`` (default: :attr:`model`, the policy), prompt i's at rows
        ``i·k … i·k + k − 1``, charged to the budget before sampling (``k · len(prompts)``
        episodes; :class:`BudgetExceeded` when they do not fit). Uses :attr:`generator`.
        ``stop_at_eos=False`` samples exactly ``max_new_tokens`` tokens with EOS as an ordinary token."""
        from harness.lm import sample_batch

        repeated = [p for p in prompts for _ in range(k)]
        self.budget.spend(len(repeated))
        return sample_batch(model if model is not None else self.model, self.tokenizer, repeated, self.generation,
                      self.generator, stop_at_eos=stop_at_eos)  # fmt: skip

    def score(self, rollout: Rollout) -> torch.Tensor:
        """The proxy reward of each row, ``[B]`` float, on the rollout's device (no gradient)."""
        with torch.no_grad():
            return self.reward_model.score(rollout).float().to(rollout.device)

    def log_probs(self, model, rollout: Rollout) -> torch.Tensor:
        """Per-token log π(y_t | x, y_<t) of ``model`` at the sampling temperature, ``[B, Tr]``,
        0 at padding; differentiable (wrap in ``torch.no_grad()`` for π_ref)."""
        from harness.lm import model_log_probs

        return model_log_probs(model, rollout, self.generation.temperature)

    def nll(self, model, rollout: Rollout) -> torch.Tensor:
        """A supervised step's loss: the mean over rows of the per-token negative log-likelihood
        of each response (EOS included) under ``model`` at temperature 1; differentiable."""
        from harness.lm import response_nll

        return response_nll(model, rollout)

    def progress(self, total: int, desc: str):
        """A progress bar over ``total`` units that honours ``--quiet``."""
        from harness.progress import bar

        return bar(total=total, desc=desc, disable=self.quiet)


class PolicyOptimizer(Plugin):
    """An RLHF algorithm. One run: ``train(ctx)`` on the train prompts within ``ctx.budget``
    episodes, returning the final policy."""

    #: Whether :meth:`train` runs on every rank of ``harness run --num-processes N`` (or a
    #: ``torchrun`` / ``accelerate launch``): each rank calls ``train`` with the same context; the
    #: optimizer shards its batches and averages gradients and logged scalars through
    #: :mod:`harness.api.parallel <harness.parallel>` (or through a library that does, as TRL's
    #: trainers do), and counts the budget globally. Rank 0 evaluates and stores; an optimizer left
    #: ``False`` is refused under ``--num-processes`` before anything runs.
    data_parallel: bool = False

    def check_data_parallel(self, n: int) -> None:
        """Raise :class:`UsageError` if this config cannot train on ``n`` processes (a batch that
        does not split evenly). The CLI calls it for every spec before anything runs."""

    @classmethod
    def row_name(cls, config: Any) -> str:
        """The name runs with ``config`` are stored and tabled under: :attr:`name` unless a
        config value makes the run another registered algorithm (``ppo`` with β = 0 is
        ``ppo-nokl``), so that one experiment has one name however it was spelt."""
        return cls.name

    def preference_request(self, annotation_budget: int, default_k: int) -> PreferenceRequest | None:
        """The preference data this algorithm learns from directly (offline methods such as DPO),
        within ``annotation_budget`` pair-equivalents — the same budget, annotator and prompts a
        reward model gets; it reaches :meth:`train` as ``ctx.preferences`` and is charged as
        annotations. Default ``None``: the algorithm learns from the proxy reward model only."""
        return None

    def episodes_per_update(self) -> int:
        """The episodes one update spends (its rollout batch). A budget smaller than that buys no
        update: the harness refuses it before any work starts. Default 0: no minimum (offline
        learners, baselines)."""
        return 0

    @abc.abstractmethod
    def train(self, ctx: TrainContext) -> Policy:
        """Optimize ``ctx.model`` within ``ctx.budget`` and return the final policy."""


# -------------------------------------------------------------------------
# evaluation
# -------------------------------------------------------------------------


class EvalBatch:
    """Samples of the trained policy and of π_sft on the held-out prompts, with everything
    evaluators need computed once, on first use. ``gold`` is r*: evaluators may see it."""

    def __init__(
        self,
        policy: Policy,
        ref_policy: Policy,
        rollout: Rollout,
        ref_rollout: Rollout,
        gold: Callable[[Rollout], torch.Tensor] | None,
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

    @property
    def has_gold(self) -> bool:
        """Whether the benchmark has a gold reward (evaluators with ``needs_gold`` run only then)."""
        return self._gold is not None

    @cached_property
    def gold(self) -> torch.Tensor:
        if self._gold is None:
            raise UsageError("this benchmark has no gold reward r*: an evaluator that reads it must set needs_gold = True")
        return self._gold(self.rollout)

    @cached_property
    def ref_gold(self) -> torch.Tensor:
        if self._gold is None:
            raise UsageError("this benchmark has no gold reward r*: an evaluator that reads it must set needs_gold = True")
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
    higher_is_better: ClassVar[dict[str, bool | None]] = {}
    #: whether it reads ``batch.gold``/``batch.ref_gold``: on a benchmark without a gold reward
    #: it is skipped and its metrics are stored as not measured (NaN, shown as "–").
    needs_gold: ClassVar[bool] = False

    @abc.abstractmethod
    def evaluate(self, batch: EvalBatch) -> dict[str, float]:
        """Namespaced metric values for ``batch``."""


# -------------------------------------------------------------------------
# benchmarks
# -------------------------------------------------------------------------


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
    """A run as lifecycle hooks see it. ``spec`` is its full :class:`harness.running.spec.RunSpec`
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
