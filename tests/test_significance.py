"""The statistics behind `harness leaderboard --baseline` and its intervals, on constructed numbers
(the table that uses them: test_leaderboard.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis import significance as sig
from harness.analysis.intervals import confidence_interval

T_975_2DOF = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))  # Student's t quantile, 2 dof, closed form


# -------------------------------------------------------------------------
# Welch's t over seeds
# -------------------------------------------------------------------------


def test_welch_is_scipys_unequal_variance_test():
    a, b = [1.0, 1.2, 0.9], [0.2, 0.6, -0.1, 0.3]
    result = sig.welch(a, b)
    assert result.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b)) and (result.n, result.n_baseline) == (3, 4)
    assert sig.welch([1.0, math.nan, 2.0], [1.0, 2.0]).n == 2  # NaN (not measured) is dropped


@pytest.mark.parametrize(
    "row, baseline, higher_is_better, expected",
    [
        ([1.0, 1.1, 0.9], [0.0, 0.1, -0.1], True, sig.BETTER),
        ([0.0, 0.1, -0.1], [1.0, 1.1, 0.9], True, sig.WORSE),
        ([1.0, 2.0, 3.0], [1.5, 2.5, 2.0], True, sig.SAME),  # the spread swamps the difference
        # KL: lower is better, so a clearly higher KL is worse and a clearly lower one better
        ([5.0, 5.2, 4.8], [1.0, 1.1, 0.9], False, sig.WORSE),
        ([1.0, 1.1, 0.9], [5.0, 5.2, 4.8], False, sig.BETTER),
        # no known direction (length): only higher or lower
        ([5.0, 5.2, 4.8], [1.0, 1.1, 0.9], None, sig.HIGHER),
        ([1.0, 1.1, 0.9], [5.0, 5.2, 4.8], None, sig.LOWER),
    ],
)
def test_welch_verdicts(row, baseline, higher_is_better, expected):
    result = sig.welch(row, baseline)
    assert sig.verdict(result.difference, result.p, higher_is_better) == expected


def test_welch_needs_two_seeds_a_side():
    assert sig.welch([1.0], [1.0, 2.0, 3.0]) is None
    assert sig.welch([1.0, 2.0, 3.0], [4.0, math.nan]) is None


def test_welch_of_exact_metrics():
    """Sides without spread (best-of-n's analytic KL, π_sft's zero KL): the difference is exact."""
    assert sig.welch([1.204] * 3, [0.0] * 3).p == 0.0
    assert sig.welch([0.5] * 3, [0.5] * 3).p == 1.0
    assert sig.verdict(0.0, 1.0, True) == sig.SAME


def test_holm_bonferroni():
    # sorted: 0.01·4, then max(0.04, 0.02·3), max(0.06, 0.03·2), max(0.06, 0.2·1)
    assert sig.holm([0.03, 0.01, 0.2, 0.02]) == pytest.approx([0.06, 0.04, 0.2, 0.06])
    assert sig.holm([0.9, 0.4]) == pytest.approx([0.9, 0.8]) and sig.holm([]) == []
    assert max(sig.holm([0.5] * 10)) == 1.0  # capped


# -------------------------------------------------------------------------
# paired bootstrap over prompts
# -------------------------------------------------------------------------


def _samples(prompts, values_of, spp: int = 2) -> list[dict]:
    return [{"prompt": p, "response": "r", "gold": float(values_of(i, j))} for i, p in enumerate(prompts) for j in range(spp)]


def test_paired_bootstrap_sees_a_small_consistent_shift_that_welch_with_three_seeds_misses():
    """Prompts differ a lot in difficulty and seeds in luck; the row is better on every prompt by a
    little (0.05), far less than the seeds' spread, so Welch over three seeds cannot tell."""
    rng = np.random.default_rng(3)
    prompts = [f"prompt {i}" for i in range(40)]
    difficulty = rng.normal(0.0, 1.0, len(prompts))
    luck = [-0.3, 0.0, 0.3]  # per seed, the same for both configurations

    def runs(shift):
        return [_samples(prompts, lambda i, j, s=s: difficulty[i] + luck[s] + shift + rng.normal(0, 0.02)) for s in range(3)]

    base, row = runs(0.0), runs(0.05)
    per_seed = lambda rs: [np.mean([x["gold"] for x in r]) for r in rs]
    w = sig.welch(per_seed(row), per_seed(base))
    assert sig.verdict(w.difference, w.p, True) == sig.SAME and w.p > 0.5

    pooled = [sig.pooled_prompt_means([sig.per_prompt_means(r, "gold") for r in rs]) for rs in (row, base)]
    (paired,) = sig.paired_bootstrap([pooled[0][p] - pooled[1][p] for p in prompts])
    assert paired.prompts == 40 and paired.draws == sig.N_BOOT
    assert paired.difference == pytest.approx(0.05, abs=0.01)
    assert 0.0 < paired.lo < 0.05 < paired.hi  # the CI excludes 0
    assert sig.verdict(paired.difference, paired.p, True) == sig.BETTER


def test_paired_bootstrap_is_deterministic_for_a_seed():
    d = np.random.default_rng(0).normal(0.02, 0.1, size=(30, 3))
    first, again = sig.paired_bootstrap(d, seed=5), sig.paired_bootstrap(d, seed=5)
    assert first == again
    other = sig.paired_bootstrap(d, seed=6)
    assert [r.lo for r in other] != [r.lo for r in first]
    # a column's result does not depend on the columns beside it (the resamples come from the seed alone)
    assert sig.paired_bootstrap(d[:, 1], seed=5)[0] == first[1]


def test_paired_bootstrap_interval_and_p_agree():
    no_difference = sig.paired_bootstrap(np.zeros(20))[0]
    assert no_difference.p == 1.0 and no_difference.lo == no_difference.hi == 0.0
    noise = np.random.default_rng(1).normal(0.0, 1.0, 25)
    for column in sig.paired_bootstrap(np.stack([noise, noise + 0.8, noise - 0.8], axis=1)):
        assert (column.p < 0.05) == (column.lo > 0 or column.hi < 0)


def test_enough_bootstrap_draws_for_holm_in_a_large_table():
    for m in (1, 10, 55, 200):
        draws = sig.bootstrap_draws(m)
        assert draws >= sig.N_BOOT
        assert 2 / (draws + 1) <= sig.ALPHA / m / 10  # the smallest p a bootstrap can give clears Holm's strictest bar


def test_per_prompt_means():
    samples = [{"prompt": "a", "ended": True}, {"prompt": "b", "ended": False}, {"prompt": "a", "ended": False}]
    assert sig.per_prompt_means(samples, "ended") == {"a": 0.5, "b": 0.0}
    assert sig.per_prompt_means(samples, "kl") is None  # an older store: no such value
    assert sig.per_prompt_means([{"prompt": "a", "gold": math.nan}], "gold") is None  # not measured
    assert sig.per_prompt_means([], "gold") is None
    assert sig.pooled_prompt_means([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 0.0}]) == {"a": 2.0, "b": 1.0}
    assert sig.pooled_prompt_means([{"a": 1.0}, {"b": 1.0}]) is None  # seeds on different prompts
    assert sig.pooled_prompt_means([{"a": 1.0}, None]) is None


# -------------------------------------------------------------------------
# intervals
# -------------------------------------------------------------------------


def test_rate_interval_stays_in_its_range():
    values = [0.01, 0.02, 0.9]
    _, t_lo, t_hi, _ = sig.t_interval(values)
    assert t_lo < 0 and t_hi > 1  # the t-interval leaves [0, 1] (the reported 0.315 ± 1.232 kind)
    mean, lo, hi, n, method = sig.interval(values, (0.0, 1.0))
    assert method == sig.WILSON and n == 3 and mean == pytest.approx(0.31)
    assert 0.0 <= lo < mean < hi <= 1.0
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(2, 6))
        x = rng.choice([0.0, 1.0, 0.5, 0.999, 0.001], size=k) if rng.random() < 0.3 else rng.beta(0.3, 0.3, size=k)
        mean, lo, hi, _, _ = sig.interval(x, (0.0, 1.0))
        assert 0.0 <= lo <= mean <= hi <= 1.0


def test_rate_interval_is_the_t_interval_when_the_spread_is_small():
    values = [0.50, 0.51, 0.49, 0.505]
    _, lo, hi, _, _ = sig.interval(values, (0.0, 1.0))
    _, t_lo, t_hi, _ = sig.t_interval(values)
    assert lo == pytest.approx(t_lo, abs=1e-4) and hi == pytest.approx(t_hi, abs=1e-4)
    assert sig.interval([1.0, 1.0, 1.0], (0.0, 1.0))[1:3] == (1.0, 1.0)  # every response ended: no spread
    assert sig.interval([0.2, 1.5, 0.3], (0.0, 1.0))[4] == sig.T_INTERVAL  # not a rate after all: said so


def test_unbounded_metrics_keep_the_t_interval():
    values = [1.0, 2.0, 3.0]
    mean, lo, hi, n, method = sig.interval(values, None)
    assert method == sig.T_INTERVAL and (mean, n) == (2.0, 3)
    assert (lo, hi) == (
        pytest.approx(2.0 - T_975_2DOF / math.sqrt(3), rel=1e-12),
        pytest.approx(2.0 + T_975_2DOF / math.sqrt(3), rel=1e-12),
    )
    m, half, _ = confidence_interval(values)  # the leaderboard's own t-interval
    assert (lo, hi) == (pytest.approx(m - half, rel=1e-12), pytest.approx(m + half, rel=1e-12))
    assert all(math.isnan(v) for v in sig.interval([1.0], None)[1:3])  # one seed: no interval


def test_non_negative_metrics_are_cut_at_zero():
    _, lo, hi, _, method = sig.interval([0.1, 0.2, 0.6], (0.0, None))
    assert method == sig.T_CUT and lo == 0.0 and hi == pytest.approx(0.3 + T_975_2DOF * math.sqrt(0.07 / 3))
    assert sig.interval([5.0, 6.0, 7.0], (0.0, None))[1:3] == sig.t_interval([5.0, 6.0, 7.0])[1:3]  # far from 0: unchanged
