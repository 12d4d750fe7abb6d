"""The ``review-rules`` benchmark: its gold reward is a verifier — the grammar's parser and its
polarity rules — so every score can be checked by hand."""

from __future__ import annotations

import random

import pytest
import torch
from harness_benchmarks.review_rules import ReviewParser, ReviewRules, ReviewRulesConfig, gold_score

from harness.plugin_manager import load_plugins


@pytest.fixture(scope="module")
def benchmark() -> ReviewRules:
    return ReviewRules(ReviewRulesConfig())


@pytest.fixture(scope="module")
def parser(benchmark) -> ReviewParser:
    return ReviewParser(benchmark.grammar.adjectives)


def test_every_review_the_grammar_writes_parses(benchmark, parser):
    rng = random.Random(0)
    reviews = [benchmark.grammar.review(rng) for _ in range(3000)]
    assert all(parser.parse(review) is not None for review in reviews)


@pytest.mark.parametrize(
    "text, polarities",
    [
        ("the movie was great", [1]),
        ("the movie was not great", [-1]),  # negation flips
        ("honestly the plot is very dull", [-1]),  # an opener, a booster
        ("in short i loved the camera work but the ending felt awful and boring", [1, -1]),
        ("the cast seemed long", [0]),  # neutral adjective
        ("the movie was great great", None),  # no "and" between adjectives
        ("the movie was great and", None),  # an unfinished clause
        ("great movie", None),
        ("the movie was great the plot was good", None),  # clauses need a connector
        ("perfect felt perfect", None),
        ("", None),
    ],
)
def test_the_parser_reads_clause_polarities_and_refuses_what_the_grammar_cannot_write(parser, text, polarities):
    assert parser.parse(text) == polarities


def test_gold_is_the_rules(parser):
    config = ReviewRulesConfig()
    assert gold_score(parser, "the movie was", "great", True, config) == 1.0
    assert gold_score(parser, "the movie was", "great but the plot was awful", True, config) == 0.5
    assert gold_score(parser, "the movie was", "great", False, config) == -1.0  # no EOS
    assert gold_score(parser, "the movie was", "great great great", True, config) == -0.5  # ungrammatical
    assert gold_score(parser, "the movie was", "great great great", True, ReviewRulesConfig(ungrammatical_penalty=2.0)) == -2.0


def test_the_benchmark_is_registered_and_scores_a_batch(benchmark):
    host = load_plugins()
    assert host.benchmarks.get("review-rules").cls is ReviewRules
    gold = benchmark.gold_reward(judge=None)
    scores = gold(["the plot was", "the plot was"], ["wonderful", "wonderful wonderful"], torch.tensor([True, True]))
    assert scores.tolist() == [1.0, -0.5]
    train, held_out = benchmark.prompts(random.Random(0))
    assert train and held_out and not set(train) & set(held_out)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="positive_rate must be in"):
        ReviewRulesConfig(positive_rate=1.5)
