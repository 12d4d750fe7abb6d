"""Preference data for reward models and offline optimizers: either the simulated annotator —
π_sft's samples ranked by a noisy draw from the gold reward r* (AlpacaFarm's simulated
annotators; Gao et al.'s gold/proxy set-up) — or, when the benchmark has them, real human
preferences. The train split reaches reward models without gold; the held-out split keeps gold
(when there is one) for the harness's own measurement of each fitted RM."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from harness.api import PreferenceData, PreferenceItem, PreferenceRequest
from harness.errors import UsageError
from harness.lm import items_rollout, sample_rollout
from harness.pipeline.stages import PreparedBenchmark, pick_settings, specific_settings, stage_key
from harness.progress import bar


def annotate(gold: torch.Tensor, noise: float, generator: torch.Generator) -> list[int]:
    """A simulated annotator's ranking (indices best → worst) of responses with gold scores
    ``gold``: a Plackett–Luce draw, i.e. sort by r*/τ + Gumbel noise. For two responses this
    is exactly Bradley–Terry: P(a ≻ b) = σ((r*(a) − r*(b)) / τ). τ = 0 is a noiseless judge."""
    if noise == 0:
        return torch.argsort(gold, descending=True, stable=True).tolist()
    uniform = torch.rand(gold.shape, generator=generator, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(uniform))
    return torch.argsort(gold.double() / noise + gumbel, descending=True).tolist()


@dataclass
class AnnotatedItem(PreferenceItem):
    """A held-out item with the gold score of each response (for measuring reward models);
    ``None`` when there is no gold reward (human preferences on a benchmark without r*)."""

    gold: list[float] | None


@dataclass
class AnnotatedPreferences:
    request: PreferenceRequest
    train: PreferenceData  # what the reward model fits on: no gold
    held_out: list[AnnotatedItem]  # on eval prompts, with gold: the harness measures the RM on these
    key: str  # the stage's cache key


def annotated_preferences(prepared: PreparedBenchmark, request: PreferenceRequest) -> AnnotatedPreferences:
    """``request.count`` train items of ``request.k`` responses (π_sft's samples on train prompts)
    and the benchmark's ``preference_eval_prompts`` held-out items on eval prompts, ranked by the
    annotator; cached under π_sft, the judge and every setting the rankings depend on."""
    if prepared.human_preferences is not None:
        return human_preferences(prepared, request)
    config = prepared.config
    cfg = {
        "k": request.k,
        "count": request.count,
        **pick_settings(config, ["preference_eval_prompts", "annotator_noise", "temperature", "max_new_tokens"]),
        **specific_settings(config),  # the gold reward's settings decide the rankings
    }
    key = stage_key(prepared.benchmark, "preferences", prepared.keys["sft"], prepared.keys.get("judge"), cfg)
    folder = prepared.cache.get_or_build("preferences", key, lambda out: _build(prepared, request, out), cfg)
    data = json.loads((folder / "preferences.json").read_text())
    train = [PreferenceItem(item["prompt"], item["responses"], item["ended"], item["ranking"]) for item in data["train"]]
    held_out = [AnnotatedItem(**item) for item in data["eval"]]
    return AnnotatedPreferences(request, PreferenceData(train, request.k, prepared.tokenizer), held_out, key)


def _build(prepared: PreparedBenchmark, request: PreferenceRequest, out: Path) -> None:
    c, k = prepared.config, request.k
    policy, judge = prepared.load_sft(), prepared.judge
    generator = torch.Generator().manual_seed(c.seed + 3)
    rng = random.Random(c.seed + 3)
    result = {}
    splits = [("train", prepared.train_prompts, request.count), ("eval", prepared.eval_prompts, c.preference_eval_prompts)]
    for split, prompts, n_items in splits:
        chosen = [rng.choice(prompts) for _ in range(n_items)]
        items = []
        chunk = max(1, 1024 // k)
        with bar(n_items, f"annotate {split} {request.kind}", disable=prepared.quiet) as progress:
            for start in range(0, n_items, chunk):
                group = chosen[start : start + chunk]
                rollout = sample_rollout(policy, prepared.tokenizer, [p for p in group for _ in range(k)], prepared.generation, generator, fast=False)
                gold = judge.gold(rollout).view(len(group), k)
                texts, ended = rollout.responses, rollout.ended.view(len(group), k).tolist()
                for i, prompt in enumerate(group):
                    ranking = annotate(gold[i], c.annotator_noise, generator)
                    items.append(asdict(AnnotatedItem(prompt, texts[i * k : (i + 1) * k], ended[i], ranking, gold[i].tolist())))
                progress.update(len(group))
        result[split] = items
    (out / "preferences.json").write_text(json.dumps(result))


def human_preferences(prepared: PreparedBenchmark, request: PreferenceRequest) -> AnnotatedPreferences:
    """``request`` served from the benchmark's human preferences: a seeded shuffle, the first
    ``preference_eval_prompts`` records held out (the same records whatever K, so that reward
    models asking for different K are measured on the same conversations), at most
    ``request.count`` train items from the rest. An item of more than K responses gives K of them
    chosen at random, in their human order (a sub-ranking of a ranking is a ranking); items with
    fewer are skipped. Prompts longer than ``max_positions − max_new_tokens`` tokens are skipped,
    and responses are cut to ``max_new_tokens`` tokens (then they count as not ended), as the
    policy's own would be. Held-out items get gold scores when the benchmark has a gold reward."""
    config, k = prepared.config, request.k
    raw = json.loads(prepared.human_preferences.read_text())
    random.Random(config.seed + 3).shuffle(raw)
    held_out = _human_items(prepared, raw[: config.preference_eval_prompts], k, random.Random(config.seed + 4))
    train = _human_items(prepared, raw[config.preference_eval_prompts :], k, random.Random(config.seed + 5))[: request.count]
    if not train:
        raise UsageError(f"benchmark {prepared.benchmark.name}: no human {request.kind} left for training: of "
                         f"{len(raw) - config.preference_eval_prompts} records after {config.preference_eval_prompts} held out, none "
                         f"has ≥ {k} responses and a prompt that fits; lower preference_eval_prompts or ask for pairs")  # fmt: skip
    judge = prepared.judge
    if judge.has_gold and held_out:
        rollout, starts = items_rollout(prepared.tokenizer, held_out, "cpu")
        gold = judge.gold(rollout).tolist()
        for item, start in zip(held_out, starts):
            item.gold = gold[start : start + len(item.responses)]
    plain = [PreferenceItem(i.prompt, i.responses, i.ended, i.ranking) for i in train]
    gold_cfg = {name: getattr(config, name) for name in prepared.benchmark.gold_settings}  # held-out gold depends on them
    key = stage_key(prepared.benchmark, "preferences", prepared.keys["data"], "human", k, request.count, gold_cfg,
                    pick_settings(config, ["preference_eval_prompts", "max_new_tokens", "max_positions"]))  # fmt: skip
    served = PreferenceRequest(k=k, count=len(train))
    return AnnotatedPreferences(served, PreferenceData(plain, k, prepared.tokenizer), held_out, key)


def _human_items(prepared: PreparedBenchmark, records: list[dict], k: int, rng: random.Random) -> list[AnnotatedItem]:
    """``records`` as items of ``k`` responses, fitted to the benchmark's lengths (see above)."""
    config, tokenizer = prepared.config, prepared.tokenizer
    room, limit = config.max_positions - config.max_new_tokens, config.max_new_tokens
    items = []
    for record in records:
        if len(record["responses"]) < k or len(tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]) > room:
            continue
        keep = sorted(rng.sample(range(len(record["responses"])), k))
        order = [keep.index(i) for i in record["ranking"] if i in keep]
        texts, ended = [], []
        for i in keep:
            ids = tokenizer(record["responses"][i], add_special_tokens=False)["input_ids"]
            texts.append(tokenizer.decode(ids[:limit]) if len(ids) >= limit else record["responses"][i])
            ended.append(bool(record["ended"][i]) and len(ids) < limit)  # EOS must fit too
        items.append(AnnotatedItem(record["prompt"], texts, ended, order, None))
    return items
