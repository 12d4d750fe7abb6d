"""Leaderboards from a real store: means and intervals by hand, sort order, every renderer, and the
comparison with a baseline row (``--baseline``) end to end. The statistics themselves are tested
in test_significance.py."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.columns import KEY_COLUMNS
from harness.analysis.leaderboard import build_leaderboard
from harness.api import UsageError
from harness.reports.leaderboard import EMPTY_MESSAGE, FORMATS, render, write_leaderboard
from harness.store import Store
from tests.conftest import make_spec

# Student's t quantile with 2 dof in closed form: t_p = (2p - 1) * sqrt(2 / (4p(1 - p))).
T_975_2DOF = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))  # 4.30265272974946
HIB = {"eval/gold": True, "eval/kl": False}


def add_run(store: Store, algorithm: str, seed: int, metrics: dict[str, float], **spec_fields) -> str:
    run_id = os.urandom(6).hex()
    assert store.claim_run(make_spec(algorithm=algorithm, seed=seed, **spec_fields), run_id=run_id, name="n", manifest={},
                           run_dir=None).claimed  # fmt: skip
    store.finish_run(run_id, status="finished", metrics=metrics, higher_is_better=HIB,
                     budget_used={"episodes_used": 64, "rm_queries": 64,
                                  "inference": {"samples_per_response": 1, "rm_queries_per_response": 0}})  # fmt: skip
    return run_id


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as s:
        # ppo: gold 1, 2, 3 (mean 2, sd 1); kl 0.1, 0.2, 0.6 (mean 0.3, sd sqrt(0.07))
        for seed, (gold, kl) in enumerate([(1.0, 0.1), (2.0, 0.2), (3.0, 0.6)]):
            add_run(s, "ppo", seed, {"eval/gold": gold, "eval/kl": kl, "eval/zeta": 1.0})
        # rm-ranking: gold 4, 4.5, 5 (mean 4.5, sd 0.5); kl constant
        for seed, gold in enumerate([4.0, 4.5, 5.0]):
            add_run(s, "rm-ranking", seed, {"eval/gold": gold, "eval/kl": 0.5, "eval/zeta": 1.0})
        yield s


def test_means_and_confidence_intervals(store: Store):
    board = build_leaderboard(store.metrics_frame())
    ppo = board.set_index("algorithm").loc["ppo"]
    rank = board.set_index("algorithm").loc["rm-ranking"]
    assert ppo["seeds"] == 3 and ppo["episodes"] == 64 and ppo["rm_queries"] == 64 and ppo["samples_per_response"] == 1
    assert ppo["eval/gold"] == pytest.approx(2.0)
    half = T_975_2DOF * 1.0 / math.sqrt(3)
    assert ppo["eval/gold lo"] == pytest.approx(2.0 - half, rel=1e-12)
    assert ppo["eval/gold hi"] == pytest.approx(2.0 + half, rel=1e-12)
    # KL cannot be negative: the t-interval 0.3 ± 0.657 is cut at 0
    assert ppo["eval/kl"] == pytest.approx(0.3)
    assert ppo["eval/kl lo"] == 0.0
    assert ppo["eval/kl hi"] == pytest.approx(0.3 + T_975_2DOF * math.sqrt(0.07) / math.sqrt(3), rel=1e-12)
    assert rank["eval/gold"] == pytest.approx(4.5)
    assert rank["eval/gold hi"] - rank["eval/gold"] == pytest.approx(T_975_2DOF * 0.5 / math.sqrt(3), rel=1e-12)
    assert rank["eval/kl lo"] == rank["eval/kl hi"] == pytest.approx(0.5)


def test_columns_and_sort_order(store: Store):
    add_run(store, "sft", 0, {"eval/gold": 0.1, "eval/kl": 0.0, "eval/zeta": 1.0}, benchmark="alpaca")
    board = build_leaderboard(store.metrics_frame())
    assert list(board.columns[: len(KEY_COLUMNS)]) == KEY_COLUMNS
    assert list(board.columns[len(KEY_COLUMNS) :]) == ["eval/gold", "eval/gold lo", "eval/gold hi", "eval/kl", "eval/kl lo",
                                                       "eval/kl hi", "eval/zeta", "eval/zeta lo", "eval/zeta hi"]  # fmt: skip
    assert board["key"].tolist() == [make_spec(benchmark="alpaca", algorithm="sft").experiment_key,
                                     make_spec(algorithm="rm-ranking").experiment_key, make_spec().experiment_key]  # fmt: skip
    # benchmarks alphabetically, then best gold first
    assert list(zip(board["benchmark"], board["algorithm"])) == [
        ("alpaca", "sft"),
        ("sentiment", "rm-ranking"),
        ("sentiment", "ppo"),
    ]
    only_kl = build_leaderboard(store.metrics_frame(benchmark="sentiment"), metrics=["eval/kl"])
    assert list(only_kl.columns[-3:]) == ["eval/kl", "eval/kl lo", "eval/kl hi"]
    assert only_kl["algorithm"].tolist() == ["ppo", "rm-ranking"]  # kl: lower is better
    with pytest.raises(UsageError, match="no metric 'eval/nope'"):
        build_leaderboard(store.metrics_frame(), metrics=["eval/nope"])


def test_configs_of_one_algorithm_are_told_apart(store: Store):
    add_run(store, "ppo", 0, {"eval/gold": 9.0}, algo_config={"kl_coef": 0.0, "lr": 1e-5})
    add_run(store, "ppo", 0, {"eval/gold": 0.0}, reward_model="gold", rm_config={"normalise": True}, oracle=True)
    board = build_leaderboard(store.metrics_frame())
    ppo = board[board["algorithm"] == "ppo"]
    assert ppo["config"].tolist() == ["kl_coef=0", "kl_coef=0.05", "kl_coef=0.05"]
    assert ppo["reward_model"].tolist() == ["pairwise", "pairwise", "gold (oracle)"]
    assert board.loc[board["algorithm"] == "rm-ranking", "config"].item() == ""


@pytest.mark.parametrize(
    "changed, label",
    [
        ({"budget": 128}, "budget=128"),
        ({"rm_config": {"epochs": 2}}, "rm.epochs=2"),
        ({"algo_config": {"kl_coef": 0.05, "lr": 3e-4}}, "lr=0.0003"),
    ],
)
def test_a_different_setting_is_a_different_row_labelled_by_it(store: Store, changed, label):
    add_run(store, "ppo", 3, {"eval/gold": 100.0, "eval/kl": 1.0, "eval/zeta": 1.0}, **changed)
    board = build_leaderboard(store.metrics_frame())
    ppo = board[board["algorithm"] == "ppo"].set_index("config")
    assert ppo.loc[label, "seeds"] == 1 and ppo.loc[label, "eval/gold"] == 100.0  # not pooled with the other three
    other = ppo.drop(index=label)
    assert len(other) == 1 and other["seeds"].item() == 3 and other["eval/gold"].item() == pytest.approx(2.0)


def test_a_benchmark_or_evaluation_setting_is_its_own_section(store: Store):
    add_run(store, "ppo", 0, {"eval/gold": 7.0}, bench_config={"n_prompts": 16})
    add_run(store, "ppo", 0, {"eval/gold": 8.0}, evaluation={"samples_per_prompt": 2, "max_prompts": 0})
    board = build_leaderboard(store.metrics_frame())
    sections = board.groupby("settings")["algorithm"].apply(sorted).to_dict()
    assert sections == {
        "n_prompts=8, eval.samples_per_prompt=8": ["ppo", "rm-ranking"],
        "n_prompts=16, eval.samples_per_prompt=8": ["ppo"],
        "n_prompts=8, eval.samples_per_prompt=2": ["ppo"],
    }
    md = render(board, "md")
    assert "### sentiment (v1) · n_prompts=16, eval.samples_per_prompt=8\n" in md
    assert md.count("### sentiment (v1)") == 3


def test_code_versions_latest_pool_and_each(store: Store):
    # seed 0 and 3 of ppo again, by newer code
    add_run(store, "ppo", 0, {"eval/gold": 10.0, "eval/kl": 1.0, "eval/zeta": 1.0}, code="new")
    add_run(store, "ppo", 3, {"eval/gold": 20.0, "eval/kl": 1.0, "eval/zeta": 1.0}, code="new")
    latest = build_leaderboard(store.metrics_frame()).set_index("algorithm").loc["ppo"]
    assert latest["seeds"] == 2 and latest["eval/gold"] == 15.0
    assert latest["code"] == "new (+3 runs of other code not shown)"
    pooled = build_leaderboard(store.metrics_frame(), code_versions="pool").set_index("algorithm").loc["ppo"]
    # seeds 0..3, each once: seed 0 from the newer code, not counted twice
    assert pooled["seeds"] == 4 and pooled["eval/gold"] == pytest.approx((10.0 + 2.0 + 3.0 + 20.0) / 4)
    assert pooled["code"] == "pooled: c0ffee, new"
    each = build_leaderboard(store.metrics_frame(), code_versions="each")
    rows = each[each["algorithm"] == "ppo"].set_index("code")
    assert rows.loc["c0ffee", "seeds"] == 3 and rows.loc["new", "seeds"] == 2
    assert "| code " in render(each, "md") and "Code version:" not in render(each, "md")  # rows differ in code: a column
    with pytest.raises(UsageError, match="is not one of latest, pool, each"):
        build_leaderboard(store.metrics_frame(), code_versions="newest")


def test_markdown(store: Store):
    md = render(build_leaderboard(store.metrics_frame()), "md")
    assert md.startswith("### sentiment (v1)\n") and "Code version: c0ffee." in md and "| code" not in md
    header = md.splitlines()[2]
    assert "gold ↑" in header and "kl ↓" in header and "±" not in header
    assert "zeta |" in header  # no direction recorded: no arrow
    assert "| rm-ranking " in md and " 4.500 ± " in md
    assert f"{T_975_2DOF / math.sqrt(3):.3f}" in md  # fixed precision
    assert f" 0.300 [0.000, {0.3 + T_975_2DOF * math.sqrt(0.07 / 3):.3f}] " in md  # KL >= 0: an interval cut at 0, as [lo, hi]
    assert "the t-interval cut at 0" in md and "Student-t" in md and "Wilson" not in md  # the legend names what is shown
    assert f"{T_975_2DOF / math.sqrt(3):.2f} " in render(build_leaderboard(store.metrics_frame()), "md", precision=2)


def test_single_seed_has_no_interval(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        add_run(store, "ppo", 0, {"eval/gold": 1.0})
        board = build_leaderboard(store.metrics_frame())
    assert board.loc[0, "eval/gold"] == 1.0
    assert math.isnan(board.loc[0, "eval/gold lo"]) and math.isnan(board.loc[0, "eval/gold hi"])
    row = render(board, "md").splitlines()[4]
    assert row.rstrip(" |").endswith("1.000")  # a mean, and no interval from one seed


def test_csv_parses_back(store: Store):
    board = build_leaderboard(store.metrics_frame())
    text = render(board, "csv")
    assert "↑" not in text
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(board.columns)
    assert back["eval/gold lo"].tolist() == board["eval/gold lo"].tolist()  # full precision
    assert back["eval/kl hi"].tolist() == board["eval/kl hi"].tolist()


def test_html_and_markdown_escape(store: Store):
    add_run(store, "<script>alert(1)</script>", 0, {"eval/gold": 1.0, "eval/kl": 0.0, "eval/zeta": 1.0})
    board = build_leaderboard(store.metrics_frame())
    html = render(board, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "eval/gold ↑" in html
    md = render(board, "md")
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md


def test_latex_escapes(store: Store):
    add_run(store, "a_b & c%", 0, {"eval/gold": 1.0, "eval/kl": 0.0, "eval/zeta": 1.0})
    tex = render(build_leaderboard(store.metrics_frame()), "latex")
    assert tex.startswith(r"\begin{tabular}") and tex.rstrip().endswith(r"\end{tabular}")
    assert r"a\_b \& c\%" in tex
    assert r"eval/gold $\uparrow$" in tex and r"4.500 $\pm$ " in tex and r"0.300 [0.000, " in tex


def test_unknown_format(store: Store):
    with pytest.raises(UsageError, match="md, csv, html, latex"):
        render(build_leaderboard(store.metrics_frame()), "xlsx")


def test_empty_store(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        board = build_leaderboard(store.metrics_frame())
    assert board.empty
    for fmt in FORMATS:
        assert render(board, fmt).strip() == EMPTY_MESSAGE


def test_write_leaderboard(store: Store, tmp_path: Path):
    board = build_leaderboard(store.metrics_frame())
    paths = write_leaderboard(board, tmp_path / "out", HIB)
    assert [p.name for p in paths] == ["LEADERBOARD.md", "leaderboard.csv"]
    assert "### sentiment (v1)" in paths[0].read_text()
    assert len(pd.read_csv(paths[1])) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["LEADERBOARD.md", "leaderboard.csv"]


def test_samples_are_labelled_like_rows_and_escaped(tmp_path: Path):
    from harness.reports.markdown import samples_markdown

    with Store(tmp_path / "store.sqlite") as store:
        for fields in ({}, {"reward_model": "gold", "rm_config": {"normalise": True}, "oracle": True},
                       {"algo_config": {"kl_coef": 0.0, "lr": 1e-5}}):  # fmt: skip
            run_id = add_run(store, "ppo", 0, {"eval/gold": 1.0}, **fields)
            store.add_samples(run_id, [{"prompt": "the <b>movie</b>", "response": "was | good", "gold": 0.5, "proxy": 0.1}])
        text = samples_markdown(store.list_runs(), store.samples, n=1)
    titles = [line for line in text.splitlines() if line.startswith("###")]
    assert [t.split(" · ")[1] for t in titles] == [
        "ppo (kl_coef=0.05, reward_model=pairwise)", "ppo (kl_coef=0.05, reward_model=gold)", "ppo (kl_coef=0, reward_model=pairwise)"]
    assert "<b>" not in text and "the &lt;b&gt;movie&lt;/b&gt; ▸ was \\| good" in text


# -------------------------------------------------------------------------
# bounded intervals in the table, and --baseline
# -------------------------------------------------------------------------

EVAL_HIB = {"eval/gold": True, "eval/win_rate": True, "eval/proxy": True, "eval/kl": False, "eval/length": None,
            "eval/eos_rate": True}  # fmt: skip
PROMPTS = [f"the movie {i} was" for i in range(20)]
DIFFICULTY = np.random.default_rng(7).normal(0.0, 1.0, len(PROMPTS))
SAMPLE_KEYS = ("gold", "proxy", "kl", "length", "ended")


def add_evaluated_run(store: Store, algorithm: str, seed: int, *, shift: float = 0.0, kl: float = 0.0, win_rate: float = 0.5,
                      prompts=PROMPTS, keys=SAMPLE_KEYS, has_gold: bool = True, **spec_fields) -> str:  # fmt: skip
    """A finished run with its evaluation samples (2 per prompt), its metrics their means, as the
    runner stores them: gold = the prompt's difficulty + ``shift`` + the seed's luck + noise."""
    rng = np.random.default_rng([seed, len(algorithm), int(shift * 1000) % 997])
    luck = (-0.05, 0.0, 0.05)[seed % 3]
    samples = []
    for i, prompt in enumerate(prompts):
        for _ in range(2):
            gold = float(DIFFICULTY[i % len(DIFFICULTY)] + shift + luck + rng.normal(0.0, 0.02))
            values = {"gold": gold, "proxy": 0.5 * gold, "kl": kl + float(rng.normal(0.0, 0.01)) if kl else 0.0,
                      "length": 10 + i % 3, "ended": True}  # fmt: skip
            values["gold"] = values["gold"] if has_gold else None  # no r*: the runner stores None
            samples.append({"prompt": prompt, "response": "r", **{k: values[k] for k in keys}})
    mean = lambda key: float(np.mean([v[key] for v in samples])) if has_gold or key != "gold" else math.nan
    metrics = {"eval/gold": mean("gold"), "eval/proxy": mean("proxy"), "eval/win_rate": win_rate + 0.01 * seed,
               "eval/kl": mean("kl") if "kl" in keys else kl, "eval/length": mean("length") if "length" in keys else 10.0,
               "eval/eos_rate": mean("ended")}  # fmt: skip
    if not has_gold:  # a benchmark without r*: gold and win rate not measured, stored as NaN
        metrics.update({"eval/gold": math.nan, "eval/win_rate": math.nan})
    run_id = os.urandom(6).hex()
    assert store.claim_run(make_spec(algorithm=algorithm, seed=seed, **spec_fields), run_id=run_id, name="n", manifest={},
                           run_dir=None).claimed  # fmt: skip
    store.finish_run(run_id, status="finished", metrics=metrics, higher_is_better=EVAL_HIB, budget_used={"episodes_used": 64})
    store.add_samples(run_id, samples)
    return run_id


@pytest.fixture
def evaluated(tmp_path: Path):
    """sft (the baseline); `good`: far better gold at a high KL; `nudge`: better by 0.02 on every
    prompt, well inside the seeds' spread; `single`: better, but one seed."""
    with Store(tmp_path / "store.sqlite") as s:
        for seed in range(3):
            add_evaluated_run(s, "sft", seed)
            add_evaluated_run(s, "good", seed, shift=1.0, kl=2.0, win_rate=0.9)
            add_evaluated_run(s, "nudge", seed, shift=0.02)
        add_evaluated_run(s, "single", 0, shift=1.0)
        yield s


def md_rows(md: str) -> dict[str, dict[str, str]]:
    """The rows of a markdown leaderboard's tables, by algorithm cell, as {header: cell}."""
    out, header = {}, None
    for line in md.splitlines():
        if not line.startswith("|") or line.startswith("|:"):
            header = None if not line.startswith("|") else header
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if header is None:
            header = cells
        else:
            out[cells[0]] = dict(zip(header, cells))
    return out


def compared(store: Store, baseline: str = "sft", **kwargs) -> pd.DataFrame:
    return build_leaderboard(store.metrics_frame(), baseline=baseline, samples=store.samples, **kwargs)


def test_rate_intervals_stay_inside_zero_one(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        for seed, rate in enumerate([0.01, 0.02, 0.9]):  # the t-interval: 0.310 ± 1.270
            add_run(store, "ppo-nokl", seed, {"eval/eos_rate": rate, "eval/gold": 1.0 + seed})
        board = build_leaderboard(store.metrics_frame())
    row = board.iloc[0]
    assert 0.0 <= row["eval/eos_rate lo"] < row["eval/eos_rate"] < row["eval/eos_rate hi"] <= 1.0
    md = render(board, "md")
    assert f"0.310 [{row['eval/eos_rate lo']:.3f}, {row['eval/eos_rate hi']:.3f}]" in md and " ± 1.2" not in md
    assert "Wilson score interval" in md and "eos_rate" in md.split("Wilson")[0].rsplit("Mean over seeds", 1)[1]
    assert " 2.000 ± " in md  # gold: unbounded, the t-interval as before


def test_baseline_marks_better_worse_and_indistinguishable(evaluated: Store):
    board = compared(evaluated).set_index("label")
    good, nudge, single, sft = (board.loc[name] for name in ("good", "nudge", "single", "sft"))
    assert good["eval/gold welch"] == good["eval/gold paired"] == "better"
    assert good["eval/kl welch"] == good["eval/kl paired"] == "worse"  # KL: lower is better
    assert good["eval/win_rate welch"] == "better" and good["eval/win_rate paired"] == ""  # no per-sample win rate
    assert good["eval/length welch"] == good["eval/length paired"] == "indistinguishable"
    # a small shift on every prompt: three seeds cannot tell, the prompts can
    assert nudge["eval/gold welch"] == "indistinguishable" and nudge["eval/gold paired"] == "better"
    assert nudge["eval/gold paired lo"] > 0 and nudge["eval/gold paired diff"] == pytest.approx(0.02, abs=0.005)
    assert single["eval/gold welch"] == "not testable" and single["eval/gold paired"] == "better"
    assert sft["eval/gold welch"] == sft["eval/gold paired"] == "baseline"
    # the comparisons: 2 rows × 6 metrics for Welch (one seed is not testable), 3 rows × 5 sampled metrics paired
    assert set(board["welch tests"]) == {12} and set(board["paired tests"]) == {15} and set(board["paired prompts"]) == {20}
    assert set(board["baseline"]) == {"sft"} and set(board["note"]) == {""}
    # the verdicts follow the Holm-adjusted p-values
    assert (board["eval/gold welch p"].dropna() <= 1).all() and good["eval/gold welch p"] < 0.05 < nudge["eval/gold welch p"]


def test_baseline_in_every_format(evaluated: Store):
    board = compared(evaluated)
    md = render(board, "md")
    assert ("Against `sft`: Welch's t over seeds, 12 comparisons; paired bootstrap over 20 held-out prompts "
            f"(B = {max(2000, 20 * 15 * 20)}), 15 comparisons; Holm–Bonferroni within each test, α = 0.05.") in md  # fmt: skip
    cells = md_rows(md)
    assert cells["good"]["gold ↑"].endswith(" ▲/▲") and cells["good"]["kl ↓"].endswith(" ▼/▼")
    assert cells["good"]["win_rate ↑"].endswith(" ▲/·") and cells["good"]["length"].endswith(" ≈/≈")
    assert cells["nudge"]["gold ↑"].endswith(" ≈/▲") and cells["single"]["gold ↑"].endswith(" ?/▲")
    sft = board.set_index("label").loc["sft"]
    assert cells["sft (baseline)"]["gold ↑"] == f"{sft['eval/gold']:.3f} ± {sft['eval/gold hi'] - sft['eval/gold']:.3f}"  # no marks
    legend = md.rsplit("\n\n", 1)[1]
    assert "Welch's t-test over seeds / a paired bootstrap over the held-out prompts" in legend and "Holm–Bonferroni" in legend
    assert "▲ better, ▼ worse" in legend and "? not testable" in legend and "α = 0.05" in legend
    back = pd.read_csv(io.StringIO(render(board, "csv")))
    assert list(back.columns) == list(board.columns) and "eval/gold paired p" in back.columns
    assert back.set_index("label").loc["nudge", "eval/gold paired"] == "better"
    html = render(board, "html")
    assert "▲/▲" in html and "sft (baseline)" in html and "12 comparisons" in html and "Holm–Bonferroni" in html
    tex = render(board, "latex")
    assert r"$\blacktriangle$/$\blacktriangle$" in tex and "Welch's t-test" in tex and "15 comparisons" in tex


def test_unknown_baseline_lists_the_rows(evaluated: Store):
    add_evaluated_run(evaluated, "ppo", 0, benchmark="arithmetic")
    with pytest.raises(UsageError, match=r"--baseline 'sfx' names no row \(did you mean 'sft'\?\); the rows of each table: "
                                         r"arithmetic \(v1\): ppo; sentiment \(v1\): good, nudge, sft, single$"):  # fmt: skip
        compared(evaluated, "sfx")


def test_a_table_without_the_baseline_says_so(evaluated: Store):
    add_evaluated_run(evaluated, "ppo", 0, benchmark="arithmetic")
    board = compared(evaluated)
    arithmetic = board[board["benchmark"] == "arithmetic"].iloc[0]
    assert arithmetic["baseline"] == "" and arithmetic["note"] == "no row 'sft' in this table: nothing compared"
    assert arithmetic["eval/gold welch"] == ""
    md = render(board, "md")
    section = md.split("### arithmetic (v1)")[1].split("###")[0]
    assert "no row 'sft' in this table: nothing compared." in section and "▲" not in section and "·/·" not in section


def test_rows_of_one_algorithm_are_named_apart(evaluated: Store):
    for seed in range(2):
        add_evaluated_run(evaluated, "ppo", seed, shift=0.5)
        add_evaluated_run(evaluated, "ppo", seed, shift=0.4, reward_model="gold", oracle=True, rm_config={})
    with pytest.raises(UsageError, match=r"--baseline 'ppo' matches 2 rows of sentiment \(v1\): 'ppo \(reward_model=.*\)', "
                                         r"'ppo \(reward_model=.*\)'; name one"):  # fmt: skip
        compared(evaluated, "ppo")
    board = compared(evaluated, "ppo (reward_model=gold)")
    assert set(board["baseline"]) == {"ppo (reward_model=gold)"}
    assert board.set_index("label").loc["ppo (reward_model=pairwise)", "eval/gold paired"] == "better"


def test_paired_bootstrap_needs_shared_prompts_and_per_sample_values(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        for seed in range(3):
            add_evaluated_run(store, "sft", seed)
            add_evaluated_run(store, "old", seed, shift=1.0, keys=("gold", "proxy", "ended"))  # stored before kl and length
            add_evaluated_run(store, "elsewhere", seed, shift=1.0, prompts=[p + "!" for p in PROMPTS])
            add_evaluated_run(store, "sft", seed, benchmark="arithmetic", keys=("gold", "proxy", "ended"))
            add_evaluated_run(store, "ppo", seed, benchmark="arithmetic", shift=1.0)
            add_evaluated_run(store, "sft", seed, benchmark="tiny", prompts=PROMPTS[:4])
            add_evaluated_run(store, "ppo", seed, benchmark="tiny", prompts=PROMPTS[:4], shift=1.0)
            add_evaluated_run(store, "sft", seed, benchmark="nogold", has_gold=False)
            add_evaluated_run(store, "ppo", seed, benchmark="nogold", has_gold=False, kl=2.0)
        board = compared(store).set_index(["benchmark", "label"])
    old, elsewhere = board.loc[("sentiment", "old")], board.loc[("sentiment", "elsewhere")]
    assert old["eval/gold paired"] == "better" and old["eval/kl paired"] == "" and old["eval/kl welch"] != ""
    assert elsewhere["eval/gold paired"] == "" and elsewhere["eval/gold welch"] == "better"
    assert old["note"] == ("the stored samples have no values for kl of old, length of old (older runs): no paired bootstrap "
                           "there; not paired: elsewhere (held-out prompts differ from the baseline's)")  # fmt: skip
    arithmetic = board.loc[("arithmetic", "ppo")]  # the baseline's samples lack kl and length: no paired test of them
    assert arithmetic["eval/kl paired"] == "" and arithmetic["eval/gold paired"] == "better"
    assert arithmetic["note"].startswith("the stored samples have no values for kl, length (older runs)")
    tiny = board.loc[("tiny", "ppo")]  # 4 prompts: too few to resample
    assert tiny["eval/gold paired"] == "not testable" and tiny["eval/gold welch"] == "better"
    assert "4 prompts stored, fewer than 10" in tiny["note"]
    nogold = board.loc[("nogold", "ppo")]  # not measured: no test, no note, no mark
    assert nogold["eval/gold welch"] == nogold["eval/gold paired"] == "" and nogold["note"] == ""
    assert nogold["eval/kl welch"] == nogold["eval/kl paired"] == "worse" and nogold["paired tests"] == 4
    nogold_md = render(board.reset_index(), "md").split("### nogold (v1)")[1].split("###")[0]
    assert md_rows(nogold_md)["ppo"]["gold ↑"] == "–" and md_rows(nogold_md)["ppo"]["kl ↓"].endswith(" ▼/▼")


def test_cli_leaderboard_with_a_baseline(evaluated: Store, capsys):
    from harness.cli import main

    path = str(evaluated.path)
    assert main(["leaderboard", "--store", path, "--baseline", "sft"]) == 0
    out = capsys.readouterr().out
    assert "Against `sft`: Welch's t over seeds, 12 comparisons; paired bootstrap over 20 held-out prompts" in out
    assert "| sft (baseline) " in out and "▲/▲" in out
    assert main(["leaderboard", "--store", path, "--baseline", "sft", "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert csv.set_index("label").loc["good", "eval/kl welch"] == "worse"
    assert main(["leaderboard", "--store", path, "--baseline", "nope"]) == 2
    err = capsys.readouterr().err
    assert "--baseline 'nope' names no row; the rows of each table: sentiment (v1): good, nudge, sft, single" in err
    assert main(["leaderboard", "--store", path]) == 0 and "Against" not in capsys.readouterr().out  # no baseline: no tests
