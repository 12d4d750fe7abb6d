"""The proxy reward model of a run: the preference data the RM asks for, labelled by the
simulated annotator, the fit (cached: every algorithm on a benchmark optimizes the same r̂), and
its held-out quality, measured here against gold — the RM plugin never sees gold.

Also the gold oracle, ``--reward-model gold``: r* itself used as the reward an optimizer sees, an
upper bound that tables mark as such. It is built here from the judge, not by plugin code.

Layer: running. Imports harness.api, harness.config, harness.errors, the LM toolkit and the
pipeline (annotator, cache, stages).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from scipy.stats import spearmanr

from harness import hookimpl
from harness.api import (
    FittedRewardModel,
    PolicyOptimizer,
    PreferenceData,
    PreferenceRequest,
    RewardFitContext,
    RewardModel,
    Rollout,
)
from harness.api.budget import already_counted
from harness.config import config_dict, config_hash, help_field
from harness.errors import UsageError
from harness.fingerprint import source_fingerprint
from harness.lm import items_rollout, load_causal_lm, load_pretrained_tokenizer, sample_rollout
from harness.pipeline.annotator import AnnotatedItem, annotated_preferences
from harness.pipeline.stages import PreparedBenchmark

#: bump when fitting or the held-out RM metrics change (fits are deterministic: same weights)
REWARD_CODE_VERSION = 3


# -------------------------------------------------------------------------
# the gold oracle
# -------------------------------------------------------------------------


@dataclass
class GoldConfig:
    normalise: bool = help_field(
        "rescale r* to mean 0, std 1 on π_sft samples, as the learned RMs are, so a KL coefficient weighs the same", True
    )


class GoldOracle(RewardModel):
    """Registered so that ``--reward-model gold`` and its flags exist; built by :func:`fit_proxy`
    from the judge, never through :meth:`fit` (a reward-model plugin gets no path to r*)."""

    name = "gold"
    description = "the gold reward r* itself: an oracle upper bound, not a fair comparison"
    Config = GoldConfig
    is_oracle = True

    def fit(self, ctx: RewardFitContext) -> FittedRewardModel:
        raise TypeError("the gold oracle is built by the harness from the judge (harness.running.reward_fit.fit_proxy)")


class GoldScores(FittedRewardModel):
    is_oracle = True

    def __init__(self, gold, gain: float = 1.0, bias: float = 0.0):
        self.gold, self.gain, self.bias = gold, gain, bias
        self.metrics = {}

    def score(self, rollout: Rollout) -> torch.Tensor:
        return self.gain * self.gold(rollout).to(rollout.device) + self.bias


@hookimpl
def harness_register_reward_models(registry):
    registry.add(GoldOracle)


# -------------------------------------------------------------------------
# fitting
# -------------------------------------------------------------------------


def _sft_samples(sft_dir: Path, device, tokenizer, prompts: list[str], generation, seed: int) -> Rollout:
    """π_sft's samples on the train prompts, 4 each: what every reward model is normalised on."""
    return sample_rollout(load_causal_lm(sft_dir, device), tokenizer, prompts * 4, generation, torch.Generator().manual_seed(seed), fast=False)


def normalisation_samples(prepared: PreparedBenchmark):
    """A callable that samples them (it holds paths and prompts, nothing of the judge)."""
    return partial(_sft_samples, prepared.sft_dir, prepared.device, prepared.tokenizer, list(prepared.train_prompts),
                   prepared.generation, prepared.config.seed + 5)  # fmt: skip


def preference_request(plugin: RewardModel | PolicyOptimizer, prepared: PreparedBenchmark) -> PreferenceRequest | None:
    """What preference data ``plugin`` (a reward model, or an optimizer that learns from
    preferences directly) asks for at the benchmark's annotation budget, checked."""
    c = prepared.config
    request = plugin.preference_request(annotation_budget=c.preference_prompts, default_k=c.ranking_k)
    if request is not None and (not 2 <= request.k <= 9 or request.count < 1):
        raise ValueError(f"{plugin.name!r} asked for {request.count} items of {request.k} responses (K must be 2..9)")
    return request


def optimizer_preferences(algorithm: PolicyOptimizer, prepared: PreparedBenchmark) -> tuple[PreferenceData | None, float]:
    """The train preferences an optimizer asked for (offline methods such as DPO) and their
    annotation cost in pair-equivalents; ``(None, 0)`` when it asked for none. The same
    annotator, prompts and cache as reward models: DPO on pairs sees exactly the pairs the
    ``pairwise`` reward model is fitted on."""
    request = preference_request(algorithm, prepared)
    if request is None:
        return None, 0.0
    data = annotated_preferences(prepared, request)
    return data.train, data.request.cost  # as served: human data may hold fewer items than asked


@dataclass
class ProxyFit:
    """A fitted proxy reward model with what it was fitted on."""

    fitted: FittedRewardModel
    request: PreferenceRequest | None  # None for the oracle


#: the file a reward-model stage holds when the model's ``save`` cached nothing
NOTHING_SAVED = "nothing_saved.txt"


def fit_proxy(rm: RewardModel, prepared: PreparedBenchmark, device: torch.device) -> ProxyFit:
    """The proxy reward model ``rm`` for ``prepared``, from the cache when it was fitted before
    (keyed by the benchmark's stages and settings, the RM's name and config)."""
    if type(rm) is GoldOracle:
        return ProxyFit(_gold_scores(prepared, rm.config.normalise), None)
    request = preference_request(rm, prepared)
    data = annotated_preferences(prepared, request)
    base = prepared.config.reward_model_base
    resolved = config_dict(rm.resolved_config(prepared.config.preference_prompts, prepared.config.ranking_k))
    key_parts = ["reward_model", REWARD_CODE_VERSION, rm.name, resolved, prepared.keys, data.key]
    if base:  # only when set, so that the reward models of the embedded benchmarks keep their keys
        key_parts.append({"reward_model_base": base, "fingerprint": source_fingerprint(base)})
    key = config_hash(*key_parts)
    holder: dict[str, FittedRewardModel] = {}

    def build(folder: Path) -> None:
        if base:  # the RM starts from another model, which reads the texts with its own tokenizer
            tokenizer = load_pretrained_tokenizer(base, model=load_causal_lm(base))  # loaded only to fit, never on a cache hit
            preferences = PreferenceData(data.train.items, data.train.k, tokenizer)
        else:
            tokenizer, preferences = prepared.tokenizer, data.train
        ctx = RewardFitContext(
            preferences=preferences,
            tokenizer=tokenizer,
            generation=prepared.generation,
            device=device,
            seed=prepared.config.seed + 4,
            initial_model=partial(load_causal_lm, base or prepared.sft_dir, device),
            normalisation_samples=normalisation_samples(prepared),
            quiet=prepared.quiet,
            own_tokenizer=bool(base),
        )
        fitted = rm.fit(ctx)
        fitted.metrics = {**held_out_metrics(fitted, prepared.tokenizer, data.held_out, device), "rm/train_items": float(len(data.train))}
        if not rm.save(fitted, folder):  # nothing to cache: a later hit must fit again, not load an empty folder
            (folder / NOTHING_SAVED).write_text("the reward model's save() returned False: every run fits it again\n")
        holder["fitted"] = fitted

    folder = prepared.cache.get_or_build("reward_model", key, build, {"name": rm.name, "config": resolved})
    fitted = holder.get("fitted") or (None if (folder / NOTHING_SAVED).exists() else rm.load(folder, device))
    if fitted is None:  # nothing cached: fit again (deterministic)
        build(folder)
        fitted = holder["fitted"]
    return ProxyFit(fitted, data.request)  # as served: human data may hold fewer items than asked


def _gold_scores(prepared: PreparedBenchmark, normalise: bool) -> GoldScores:
    judge = prepared.judge
    if not judge.has_gold:
        raise UsageError(f"--reward-model gold: benchmark {prepared.benchmark.name!r} has no gold reward to use as an oracle")
    if not normalise:
        return GoldScores(judge.gold)
    # The same samples the learned RMs are normalised on (an affine map keeps the optimum).
    gold = judge.gold(normalisation_samples(prepared)())
    std = gold.std().clamp_min(1e-6).item()
    return GoldScores(judge.gold, 1.0 / std, -gold.mean().item() / std)


def held_out_metrics(fitted: FittedRewardModel, tokenizer, items: list[AnnotatedItem], device) -> dict[str, float]:
    """Pairwise accuracy against the annotator's labels and against gold, and Spearman's rank
    correlation of the RM with gold, on held-out (eval-prompt) preference items.

    A pair of identical responses carries no preference, so it is left out of ``rm/accuracy``;
    a pair with equal gold is left out of ``rm/gold_accuracy``. An RM tie counts half."""
    if not items:
        return {}
    rollout, starts = items_rollout(tokenizer, items, device)
    with torch.no_grad():
        scores = fitted.score(rollout).cpu()
    label_hits = label_pairs = gold_hits = gold_pairs = 0.0
    for item, start in zip(items, starts):
        s = scores[start : start + len(item.responses)]
        order, gold = item.ranking, item.gold
        seen = list(zip(item.responses, item.ended))
        for a in range(len(order)):
            for b in range(a + 1, len(order)):
                hi, lo = order[a], order[b]
                agree = 1.0 if s[hi] > s[lo] else 0.5 if s[hi] == s[lo] else 0.0
                if seen[hi] != seen[lo]:
                    label_pairs, label_hits = label_pairs + 1, label_hits + agree
                if gold is not None and gold[hi] != gold[lo]:
                    gold_pairs += 1
                    gold_hits += agree if gold[hi] > gold[lo] else 1.0 - agree
    metrics = {"rm/accuracy": label_hits / label_pairs if label_pairs else float("nan")}
    if all(item.gold is not None for item in items):  # human labels on a benchmark without r*: no gold figures
        gold_all = [g for item in items for g in item.gold]
        metrics["rm/gold_accuracy"] = gold_hits / gold_pairs if gold_pairs else float("nan")
        metrics["rm/spearman"] = float(spearmanr(scores.numpy(), gold_all).statistic)
    return metrics


class CountingRewardModel(FittedRewardModel):
    """The proxy as an optimizer sees it: every :meth:`score` call counts its rows as RM queries,
    and the fit's held-out figures (measured against gold) are left out."""

    def __init__(self, fitted: FittedRewardModel, budget):
        self._fitted = copy.copy(fitted)
        self._fitted.metrics = {}
        self._budget = budget
        self.model, self.is_oracle, self.metrics = fitted.model, fitted.is_oracle, {}
        #: the RM's own tokenizer when it is not the policy's (reward_model_base), else None
        self.tokenizer = getattr(fitted, "tokenizer", None)

    def score(self, rollout: Rollout) -> torch.Tensor:
        self._budget.count_rm_queries(len(rollout))
        with already_counted():  # the toolkit's scorer would count these rows again (harness.api.budget)
            return self._fitted.score(rollout)


def reward_model_rows(models: list[tuple[str, str, RewardModel]], prepared: PreparedBenchmark, device) -> list[dict]:
    """Rows of ``harness reward-models``: each (name, its settings as text, reward model) fitted
    (or loaded) on ``prepared`` → its held-out figures and its annotation cost at the benchmark's
    budget (a K-ranking costs log2(K!) pairs)."""
    rows = []
    for name, settings, rm in models:
        fit = fit_proxy(rm, prepared, device)
        row = {"reward_model": name + (" (oracle)" if fit.fitted.is_oracle else ""), "config": settings}
        if fit.request is not None:
            row.update({"k": fit.request.k, "annotation cost (pairs)": fit.request.cost})
        rows.append({**row, **fit.fitted.metrics})
    return rows

