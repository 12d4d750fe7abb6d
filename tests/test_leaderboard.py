"""Leaderboards from a real store: means and t-intervals by hand, sort order, every renderer."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from harness.api import UsageError
from harness.results.leaderboard import (
    EMPTY_MESSAGE,
    FORMATS,
    KEY_COLUMNS,
    build_leaderboard,
    render,
    write_leaderboard,
)
from harness.results.store import Store
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
    assert ppo["eval/gold ±"] == pytest.approx(T_975_2DOF * 1.0 / math.sqrt(3), rel=1e-12)
    assert ppo["eval/kl"] == pytest.approx(0.3)
    assert ppo["eval/kl ±"] == pytest.approx(T_975_2DOF * math.sqrt(0.07) / math.sqrt(3), rel=1e-12)
    assert rank["eval/gold"] == pytest.approx(4.5)
    assert rank["eval/gold ±"] == pytest.approx(T_975_2DOF * 0.5 / math.sqrt(3), rel=1e-12)
    assert rank["eval/kl ±"] == pytest.approx(0.0)


def test_columns_and_sort_order(store: Store):
    add_run(store, "sft", 0, {"eval/gold": 0.1, "eval/kl": 0.0, "eval/zeta": 1.0}, benchmark="alpaca")
    board = build_leaderboard(store.metrics_frame())
    assert list(board.columns[: len(KEY_COLUMNS)]) == KEY_COLUMNS
    assert list(board.columns[len(KEY_COLUMNS) :]) == ["eval/gold", "eval/gold ±", "eval/kl", "eval/kl ±", "eval/zeta", "eval/zeta ±"]
    assert board["key"].tolist() == [make_spec(benchmark="alpaca", algorithm="sft").experiment_key,
                                     make_spec(algorithm="rm-ranking").experiment_key, make_spec().experiment_key]  # fmt: skip
    # benchmarks alphabetically, then best gold first
    assert list(zip(board["benchmark"], board["algorithm"])) == [
        ("alpaca", "sft"),
        ("sentiment", "rm-ranking"),
        ("sentiment", "ppo"),
    ]
    only_kl = build_leaderboard(store.metrics_frame(benchmark="sentiment"), metrics=["eval/kl"])
    assert list(only_kl.columns[-2:]) == ["eval/kl", "eval/kl ±"]
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
    assert f"{T_975_2DOF / math.sqrt(3):.2f} " in render(build_leaderboard(store.metrics_frame()), "md", precision=2)


def test_single_seed_has_no_interval(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        add_run(store, "ppo", 0, {"eval/gold": 1.0})
        board = build_leaderboard(store.metrics_frame())
    assert board.loc[0, "eval/gold"] == 1.0 and math.isnan(board.loc[0, "eval/gold ±"])
    row = render(board, "md").splitlines()[4]
    assert row.rstrip(" |").endswith("1.000")  # a mean, and no interval from one seed


def test_csv_parses_back(store: Store):
    board = build_leaderboard(store.metrics_frame())
    text = render(board, "csv")
    assert "↑" not in text
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(board.columns)
    assert back["eval/gold ±"].tolist() == board["eval/gold ±"].tolist()  # full precision


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
    assert r"eval/gold $\uparrow$" in tex and r"eval/gold $\pm$" in tex


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
    from harness.results.reports import samples_markdown

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
