"""Gao et al. overoptimization fits: known α, β come back, peaks are analytic, bad input is
refused with a reason, and the table survives one seed, NaN, inf and hostile names."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
import pytest

from harness.analysis.fits import FitRefused, fit_best_of_n, fit_rl, fit_table
from harness.errors import UsageError
from harness.reports.fit_table import render_fit_table

RL = (0.6, 0.3)  # d* = e, KL* = e²
BON = (1.0, 0.25)  # d* = 2, KL* = 4
EPISODES = np.arange(0, 1100, 100, dtype=float)
NS = 2.0 ** np.arange(10)  # 1 … 512


def rl_gain(d, alpha, beta):
    d = np.asarray(d, dtype=float)
    return np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1.0))), 0.0)


def bon_gain(d, alpha, beta):
    return d * (alpha - beta * d)


def trajectories(kind, params, seeds, rng, noise=0.02, benchmark="sentiment", config=None):
    """A trajectory frame: per seed a random gold offset (the baseline), then gains from the form
    plus noise; the d = 0 point has no noise."""
    rows = []
    for s in seeds:
        g0 = rng.normal(0.0, 0.3)
        if kind == "rl":
            for ep in EPISODES:
                d = 3.5 * ep / EPISODES[-1]
                r = rl_gain(d, *params) + (noise * rng.normal() if d > 0 else 0.0)
                rows.append({"episodes": ep, "n": math.nan, "kl": d * d, "gold": g0 + r})
        else:
            for n in NS:
                kl = math.log(n) - (n - 1) / n  # best-of-n's analytic KL
                r = bon_gain(math.sqrt(kl), *params) + (noise * rng.normal() if n > 1 else 0.0)
                rows.append({"episodes": math.nan, "n": n, "kl": kl, "gold": g0 + r})
        for row in rows[-(len(EPISODES) if kind == "rl" else len(NS)) :]:
            row |= {"benchmark": benchmark, "config": config or kind, "seed": s, "kind": kind, "proxy": 0.0}
    frame = pd.DataFrame(rows)
    frame["d"] = np.sqrt(frame["kl"].clip(lower=0))
    return frame


def pooled(frame, kind):
    """(d, gain) of every non-baseline point, as fit_table would pool them."""
    zero = frame["episodes"].eq(0) if kind == "rl" else frame["n"].eq(1)
    base = frame[zero].set_index("seed")["gold"]
    rest = frame[~zero]
    return rest["d"].to_numpy(), (rest["gold"] - rest["seed"].map(base)).to_numpy()


# -------------------------------------------------------------------------
# the fits
# -------------------------------------------------------------------------


@pytest.mark.parametrize("kind, fit, params", [("rl", fit_rl, RL), ("best-of-n", fit_best_of_n, BON)])
def test_noisy_points_from_several_seeds_give_back_alpha_and_beta(kind, fit, params):
    d, r = pooled(trajectories(kind, params, range(6), np.random.default_rng(0)), kind)
    got = fit(d, r)
    assert got.form == kind
    assert got.alpha == pytest.approx(params[0], abs=0.02)
    assert got.beta == pytest.approx(params[1], abs=0.02)
    assert got.n_points == len(d)
    residual = r - (rl_gain(d, got.alpha, got.beta) if kind == "rl" else bon_gain(d, got.alpha, got.beta))
    assert got.r2 == pytest.approx(1 - np.sum(residual**2) / np.sum((r - r.mean()) ** 2))  # against the mean of r
    assert 0.97 < got.r2 < 1.0


def test_clean_points_peak_where_the_algebra_says():
    d = np.linspace(0.2, 4.0, 12)
    rl = fit_rl(d, rl_gain(d, *RL))
    assert (rl.alpha, rl.beta) == pytest.approx(RL, abs=1e-10)
    assert rl.d_peak == pytest.approx(math.e)  # exp(α/β − 1) = exp(1)
    assert rl.kl_peak == pytest.approx(math.e**2)
    assert rl.r2 == pytest.approx(1.0, abs=1e-12)
    bon = fit_best_of_n(d, bon_gain(d, *BON))
    assert bon.d_peak == pytest.approx(2.0)  # α / 2β
    assert bon.kl_peak == pytest.approx(4.0)
    assert bon.r2 == pytest.approx(1.0, abs=1e-12)


def test_d_zero_points_neither_break_nor_move_the_rl_fit():
    d = np.linspace(0.2, 4.0, 12)
    r = rl_gain(d, *RL)
    with_zeros = fit_rl(np.r_[0.0, 0.0, d], np.r_[0.0, 0.0, r])  # d log d → 0, not 0 · −inf
    assert (with_zeros.alpha, with_zeros.beta) == pytest.approx(RL, abs=1e-10)
    assert with_zeros.n_points == 14


@pytest.mark.parametrize("fit, gain, beta", [(fit_rl, rl_gain, 0.0), (fit_rl, rl_gain, -0.2), (fit_best_of_n, bon_gain, -0.1)])
def test_beta_at_most_zero_has_no_peak(fit, gain, beta):
    d = np.linspace(0.2, 4.0, 12)
    got = fit(d, gain(d, 0.5, beta) + np.linspace(0, 1e-9, 12))
    assert got.d_peak == math.inf and got.kl_peak == math.inf


def test_a_best_of_n_gain_that_only_falls_peaks_at_zero():
    d = np.linspace(0.2, 4.0, 12)
    got = fit_best_of_n(d, bon_gain(d, -0.2, 0.1))  # vertex at d = −1: over d ≥ 0 the best is d = 0
    assert (got.d_peak, got.kl_peak) == (0.0, 0.0)


@pytest.mark.parametrize(
    "d, r, reason",
    [
        ([0.0, 0.5, 1.0], [0.0, 0.1, 0.2], r"2 points with d > 0, need ≥ 3"),
        ([1.5, 1.5, 1.5, 1.5], [0.1, 0.2, 0.1, 0.2], r"single distinct d > 0"),
        ([0.5, 1.0, 1.5, 2.0], [0.1, math.nan, 0.2, 0.3], r"1 of 4 points have a non-finite"),
        ([0.5, math.inf, 1.5, 2.0], [0.1, 0.2, 0.2, 0.3], r"non-finite"),
        ([0.5, -1.0, 1.5, 2.0], [0.1, 0.2, 0.2, 0.3], r"cannot be negative"),
    ],
)
@pytest.mark.parametrize("fit", [fit_rl, fit_best_of_n])
def test_fits_that_cannot_be_made_are_refused_with_the_reason(fit, d, r, reason):
    with pytest.raises(FitRefused, match=reason) as exc:
        fit(d, r)
    assert isinstance(exc.value, UsageError)  # the CLI prints it as one line


# -------------------------------------------------------------------------
# the table
# -------------------------------------------------------------------------


def test_bootstrap_interval_covers_the_truth_and_is_deterministic():
    rng = np.random.default_rng(1)
    frame = pd.concat([trajectories("rl", RL, range(10), rng, noise=0.05),
                       trajectories("best-of-n", BON, range(10), rng, noise=0.05)])  # fmt: skip
    table = fit_table(frame, n_boot=300, seed=3).set_index("kind")
    truth = {"rl": (*RL, math.e, math.e**2), "best-of-n": (*BON, 2.0, 4.0)}
    for kind, values in truth.items():
        row = table.loc[kind]
        assert row["seeds"] == 10 and row["boot_refused"] == 0 and row["note"] == ""
        for q, true in zip(("alpha", "beta", "d_peak", "kl_peak"), values):
            assert row[f"{q}_lo"] <= true <= row[f"{q}_hi"], q
            assert row[f"{q}_lo"] <= row[q] <= row[f"{q}_hi"], q
    again = fit_table(frame, n_boot=300, seed=3).set_index("kind")
    pd.testing.assert_frame_equal(table, again)
    other = fit_table(frame, n_boot=300, seed=4).set_index("kind")
    assert other.loc["rl", "alpha_lo"] != table.loc["rl", "alpha_lo"]
    # a row's interval does not depend on which other configs share the frame
    alone = fit_table(frame[frame["kind"] == "rl"], n_boot=300, seed=3).set_index("kind")
    pd.testing.assert_series_equal(alone.loc["rl"], table.loc["rl"])


def test_one_seed_gets_a_fit_but_no_interval():
    table = fit_table(trajectories("rl", RL, [7], np.random.default_rng(2)), n_boot=100)
    row = table.iloc[0]
    assert row["alpha"] == pytest.approx(RL[0], abs=0.05)
    assert all(math.isnan(row[c]) for c in ("alpha_lo", "beta_hi", "d_peak_lo", "kl_peak_hi", "boot_refused"))
    assert "1 seed: no CI" in row["note"]


def test_a_seed_without_its_d_zero_point_refuses_that_config_only():
    rng = np.random.default_rng(3)
    broken = trajectories("rl", RL, range(3), rng, config="ppo")
    broken = broken[~((broken["seed"] == 2) & (broken["episodes"] == 0))]
    frame = pd.concat([broken, trajectories("best-of-n", BON, range(3), rng)])
    table = fit_table(frame, n_boot=50).set_index("config")
    assert "seed 2 without a d = 0 point (episodes = 0)" in table.loc["ppo", "note"]
    assert math.isnan(table.loc["ppo", "alpha"])
    assert table.loc["best-of-n", "alpha"] == pytest.approx(BON[0], abs=0.05)


def test_an_offline_learners_final_point_is_not_its_baseline():
    """DPO spends no episodes: its final policy is stored at episodes 0 too, but with KL > 0. It
    is a point to fit, not π_sft — and one such point per seed is too few to fit."""
    rows = []
    for seed in range(3):
        rows += [{"episodes": 0.0, "n": math.nan, "kl": 0.0, "gold": 0.3, "seed": seed},
                 {"episodes": 0.0, "n": math.nan, "kl": 2.0, "gold": 0.6, "seed": seed}]  # fmt: skip
    frame = pd.DataFrame(rows).assign(benchmark="sentiment", config="dpo", kind="rl", proxy=0.0)
    frame["d"] = np.sqrt(frame["kl"])
    row = fit_table(frame, n_boot=20).iloc[0]
    assert "a point per seed is no trajectory to fit" in row["note"] and math.isnan(row["alpha"])
    assert row["d_max"] == pytest.approx(math.sqrt(2.0))


def test_nan_inf_and_peakless_configs_are_noted_not_fatal():
    rng = np.random.default_rng(4)
    nan_gold = trajectories("rl", RL, range(2), rng, config="nan-gold")
    nan_gold.loc[3, "gold"] = math.nan
    inf_kl = trajectories("rl", RL, range(2), rng, config="inf-kl")
    inf_kl.loc[5, "kl"] = math.inf
    rising = trajectories("rl", (0.5, -0.1), range(3), rng, config="rising")
    rising.loc[rising["episodes"] <= 100, "kl"] = -1e-9  # a Monte-Carlo KL just below 0: clipped to d = 0
    table = fit_table(pd.concat([nan_gold, inf_kl, rising]), n_boot=100).set_index("config")
    assert "non-finite" in table.loc["nan-gold", "note"]
    assert "non-finite" in table.loc["inf-kl", "note"]
    assert table.loc["rising", "points"] == 30 and table.loc["rising", "alpha"] == pytest.approx(0.5, abs=0.05)
    assert table.loc["rising", "d_peak"] == math.inf
    assert "no peak in range" in table.loc["rising", "note"]
    md = render_fit_table(table.reset_index(), "md")
    assert "∞" in md and not re.search(r"\|\s*(nan|inf)\s*\|", md, re.IGNORECASE)  # no raw float in a cell
    assert "inf" in render_fit_table(table.reset_index(), "csv")


def test_an_interval_reaching_no_peak_says_inf_not_nan():
    # β = 0 in truth: about half of the refits have β ≤ 0, i.e. no peak
    table = fit_table(trajectories("rl", (0.4, 0.0), range(8), np.random.default_rng(5), noise=0.05), n_boot=200)
    assert table.loc[0, "d_peak_hi"] == math.inf and table.loc[0, "kl_peak_hi"] == math.inf


def test_refused_bootstrap_refits_are_counted():
    rng = np.random.default_rng(6)
    frame = trajectories("best-of-n", BON, range(2), rng)
    frame = frame[(frame["seed"] == 1) | (frame["n"] <= 2)]  # seed 0: one point past d = 0
    row = fit_table(frame, n_boot=200).iloc[0]
    # a resample of seed 0 twice has 2 points with d > 0: refused, about 1 draw in 4
    assert 20 < row["boot_refused"] < 90
    assert f"{row['boot_refused']:.0f} of 200 bootstrap refits refused" in row["note"]
    assert row["alpha_lo"] <= row["alpha"] <= row["alpha_hi"]


def test_malformed_frames_and_arguments_raise_usage_errors():
    frame = trajectories("rl", RL, range(2), np.random.default_rng(7))
    with pytest.raises(UsageError, match="lacks column gold"):
        fit_table(frame.drop(columns=["gold"]))
    with pytest.raises(UsageError, match="lacks column episodes"):
        fit_table(frame.drop(columns=["episodes"]))
    fit_table(frame.drop(columns=["n", "d", "proxy"]), n_boot=0)  # n only matters to best-of-n
    with pytest.raises(UsageError, match="level"):
        fit_table(frame, level=95)
    odd = frame.assign(kind="best-of-m")
    assert "unknown kind 'best-of-m'" in fit_table(odd.assign(n=1.0), n_boot=0).loc[0, "note"]


# -------------------------------------------------------------------------
# rendering
# -------------------------------------------------------------------------


def test_renderings_escape_names_and_explain_the_intervals():
    rng = np.random.default_rng(8)
    frame = pd.concat([trajectories("rl", RL, range(3), rng, config="<script>alert(1)</script> & |x|"),
                       trajectories("best-of-n", BON, range(3), rng)])  # fmt: skip
    table = fit_table(frame, n_boot=100)
    page = render_fit_table(table, "html")
    assert page.startswith("<table") and "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; |x|" in page
    md = render_fit_table(table, "md")
    assert "<script>" not in md and r"\|x\|" in md  # a pipe would split the cell
    assert "### sentiment" in md
    for words in ("d (α − β log d)", "d (α − β d)", "√KL", "percentile bootstrap interval over seeds", "B = 100"):
        assert words in md
    back = pd.read_csv(io.StringIO(render_fit_table(table, "csv")))
    assert list(back.columns) == list(table.columns) and back["alpha"].tolist() == pytest.approx(table["alpha"].tolist())
    with pytest.raises(UsageError, match="did you mean 'md'"):
        render_fit_table(table, "mdd")
