"""The arithmetic benchmark: its verifiable gold reward on hand-written responses, the prompt
split, the corpus noise rates, and one tiny real pipeline build."""

from __future__ import annotations

import random

import pytest
import torch
from harness_benchmarks.arithmetic import (
    FILLERS,
    Arithmetic,
    ArithmeticConfig,
    answer,
    parse_number,
    parse_problem,
    spell,
)

from harness.api import PreferenceRequest
from harness.lm import sample_rollout
from harness.pipeline.annotator import annotated_preferences
from harness.pipeline.cache import StageCache
from harness.pipeline.stages import prepare


def gold_of(cases: list[tuple[str, str, bool]], config: ArithmeticConfig | None = None) -> list[float]:
    gold = Arithmetic(config or ArithmeticConfig()).gold_reward(judge=None)
    prompts, responses, ended = zip(*cases)
    scores = gold(list(prompts), list(responses), torch.tensor(ended))
    assert scores.dtype == torch.float32 and scores.shape == (len(cases),)
    return scores.tolist()


def test_spell_and_parse_round_trip_including_negatives():
    for n in [0, 7, 10, 82, 198, -1, -33, -99]:
        assert parse_number(spell(n)) == n
    assert spell(82) == "8 2" and spell(-33) == "- 3 3" and spell(0) == "0"
    assert parse_problem("3 7 + 4 5 =") == (37, "+", 45)
    assert answer("1 2 - 4 5 =") == -33 and answer("0 - 0 =") == 0


@pytest.mark.parametrize("text", ["", "0 8", "- 0", "-", "8 2 ok", "um 8 2", "82", "8 - 2", "<unk>", "- - 3", "8 2 ="])
def test_non_canonical_numbers_do_not_parse(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("prompt", ["3 7 + 4 5", "3 7 4 5 =", "3 + - 4 =", "0 3 + 4 =", "a + 4 ="])
def test_bad_prompts_raise(prompt):
    with pytest.raises(ValueError):
        answer(prompt)


def test_gold_tiers():
    c = ArithmeticConfig()
    scores = gold_of(
        [
            ("3 7 + 4 5 =", "8 2", True),  # exact
            ("1 2 - 4 5 =", "- 3 3", True),  # exact, negative
            ("9 9 + 9 9 =", "1 9 8", True),  # exact, three digits
            ("3 7 + 4 5 =", "8 3", True),  # off by one
            ("3 7 + 4 5 =", "8 7", True),  # off by five
            ("3 7 + 4 5 =", "7 2", True),  # off by ten
            ("3 7 + 4 5 =", "1 2", True),  # far off
            ("1 2 - 4 5 =", "3 3", True),  # sign lost: off by 66
            ("3 7 + 4 5 =", "8 2 ok", True),  # right number, filler word
            ("3 7 + 4 5 =", "0 8 2", True),  # leading zero
            ("3 7 + 4 5 =", "", True),  # empty
            ("3 7 + 4 5 =", "8 2", False),  # right digits but no EOS
            ("3 7 + 4 5 =", "8 2 8 2 8 2", False),
        ]
    )
    malformed, unfinished = -c.malformed_penalty, -c.unfinished_penalty
    near = lambda err: c.format_credit + c.closeness_credit * max(0.0, 1 - err / c.error_scale)  # noqa: E731
    expected = [1.0, 1.0, 1.0, near(1), near(5), near(10), near(70), near(66), malformed, malformed, malformed, unfinished, unfinished]
    assert scores == pytest.approx(expected)
    # the tiers are ordered: exact > any wrong number > malformed > unfinished, closer > farther
    assert scores[0] > scores[3] > scores[4] > scores[5] == scores[6] > malformed > unfinished
    assert scores[6] == pytest.approx(c.format_credit)


def test_gold_follows_its_config():
    c = ArithmeticConfig(format_credit=0.1, closeness_credit=0.0, malformed_penalty=2.0, unfinished_penalty=3.0)
    assert gold_of([("4 + 5 =", "9", True), ("4 + 5 =", "8", True), ("4 + 5 =", "ok", True), ("4 + 5 =", "9", False)], c) == pytest.approx(
        [1.0, 0.1, -2.0, -3.0]
    )
    with pytest.raises(ValueError):
        ArithmeticConfig(format_credit=0.6, closeness_credit=0.5)  # a wrong answer could tie an exact one
    with pytest.raises(ValueError):
        ArithmeticConfig(operations="*")
    with pytest.raises(ValueError):
        ArithmeticConfig(max_operand=99, max_new_tokens=3)  # "1 9 8" + EOS needs 4


def test_split_is_disjoint_deterministic_and_sized():
    bench = Arithmetic(ArithmeticConfig())
    train, held_out = bench.prompts(random.Random(0))
    assert not set(train) & set(held_out)
    assert len(set(train)) == len(train) and len(set(held_out)) == len(held_out)
    assert sorted(train + held_out) == sorted(bench.problems())
    assert 100 <= len(held_out) and 0.2 <= len(held_out) / (len(train) + len(held_out)) <= 0.25
    # a function of the benchmark seed, not of the rng handed in
    assert Arithmetic(ArithmeticConfig()).prompts(random.Random(1)) == (train, held_out)
    other = Arithmetic(ArithmeticConfig(seed=7)).prompts(random.Random(0))
    assert other != (train, held_out) and sorted(other[0] + other[1]) == sorted(train + held_out)


def test_sft_uses_train_prompts_only():
    bench = Arithmetic(ArithmeticConfig(sft_size=2000))
    train, held_out = bench.prompts(random.Random(0))
    prompts = {p for p, _ in bench.sft_pairs(random.Random(1))}
    assert prompts <= set(train) and not prompts & set(held_out)


@pytest.mark.parametrize("error_rate, filler_rate", [(0.15, 0.1), (0.0, 0.0), (0.5, 0.3)])
def test_corpus_noise_rates(error_rate, filler_rate):
    config = ArithmeticConfig(corpus_size=6000, corpus_error_rate=error_rate, corpus_filler_rate=filler_rate)
    lines = Arithmetic(config).corpus(random.Random(0))
    assert len(lines) == 6000
    kinds = {"exact": 0, "wrong": 0, "filler": 0}
    for line in lines:
        prompt, response = line.split(" = ")
        value = parse_number(response)
        if value is None:
            assert len(set(response.split()) & set(FILLERS)) == 1 and parse_number(" ".join(w for w in response.split() if w not in FILLERS)) == answer(prompt + " =")
            kinds["filler"] += 1
        else:
            assert 1 <= abs(value - answer(prompt + " =")) <= 10 or value == answer(prompt + " =")
            kinds["exact" if value == answer(prompt + " =") else "wrong"] += 1
    tolerance = 0.025  # ~3 standard errors at n = 6000
    assert kinds["wrong"] / 6000 == pytest.approx(error_rate, abs=tolerance)
    assert kinds["filler"] / 6000 == pytest.approx(filler_rate, abs=tolerance)
    assert Arithmetic(config).corpus(random.Random(0)) == lines  # deterministic


def test_tiny_pipeline_build_and_gold(tmp_path):
    config = ArithmeticConfig(
        max_operand=9, corpus_size=500, sft_size=200, preference_prompts=64, preference_eval_prompts=16, max_new_tokens=4
    )
    art = prepare(Arithmetic(config), StageCache(tmp_path), quiet=True)
    assert art.judge_dir is None and art.generation.max_new_tokens == 4
    assert not set(art.train_prompts) & set(art.eval_prompts) and len(art.eval_prompts) == 44
    # the vocabulary is tiny: digits, operators, "=", the fillers, and the special tokens
    assert set(art.tokenizer.get_vocab()) == {str(d) for d in range(10)} | {"+", "-", "="} | set(FILLERS) | {"<eos>", "<unk>", "<pad>"}
    rollout = sample_rollout(art.load_sft(), art.tokenizer, art.eval_prompts, art.generation, torch.Generator().manual_seed(0))
    gold = art.judge.gold(rollout)
    assert gold.shape == (len(art.eval_prompts),) and ((gold >= -config.unfinished_penalty) & (gold <= 1)).all()
    prefs = annotated_preferences(art, PreferenceRequest(k=2, count=config.preference_prompts))
    assert len(prefs.train) == 64 and len(prefs.held_out) == 16
    for item in prefs.held_out:  # the annotator saw exactly this gold
        assert item.gold == pytest.approx(gold_of([(item.prompt, r, e) for r, e in zip(item.responses, item.ended)], config))
