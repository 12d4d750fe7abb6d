"""Runs end to end through the CLI entry point, on the tiny benchmark."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.store import Store
from tests.conftest import TINY_SENTIMENT

BENCH = [f"--bench={b}" for b in TINY_SENTIMENT]


def run(tmp_path: Path, *args: str) -> int:
    return main(["run", *args, "--store", str(tmp_path / "store.sqlite"), "--results-dir", str(tmp_path / "results"), "--quiet", *BENCH])


def runs(tmp_path: Path):
    with Store(tmp_path / "store.sqlite") as store:
        return store.list_runs()


def test_same_config_and_seed_give_identical_metrics(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "best-of-n", "--n", "4", "--seeds", "3", "3", "4") == 0
    a, b, c = runs(tmp_path)
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics  # the seed matters


def test_sft_has_exactly_zero_kl_and_even_win_rate(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "sft") == 0
    (r,) = runs(tmp_path)
    assert r.metrics["eval/kl"] == 0.0
    assert r.budget_used["episodes_used"] == 0
    assert 0.3 < r.metrics["eval/win_rate"] < 0.7
    assert (Path(r.run_dir) / "policy.safetensors").exists() and (Path(r.run_dir) / "config.json").exists()
    assert r.manifest["packages"]["torch"] and "device" in r.manifest


def test_best_of_n_reports_analytic_kl_and_beats_sft_on_proxy(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "sft") == 0
    assert run(tmp_path, "--algo", "best-of-n", "--n", "8") == 0
    sft, bon = runs(tmp_path)
    assert bon.metrics["eval/kl"] == pytest.approx(math.log(8) - 7 / 8)
    assert bon.metrics["eval/proxy"] > sft.metrics["eval/proxy"] + 0.3


def test_leaderboard_rows_come_from_runs(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "sft", "--seeds", "0", "1") == 0
    capsys.readouterr()
    assert main(["leaderboard", "--store", str(tmp_path / "store.sqlite"), "--format", "csv", "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    assert "sft" in out and (tmp_path / "lb" / "LEADERBOARD.md").exists()
    assert main(["runs", "--store", str(tmp_path / "store.sqlite")]) == 0
    assert main(["show", runs(tmp_path)[0].run_id[:6], "--store", str(tmp_path / "store.sqlite")]) == 0
    assert "sample (gold" in capsys.readouterr().out
    assert main(["samples", "--store", str(tmp_path / "store.sqlite"), "--seed", "1", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("### sentiment · sft") == 1
    assert len(re.findall(r"^\| [+-]\d", out, re.M)) == 2  # two sample rows


def _faulty_plugin(tmp_path: Path, body: str) -> Path:
    """A throwaway algorithm plugin whose ``train`` is ``body``."""
    path = tmp_path / "faulty.py"
    path.write_text(
        "from harness import hookimpl\n"
        "from harness.api import PolicyOptimizer\n\n\n"
        "class Faulty(PolicyOptimizer):\n"
        "    name = 'faulty'\n"
        "    description = 'fails on purpose'\n\n"
        "    def train(self, ctx):\n"
        + textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
        + "\n\n\n@hookimpl\ndef harness_register_algorithms(registry):\n    registry.add(Faulty)\n"
    )
    return path


def test_nan_fails_the_run_and_keeps_the_others(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "sft") == 0
    plugin = _faulty_plugin(tmp_path, """
        ctx.budget.spend(8)
        ctx.log(0, {"loss/policy": 1.0})
        ctx.log(1, {"loss/policy": float("nan")})
    """)
    assert run(tmp_path, "--plugin", str(plugin), "--algo", "faulty") == 1
    ok, failed = runs(tmp_path)
    assert ok.status == "finished" and ok.metrics
    assert failed.status == "failed" and "loss/policy is nan at step 1" in failed.error
    assert failed.budget_used["episodes_used"] == 8
    with Store(tmp_path / "store.sqlite") as store:
        assert len(store.curves(failed.run_id)) == 2
    assert "Traceback" in (Path(failed.run_dir) / "log.txt").read_text()


def test_ctrl_c_marks_the_run_interrupted(tmp_path, tiny_proxy, capsys):
    plugin = _faulty_plugin(tmp_path, "raise KeyboardInterrupt")
    assert run(tmp_path, "--plugin", str(plugin), "--algo", "faulty", "--seeds", "0", "1") == 130
    (r,) = runs(tmp_path)  # the second seed never started
    assert r.status == "interrupted" and "Ctrl-C" in r.error
    assert "store is consistent" in capsys.readouterr().err


def test_budget_is_enforced(tmp_path, tiny_proxy):
    plugin = _faulty_plugin(tmp_path, "ctx.budget.spend(ctx.budget.episodes + 1)")
    assert run(tmp_path, "--plugin", str(plugin), "--algo", "faulty", "--budget", "16") == 1
    (r,) = runs(tmp_path)
    assert "BudgetExceeded" in r.error


def test_sweep_runs_the_grid_and_writes_the_leaderboard(tmp_path, tiny_proxy, capsys):
    bench = ", ".join(f"{b.split('=')[0]}: {b.split('=')[1]}" for b in TINY_SENTIMENT)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"benchmarks: [{{name: sentiment, bench: {{{bench}}}}}]\nseeds: [0, 1]\nruns:\n  - algo: sft\n"
                     "  - algo: best-of-n\n    args: {n: 2}\n")
    out = tmp_path / "board"
    argv = ["sweep", str(sweep), "--store", str(tmp_path / "store.sqlite"), "--results-dir", str(tmp_path / "r"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert len(runs(tmp_path)) == 4
    board = (out / "LEADERBOARD.md").read_text()
    assert board.startswith(f"Made by `harness sweep {sweep}`") and "| best-of-n " in board and "| sft " in board
    assert main(argv) == 0  # a second sweep resumes: every seed is already in the store
    assert len(runs(tmp_path)) == 4
    assert "already in the store" in capsys.readouterr().out
    sweep.write_text("seeds: [0]\nruns:\n  - algo: sft\n    args: [1]\n")
    assert main(argv) == 2
    assert f"{sweep}: runs[1]: expected" in capsys.readouterr().err


def test_reward_model_table(tmp_path, tiny_proxy, capsys):
    argv = ["reward-models", "pairwise", "ranking", "--rm", "ranking:epochs=1", "--quiet", *BENCH]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| pairwise " in out and "| ranking " in out and "rm/gold_accuracy" in out and "annotation cost" in out
