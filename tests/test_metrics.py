"""The evaluate modules, through evaluate.load on the local folders."""

from __future__ import annotations

import doctest
import importlib
import math

import pytest

from harness_plugins.metrics import load_metric


@pytest.mark.parametrize("name", ["distinct_n", "win_rate", "mean_score"])
def test_docstring_examples(name):
    module = importlib.import_module(f"harness_plugins.metrics.{name}.{name}")
    test = doctest.DocTestParser().get_doctest(module._KWARGS, dict(vars(module)), name, module.__file__, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.tries >= 1 and runner.failures == 0


def test_win_rate_counts_ties_half():
    metric = load_metric("win_rate")
    assert metric.compute(predictions=[1, 1, 0, 2], references=[0, 1, 1, 2])["win_rate"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)


def test_distinct_n_and_mean():
    assert load_metric("distinct_n").compute(predictions=["a a a a"]) == {"distinct_1": 0.25, "distinct_2": 1 / 3}
    stats = load_metric("mean_score").compute(predictions=[2.0])
    assert stats["mean"] == 2.0 and math.isnan(stats["stderr"])


def test_unknown_metric():
    with pytest.raises(ValueError, match="no metric module"):
        load_metric("nope")
