"""The embedded benchmark's stages: caching, splits, gold reward and the annotator."""

from __future__ import annotations

import math

import torch
from harness_benchmarks.sentiment import Sentiment

from harness.api import PreferenceItem, PreferenceRequest
from harness.lm import rollout_from_texts, sample_rollout
from harness.pipeline.annotator import annotate, annotated_preferences
from harness.pipeline.cache import StageCache
from harness.pipeline.stages import prepare
from tests.conftest import tiny_sentiment_config


def test_second_prepare_reuses_every_stage(tiny_prepared, cache_dir):
    before = {(e["stage"], e["key"]) for e in StageCache(cache_dir).entries()}
    again = prepare(Sentiment(tiny_sentiment_config()), StageCache(cache_dir), quiet=True)
    assert again.keys == tiny_prepared.keys
    after = {(e["stage"], e["key"]) for e in StageCache(cache_dir).entries()}
    assert after == before


def test_prompt_splits_are_disjoint_and_fixed(tiny_prepared):
    assert not set(tiny_prepared.train_prompts) & set(tiny_prepared.eval_prompts)
    assert len(tiny_prepared.eval_prompts) >= 30
    bench = Sentiment(tiny_sentiment_config())
    import random

    assert bench.prompts(random.Random(7)) == bench.prompts(random.Random(7))


def test_pad_is_outside_the_model_vocabulary(tiny_prepared):
    tok, model = tiny_prepared.tokenizer, tiny_prepared.load_sft()
    assert tok.eos_token_id == 0
    assert tok.pad_token_id == len(tok) - 1 == model.config.vocab_size


def test_samples_stop_at_eos_and_are_padded_after(tiny_prepared):
    rollout = sample_rollout(tiny_prepared.load_sft(), tiny_prepared.tokenizer, tiny_prepared.eval_prompts[:32] * 4,
                             tiny_prepared.generation, torch.Generator().manual_seed(0))
    eos, pad = rollout.eos_id, rollout.pad_id
    for row in rollout.response_ids.tolist():
        if eos in row:
            first = row.index(eos)
            assert all(t == pad for t in row[first + 1 :])
        assert len(row) <= tiny_prepared.generation.max_new_tokens
    assert rollout.ended.float().mean() > 0.5  # π_sft learned to stop


def test_gold_prefers_fluent_positive_text_over_spam(tiny_prepared):
    prompts = ["the movie was"] * 4
    responses = [
        "really wonderful and the acting was great",
        "terrible and the plot was boring",
        "great great great great great great great great great great",
        "wonderful wonderful superb superb amazing amazing",
    ]
    gold = tiny_prepared.judge.gold(rollout_from_texts(tiny_prepared.tokenizer, prompts, responses))
    assert gold[0] > gold[1]  # the intended attribute
    assert gold[0] > gold[2] and gold[0] > gold[3]  # fluency: spam full of positive words scores low


def test_annotator_is_bradley_terry():
    generator = torch.Generator().manual_seed(0)
    gold, tau, trials = torch.tensor([0.3, 0.0]), 0.2, 4000
    wins = sum(annotate(gold, tau, generator)[0] == 0 for _ in range(trials))
    expected = 1 / (1 + math.exp(-(0.3 - 0.0) / tau))
    se = math.sqrt(expected * (1 - expected) / trials)
    assert abs(wins / trials - expected) < 5 * se
    assert annotate(torch.tensor([0.1, 0.5, -0.2]), 0.0, generator) == [1, 0, 2]


def test_preference_items_hide_gold_from_training(tiny_prepared):
    data = annotated_preferences(tiny_prepared, PreferenceRequest(k=2, count=tiny_prepared.config.preference_prompts))
    assert len(data.train) == tiny_prepared.config.preference_prompts and data.train.kind == "pairs"
    assert all(type(item) is PreferenceItem and not hasattr(item, "gold") for item in data.train.items)
    assert all(len(item.responses) == 2 and sorted(item.ranking) == [0, 1] for item in data.train.items)
    assert all(len(item.gold) == 2 for item in data.held_out)
    assert {item.prompt for item in data.train.items} <= set(tiny_prepared.train_prompts)
    assert {item.prompt for item in data.held_out} <= set(tiny_prepared.eval_prompts)
    rollout, rankings = data.train.rollout()  # token ids on demand: item i's responses at rows 2i, 2i + 1
    assert len(rollout) == 2 * len(data.train) and rankings.shape == (len(data.train), 2)
    assert rollout.responses[2] == data.train.items[1].responses[0]


def test_reward_model_learns_the_preferences(tiny_proxy):
    assert tiny_proxy.metrics["rm/gold_accuracy"] > 0.6
    assert tiny_proxy.metrics["rm/spearman"] > 0.3
