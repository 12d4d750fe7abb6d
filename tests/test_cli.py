"""Bad input gets one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import main
from harness.errors import UsageError

STORE = "<an empty store>"


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
        (["run", "--algo", "sft", "--benchmark-set", "corpus_sise=5"], "unknown key 'corpus_sise' (did you mean 'corpus_size'?)"),
        (["run", "--algo", "sft", "--benchmark-set", "temperature=0"], "temperature must be > 0"),
        (["run", "--algo", "sft", "--benchmark-set", "temperature=nan"], "temperature: expected a finite number, got 'nan'"),
        (["run", "--algo", "sft", "--benchmark-set", "corpus_size=２０００"], "corpus_size: expected int, got '２０００'"),
        (["run", "--algo", "sft", "--bench", "corpus_size=5"], "(--bench is now --benchmark-set KEY=VALUE)"),
        (["run", "--algo", "rm-ranking", "--objective", "rrhf"], "(--objective is now --algo rrhf)"),
        (["run", "--algo", "sft", "--seeds", "18446744073709551616"], "seeds must be in 0 .. 2^63 - 1"),
        (["run", "--algo", "sft", "--eval-samples-per-prompt", "0"], "--eval-samples-per-prompt must be >= 1"),
        (["runs", "--status", "bogus", "--store", STORE], "unknown status 'bogus'; valid: running, finished, failed, interrupted"),
        (["leaderboard", "--code-versions", "newest", "--store", STORE], "--code-versions 'newest' is not one of latest, pool, each"),
        (["bench", "ppp"], "unknown bench 'ppp' (did you mean 'ppo'?); valid: ppo"),
        (["run", "--algo", "sft", "--rm-lr", "-1"], "--rm-epochs, --rm-lr and --rm-batch-size must be > 0"),
        (["leaderboard", "--format", "mdx", "--store", STORE], "--format 'mdx' is not one of md, csv, html, latex (did you mean 'md'?)"),
        (["leaderboard", "--out", "/dev/null/x", "--store", STORE], "--out /dev/null/x: a file stands where a folder of the path should be"),
        (["run", "--algo", "sft", "--device", "cuda:x"], "--device cuda:x: expected cpu, cuda, cuda:N or auto"),
        (["run", "--algo", "sft", "--device", "tpu"], "--device tpu: expected cpu, cuda, cuda:N or auto"),
        (["bench", "ppo", "--bogus"], "unrecognized arguments: --bogus (see harness bench ppo --help)"),
        (["runs", "--mark-interrupted", "nope", "--store", STORE], "no run 'nope'"),
        (["run", "--algo", "sft", "--benchmark-set", "policy_heads=0"], "policy_heads must be > 0"),
        (["run", "--algo", "sft", "--benchmark-set", "policy_width=100", "--benchmark-set", "policy_heads=3"], "must be a multiple of policy_heads"),
        (["run", "--algo", "sft", "--benchmark-set", "judge_width=200"], "judge_width (200) must be a multiple of 3"),
        (["runs", "--store", "/nonexistent/store.sqlite"], "no store at /nonexistent/store.sqlite"),
        (["reward-models", "ranking", "--rm", "ranking"], "expected NAME:KEY=VALUE"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, expected, capsys, tmp_path):
    from harness.store import Store

    Store(tmp_path / "s.sqlite").close()
    argv = [str(tmp_path / "s.sqlite") if a == STORE else a for a in argv]
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

    _, (plan,), _ = parse_run(["--algo", "rm-ranking", "--reward", "score", "--no-kl"])
    spec = plan.spec
    assert spec.reward_model.name == "pairwise"  # "--reward" is rm-ranking's flag, not --reward-model
    assert spec.algorithm.config["reward"] == "score" and spec.algorithm.config["kl_coef"] == 0.0
    assert spec.algorithm.name == "rm-ranking"  # a variant keeps its name with β = 0
    assert main(["run", "--algo", "sft", "--bud", "5"]) == 2


def test_the_kl_ablation_has_one_spelling():
    from harness.cli import parse_run

    keys = set()
    for argv in (["--algo", "ppo", "--no-kl"], ["--algo", "ppo", "--kl-coef", "0"], ["--algo", "ppo-nokl"]):
        spec = parse_run(argv)[1][0].spec
        assert spec.algorithm.name == "ppo-nokl" and spec.algorithm.config["kl_coef"] == 0.0
        keys.add(spec.key)
    assert len(keys) == 1  # one experiment, one row
    with pytest.raises(UsageError, match="ppo-nokl is PPO with β = 0; for a β > 0 use --algo ppo"):
        parse_run(["--algo", "ppo-nokl", "--kl-coef", "0.05"])  # a contradiction, not silently plain ppo


def test_one_experiment_has_one_spec_however_it_is_spelt():
    from harness.cli import parse_run

    def key(*argv):
        return parse_run(["--algo", "sft", *argv])[1][0].spec.key

    assert key("--budget", "256") == key("--benchmark-set", "default_budget=256")
    assert key("--reward-model", "ranking") == key("--reward-model", "ranking", "--rm-k", "4", "--rm-annotation-budget", "4000")
    assert key("--reward-model", "ranking") != key("--reward-model", "ranking", "--rm-k", "5")
    assert key("--budget", "256") != key("--budget", "257")


def test_run_help_shows_the_benchmark_defaults_and_budget(capsys):
    assert main(["run", "--algo", "ppo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "training episodes (default: the benchmark's default_budget, 4096)" in out
    assert "benchmark 'sentiment' settings (--benchmark-set KEY=VALUE)" in out and "annotator_noise=0.2" in out
    assert "--no-kl" in out and "--eval-samples-per-prompt INT" in out and "--rm-epochs FLOAT" in out
