"""Bad input gets one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import main


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "--algo", "best-of-m"], "unknown algorithm 'best-of-m' (did you mean 'best-of-n'?); valid: "),
        (["run", "--benchmark", "sentimnt"], "unknown benchmark 'sentimnt' (did you mean 'sentiment'?)"),
        (["run", "--reward-model", "pairwse"], "unknown reward model 'pairwse' (did you mean 'pairwise'?)"),
        (["run", "--algo", "sft", "--budgt", "5"], "unrecognized arguments: --budgt 5 (did you mean '--budget'?)"),
        (["run", "--algo", "sft", "--budget", "-5"], "argument --budget: must be a positive integer, got -5"),
        (["run", "--algo", "sft", "--budget", "many"], "argument --budget: expected a positive integer, got 'many'"),
        (["run", "--algo", "best-of-n", "--n", "0"], "--n must be >= 1, got 0"),
        (["run", "--algo", "best-of-n", "--n", "two"], "argument --n: expected int, got 'two'"),
        (["run", "--algo", "sft", "--bench", "corpus_sise=5"], "unknown key 'corpus_sise' (did you mean 'corpus_size'?)"),
        (["run", "--algo", "sft", "--bench", "temperature=0"], "temperature must be > 0"),
        (["run", "--algo", "sft", "--rm-lr", "-1"], "--rm-epochs, --rm-lr and --rm-batch-size must be > 0"),
        (["leaderboard", "--format", "mdx"], "--format 'mdx' is not one of"),
        (["run", "--algo", "sft", "--bench", "policy_heads=0"], "policy_heads must be > 0"),
        (["run", "--algo", "sft", "--bench", "policy_width=100", "--bench", "policy_heads=3"], "must be a multiple of policy_heads"),
        (["run", "--algo", "sft", "--bench", "judge_width=200"], "judge_width (200) must be a multiple of 3"),
        (["runs", "--store", "/nonexistent/store.sqlite"], "no store at /nonexistent/store.sqlite"),
        (["reward-models", "ranking", "--rm", "ranking"], "expected NAME:KEY=VALUE"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"harness {argv[0]}: error: ")
    assert expected in err[0]


def test_unknown_command():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "rnu"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unknown command 'rnu' (did you mean 'run'?)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_unknown_run(tmp_path, capsys):
    from harness.store import Store

    Store(tmp_path / "s.sqlite").close()
    assert main(["show", "abc", "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "no run 'abc'" in capsys.readouterr().err


def test_flags_are_never_abbreviated():
    from harness.cli import parse_run

    _, request = parse_run(["--algo", "rm-ranking", "--reward", "score", "--no-kl"])
    assert request.reward_model == "pairwise"  # "--reward" is rm-ranking's flag, not --reward-model
    assert request.algo_config.reward == "score" and request.algo_config.kl is False
    assert main(["run", "--algo", "sft", "--bud", "5"]) == 2
