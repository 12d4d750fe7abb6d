"""`harness plot`: what each figure draws (read from the matplotlib objects, not pixels), valid
and byte-identical PNG and SVG files, escaped names, and one-line errors when there is nothing
to draw."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.reports import plots
from harness.store import Store
from tests.conftest import make_spec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"
#: (final KL, α, β) of each trained configuration: gold gain = d (α − β log d), d = √KL
RL_CONFIGS = {"ppo": (0.8, 0.6, 0.25), "ppo-nokl": (12.0, 0.5, 0.45), "rm-ranking (no_kl=True)": (4.0, 0.55, 0.3)}
SFT_GOLD = 0.2
EPISODES = tuple(range(0, 4097, 512))
BEST_OF_N = tuple(2**k for k in range(7))


def make_trajectories(benchmark: str = "sentiment", seeds=(0, 1, 2), configs=None, *, gold: bool = True,
                      episodes=EPISODES, run_ids: dict | None = None) -> pd.DataFrame:  # fmt: skip
    """A trajectory frame with exactly the columns of ``harness.analysis.trajectories.trajectory_frame``:
    RL configurations along training (episode 0 = π_sft, KL 0), best-of-n over n = 1 … 64 with
    the analytic KL, and ``sft`` (one point at d = 0). Gold follows Gao et al.'s forms, the proxy
    rises with d; seeds differ by a small offset. ``run_ids``: (config, seed) → run id."""
    configs = RL_CONFIGS if configs is None else configs
    run_ids = run_ids or {}
    rows = []

    def row(config, algorithm, seed, kind, episodes, n, kl, g, p):
        rows.append({"run_id": run_ids.get((config, seed), f"{config}-{seed}"), "benchmark": benchmark, "config": config,
                     "algorithm": algorithm, "seed": seed, "kind": kind, "episodes": episodes, "n": n, "kl": kl,
                     "d": math.sqrt(max(kl, 0.0)), "gold": g if gold else math.nan, "proxy": p})  # fmt: skip

    for config, (kl_end, alpha, beta) in configs.items():
        for seed in seeds:
            for ep in episodes:
                kl = kl_end * (ep / max(episodes)) * (1 + 0.1 * seed)
                d = math.sqrt(kl)
                gain = d * (alpha - beta * math.log(d)) if d > 0 else 0.0
                row(config, config.split()[0], seed, "rl", float(ep), math.nan, kl, SFT_GOLD + gain + 0.01 * seed * (ep > 0),
                    0.9 * d + 0.02 * seed * (ep > 0))  # fmt: skip
    for seed in seeds:
        for n in BEST_OF_N:
            kl = math.log(n) - (n - 1) / n
            d = math.sqrt(kl)
            row("best-of-n", "best-of-n", seed, "best-of-n", math.nan, float(n), kl, SFT_GOLD + d * (0.5 - 0.2 * d) + 0.01 * seed * (n > 1),
                0.8 * d)  # fmt: skip
        row("sft", "sft", seed, "rl", 0.0, math.nan, 0.0, SFT_GOLD, 0.0)
    return pd.DataFrame(rows)


def lines_by_label(ax) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines()}


# -------------------------------------------------------------------------
# the figures
# -------------------------------------------------------------------------


def test_frontier_has_a_line_per_seed_a_mean_per_config_best_of_n_and_sft():
    frame = make_trajectories()
    fig = plots.frontier_figure(frame, "sentiment")
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    trained = [*RL_CONFIGS, "best-of-n"]
    assert sorted(label for label in labels if label.startswith("_seed ")) == sorted(
        f"_seed {seed}: {config}" for config in trained for seed in (0, 1, 2)
    )
    # sft is π_sft's point, never a curve of its own
    assert sorted(label for label in labels if not label.startswith("_")) == sorted(
        [f"{config}  (3 seeds)" for config in trained] + ["π_sft (d = 0)"]
    )
    lines = lines_by_label(ax)
    # the thick line is the mean over seeds at each checkpoint
    expected = frame[frame["config"] == "ppo"].groupby("episodes")[["d", "gold"]].mean()
    np.testing.assert_allclose(lines["ppo  (3 seeds)"].get_xdata(), expected["d"])
    np.testing.assert_allclose(lines["ppo  (3 seeds)"].get_ydata(), expected["gold"])
    # best-of-n at its analytic KL, one point per n
    n = np.array(BEST_OF_N, dtype=float)
    np.testing.assert_allclose(lines["best-of-n  (3 seeds)"].get_xdata(), np.sqrt(np.log(n) - (n - 1) / n))
    # π_sft at d = 0 and its gold level as a reference line
    assert list(lines["π_sft (d = 0)"].get_xdata()) == [0.0]
    assert lines["π_sft (d = 0)"].get_ydata()[0] == pytest.approx(SFT_GOLD)
    assert lines["_π_sft level"].get_ydata()[0] == pytest.approx(SFT_GOLD)
    # reward hacking reads off the figure: without KL, gold ends below π_sft's; with it, above
    assert lines["ppo-nokl  (3 seeds)"].get_ydata()[-1] < SFT_GOLD < lines["ppo  (3 seeds)"].get_ydata()[-1]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ppo-nokl  (3 seeds)" in legend and "thin: one seed each" in legend
    assert ax.get_xlim()[0] == 0.0 and "√KL" in ax.get_xlabel() and "gold" in ax.get_ylabel()


def test_an_offline_learner_without_episodes_is_aligned_by_checkpoint():
    """DPO spends no episodes: its checkpoints all say episodes 0, and are told apart by order."""
    frame = make_trajectories(configs={"dpo": (2.0, 0.5, 0.3)})
    frame.loc[frame["config"] == "dpo", "episodes"] = 0.0
    lines = lines_by_label(plots.frontier_figure(frame, "sentiment").axes[0])
    expected = make_trajectories(configs={"dpo": (2.0, 0.5, 0.3)}).query("config == 'dpo'").groupby("episodes")["gold"].mean()
    np.testing.assert_allclose(lines["dpo  (3 seeds)"].get_ydata(), expected)
    assert "_seed 0: sft" not in lines and "sft  (3 seeds)" not in lines  # KL 0 throughout: π_sft's point


def test_seeds_on_different_grids_are_interpolated_within_their_range():
    a = pd.DataFrame({"step": [0.0, 2.0, 4.0], "v": [0.0, 2.0, 4.0]})
    b = pd.DataFrame({"step": [0.0, 3.0, 6.0], "v": [1.0, 4.0, 7.0]})
    out = plots.align_seeds({0: a, 1: b}, "step", ["v"])
    assert out["step"].tolist() == [0.0, 2.0, 3.0, 4.0, 6.0]
    assert out["seeds"].tolist() == [2, 2, 2, 2, 1]  # seed 0 stops at 4: never extrapolated
    np.testing.assert_allclose(out["v_mean"], [0.5, 2.5, 3.5, 4.5, 7.0])
    assert math.isnan(out["v_lo"].iloc[-1])  # one seed: no interval
    # t(1 dof) interval of {2, 3} at step 2: mean ± 12.706 · 0.7071 / √2
    assert out["v_hi"].iloc[1] - out["v_mean"].iloc[1] == pytest.approx(12.7062047 * math.sqrt(0.5) / math.sqrt(2), rel=1e-6)
    assert plots.align_seeds({0: a, 1: b}, "step", ["v"], every_seed=True)["step"].tolist() == [0.0, 2.0, 3.0, 4.0]


def test_overoptimisation_shows_gains_on_twin_axes_with_zeros_level():
    fig = plots.overoptimisation_figure(make_trajectories(), "sentiment")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["best-of-n  (3 seeds, over n)", "ppo  (3 seeds)", "ppo-nokl  (3 seeds)",
                                                 "rm-ranking (no_kl=True)  (3 seeds)"]  # fmt: skip
    for ax in panels:
        twin = next(other for other in fig.axes if other is not ax and other.bbox.bounds == ax.bbox.bounds)
        gold = next(line for line in ax.get_lines() if line.get_label() == "gold r*")
        proxy = next(line for line in twin.get_lines() if line.get_label() == "proxy r̂")
        assert gold.get_ydata()[0] == pytest.approx(0.0) and proxy.get_ydata()[0] == pytest.approx(0.0)  # gains over d = 0
        (g0, g1), (p0, p1) = ax.get_ylim(), twin.get_ylim()
        assert -g0 / (g1 - g0) == pytest.approx(-p0 / (p1 - p0))  # both zeros at one height
    nokl = next(ax for ax in panels if ax.get_title().startswith("ppo-nokl"))
    twin = next(other for other in fig.axes if other is not nokl and other.bbox.bounds == nokl.bbox.bounds)
    assert next(line for line in nokl.get_lines() if line.get_label() == "gold r*").get_ydata()[-1] < 0  # gold lost …
    assert next(line for line in twin.get_lines() if line.get_label() == "proxy r̂").get_ydata()[-1] > 2  # … proxy gained


def test_a_benchmark_without_gold_says_so_instead_of_plotting_nans():
    frame = make_trajectories(gold=False)
    fig = plots.frontier_figure(frame, "sentiment")
    assert all(not ax.get_lines() for ax in fig.axes)
    assert any("no gold reward" in t.get_text() for ax in fig.axes for t in ax.texts)
    plots_ = plots.build_figures(frame, pd.DataFrame(columns=["benchmark", "config", "seed", "step", "key", "value"]), kind="all")
    assert any("no gold reward" in note for note in plots_.notes)
    over = plots_.figures["overoptimisation_sentiment"]
    assert not any(line.get_label() == "gold r*" for ax in over.axes for line in ax.get_lines())


def test_sections_of_one_benchmark_get_their_own_figures_never_pooled():
    frame = pd.concat(
        [make_trajectories().assign(settings="n_prompts=8"), make_trajectories(seeds=(5,)).assign(settings="n_prompts=16")]
    )
    figures = plots.build_figures(frame, pd.DataFrame(columns=plots.CURVE_COLUMNS), kind="frontier").figures
    assert sorted(figures) == ["frontier_sentiment_n_prompts-16", "frontier_sentiment_n_prompts-8"]
    small = lines_by_label(figures["frontier_sentiment_n_prompts-16"].axes[0])
    assert "ppo  (1 seed)" in small and "_seed 5: ppo" in small and "_seed 0: ppo" not in small
    assert (
        figures["frontier_sentiment_n_prompts-16"].axes[0].get_title() == "sentiment · n_prompts=16: gold reward vs KL from π_sft"
    )


def test_training_curves_one_line_per_config_mean_over_seeds():
    rows = [{"benchmark": "b", "config": config, "seed": seed, "step": step, "key": "objective/kl", "value": k * step + seed}
            for k, config in enumerate(["ppo", "ppo-nokl"], 1) for seed in (0, 1) for step in range(0, 10, 1 + seed)]  # fmt: skip
    fig = plots.curves_figure(pd.DataFrame(rows), "b", "objective/kl")
    lines = lines_by_label(fig.axes[0])
    assert sorted(lines) == ["ppo  (2 seeds)", "ppo-nokl  (2 seeds)"]
    ppo = lines["ppo  (2 seeds)"]
    np.testing.assert_allclose(ppo.get_xdata(), range(10))  # the union of both grids
    np.testing.assert_allclose(ppo.get_ydata()[:9], np.arange(9) + 0.5)  # seed 1 (step 0, 2, …, 8) interpolated
    assert ppo.get_ydata()[9] == 9.0  # step 9: seed 0 only
    assert "nats" in fig.axes[0].get_ylabel()


def test_styles_are_distinct_and_do_not_depend_on_order():
    names = [f"algo-{i}" for i in range(20)] + ["ppo", "ppo-nokl", "best-of-n"]
    styles = plots.assign_styles(names)
    assert styles == plots.assign_styles(reversed(names))
    assert len({(s.color, str(s.linestyle)) for s in styles.values()}) == len(names)
    assert styles["ppo"].color == plots.OKABE_ITO["blue"] and styles["ppo-nokl"].color == plots.OKABE_ITO["vermillion"]
    assert all(s.color in plots.OKABE_ITO.values() for s in styles.values())


def test_names_with_markup_and_dollars_are_escaped_text_in_svg():
    evil = '<script>alert("x")</script> & $5 "q"'
    frame = make_trajectories(configs={evil: RL_CONFIGS["ppo"], "ppo": RL_CONFIGS["ppo"]})
    fig = plots.frontier_figure(frame, "sentiment")
    svg = plots.figure_bytes(fig, "svg").decode()
    assert "<script" not in svg and "&lt;script&gt;" in svg
    texts = ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert f"{evil}  (3 seeds)" in texts  # shown verbatim ("$" is no mathtext)
    inline = plots.svg_markup(fig, salt="frontier_sentiment")
    assert inline.startswith("<svg") and "<script" not in inline
    ET.fromstring(inline)


# -------------------------------------------------------------------------
# harness plot
# -------------------------------------------------------------------------


def add_run(store: Store, algorithm: str, seed: int, curve: list | None = None, **spec_fields) -> str:
    run_id = os.urandom(6).hex()
    assert store.claim_run(make_spec(algorithm=algorithm, seed=seed, **spec_fields), run_id=run_id, name="n",
                           manifest={"code_version": "c0ffee"}, run_dir=None).claimed  # fmt: skip
    if curve:
        store.log_curve(run_id, curve)
    store.finish_run(run_id, status="finished", metrics={"eval/gold": 0.5, "eval/kl": 1.0}, budget_used={"episodes_used": 64})
    return run_id


@pytest.fixture
def plot_store(tmp_path: Path, monkeypatch) -> Path:
    """Runs with training curves; their trajectories come from :func:`make_trajectories`."""
    path = tmp_path / "store.sqlite"
    run_ids = {}
    with Store(path) as store:
        for algorithm in ("ppo", "ppo-nokl"):
            for seed in (0, 1):
                curve = [(step, {"objective/kl": 0.1 * step * (seed + 1), "objective/scores": math.log1p(step), "loss/policy": 1 / (1 + step)})
                         for step in range(8)]  # fmt: skip
                run_ids[(algorithm, seed)] = add_run(store, algorithm, seed, curve)
    frame = make_trajectories(seeds=(0, 1), configs={k: RL_CONFIGS[k] for k in ("ppo", "ppo-nokl")}, run_ids=run_ids)
    monkeypatch.setattr(
        plots, "load_trajectories", lambda store, benchmark=None: frame[frame["benchmark"] == benchmark] if benchmark else frame
    )
    return path


def test_plot_writes_valid_png_and_svg_byte_identical_across_calls(plot_store: Path, tmp_path: Path, capsys):
    outputs = {}
    for name in ("first", "second"):
        assert main(["plot", "--store", str(plot_store), "--out", str(tmp_path / name)]) == 0
        printed = capsys.readouterr().out.split()
        outputs[name] = {Path(p).name: Path(p).read_bytes() for p in printed}
    stems = [
        "frontier_sentiment",
        "overoptimisation_sentiment",
        "curves_sentiment_objective-scores",
        "curves_sentiment_objective-kl",
    ]
    assert sorted(outputs["first"]) == sorted(f"{stem}.{ext}" for stem in stems for ext in ("png", "svg"))
    for name, data in outputs["first"].items():
        if name.endswith(".png"):
            assert data.startswith(PNG_SIGNATURE)
        else:
            root = ET.fromstring(data)
            assert root.tag == f"{SVG}svg" and b"<dc:date>" not in data
    assert outputs["first"] == outputs["second"]  # deterministic, to the byte


def test_plot_one_kind_and_chosen_metrics(plot_store: Path, tmp_path: Path, capsys):
    assert main(["plot", "--store", str(plot_store), "--out", str(tmp_path), "--kind", "curves", "--metric", "loss/policy"]) == 0
    assert sorted(Path(p).name for p in capsys.readouterr().out.split()) == ["curves_sentiment_loss-policy.png",
                                                                              "curves_sentiment_loss-policy.svg"]  # fmt: skip
    assert (
        main(["plot", "--store", str(plot_store), "--out", str(tmp_path), "--kind", "frontier", "--benchmark", "sentiment"]) == 0
    )
    assert sorted(Path(p).name for p in capsys.readouterr().out.split()) == ["frontier_sentiment.png", "frontier_sentiment.svg"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["--kind", "frontiers"],
            "--kind 'frontiers' is not one of frontier, overoptimisation, curves, all (did you mean 'frontier'?)",
        ),
        (["--metric", "objective/kll"], "no run logged 'objective/kll' (did you mean 'objective/kl'?); logged: loss/policy,"),
        (
            ["--benchmark", "sentimnt"],
            "no finished runs on benchmark 'sentimnt' (did you mean 'sentiment'?); the store has: sentiment",
        ),
    ],
)
def test_plot_mistakes_exit_2_with_one_line(plot_store: Path, tmp_path: Path, argv, expected, capsys):
    assert main(["plot", "--store", str(plot_store), "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness plot: error: ") and expected in err[0]
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("kind, expected", [("all", "nothing to plot: no checkpoint evaluations"),
                                            ("frontier", "no checkpoint evaluations (gold, proxy and KL along training)"),
                                            ("curves", "no training curves in the store")])  # fmt: skip
def test_plot_without_data_exits_2_with_one_line(tmp_path: Path, monkeypatch, capsys, kind, expected):
    monkeypatch.setattr(
        plots, "load_trajectories", lambda store, benchmark=None: pd.DataFrame(columns=list(plots.TRAJECTORY_COLUMNS))
    )
    with Store(tmp_path / "store.sqlite") as store:
        add_run(store, "sft", 0)  # a run, but nothing along training
    assert main(["plot", "--store", str(tmp_path / "store.sqlite"), "--out", str(tmp_path / "out"), "--kind", kind]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out").exists()
    assert main(["plot", "--store", str(tmp_path / "nope.sqlite")]) == 2
    assert "no store at" in capsys.readouterr().err
