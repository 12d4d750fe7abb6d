"""Runs end to end through the CLI entry point, on the tiny benchmark: one run identity from the
command line to the leaderboard, and the harness's fairness promises."""

from __future__ import annotations

import functools
import math
import re
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.store import Store
from tests.conftest import TINY_FLAGS


def run(tmp_path: Path, *args: str, store: str = "store.sqlite") -> int:
    return main(["run", *args, "--store", str(tmp_path / store), "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS])


def runs(tmp_path: Path, store: str = "store.sqlite"):
    with Store(tmp_path / store) as s:
        return s.list_runs()


def leaderboard(tmp_path: Path, capsys, *extra: str):
    import io

    import pandas as pd

    capsys.readouterr()
    assert main(["leaderboard", "--store", str(tmp_path / "store.sqlite"), "--format", "csv", *extra]) == 0
    return pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)


def write_plugin(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


# -------------------------------------------------------------------------
# one run identity: rows never pool different experiments
# -------------------------------------------------------------------------


def test_different_budgets_are_different_rows(tmp_path, tiny_proxy, capsys):
    """The issue's repro: the same algorithm at two budgets gave one row, "seeds 2, episodes 96"."""
    assert run(tmp_path, "--algo", "ppo", "--budget", "64", "--seeds", "0") == 0
    assert run(tmp_path, "--algo", "ppo", "--budget", "128", "--seeds", "1") == 0
    board = leaderboard(tmp_path, capsys)
    assert sorted(zip(board["config"], board["seeds"], board["episodes"])) == [("budget=128", 1, 128), ("budget=64", 1, 64)]
    assert board["key"].nunique() == 2


def test_a_benchmark_setting_is_a_different_row(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "sft", "--seeds", "0") == 0
    assert run(tmp_path, "--algo", "sft", "--seeds", "1", "--benchmark-set", "fluency_weight=0.3") == 0
    board = leaderboard(tmp_path, capsys)
    assert sorted(board["settings"]) == ["fluency_weight=0.1", "fluency_weight=0.3"]
    assert board["seeds"].tolist() == [1, 1]


def test_a_reward_model_setting_is_a_different_row(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "best-of-n", "--n", "2", "--seeds", "0") == 0
    assert run(tmp_path, "--algo", "best-of-n", "--n", "2", "--seeds", "1", "--rm-epochs", "2") == 0
    board = leaderboard(tmp_path, capsys)
    assert sorted(board["config"]) == ["rm.epochs=2", "rm.epochs=3"] and board["seeds"].tolist() == [1, 1]


def test_another_code_version_is_flagged_never_pooled_silently(tmp_path, tiny_proxy, capsys, monkeypatch):
    assert run(tmp_path, "--algo", "sft", "--seeds", "0", "1") == 0
    monkeypatch.setattr("harness.specs.resolution.harness_code_version", lambda: "0123456789ab+dirty.feedbeef")
    assert run(tmp_path, "--algo", "sft", "--seeds", "0") == 0  # seed 0 again: a new code version is a new (key, seed)
    assert len(runs(tmp_path)) == 3
    latest = leaderboard(tmp_path, capsys)
    assert latest["seeds"].tolist() == [1] and latest["code"].tolist() == ["0123456789ab+dirty.feedbeef (+2 runs of other code not shown)"]
    each = leaderboard(tmp_path, capsys, "--code-versions", "each")
    assert sorted(each["seeds"]) == [1, 2] and each["key"].nunique() == 1
    pooled = leaderboard(tmp_path, capsys, "--code-versions", "pool")
    assert pooled["seeds"].tolist() == [2] and pooled["code"].item().startswith("pooled: ")  # seeds 0 and 1, seed 0 once


def test_a_key_and_seed_is_finished_once(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "sft", "--seeds", "7", "7") == 0
    assert [r.seed for r in runs(tmp_path)] == [7]
    assert run(tmp_path, "--algo", "sft", "--seeds", "7", "8") == 0  # a re-run: seed 7 is skipped, 8 runs
    out = capsys.readouterr().out
    assert re.search(r"skipped .*\n  note: already finished as run \w+", out)
    assert sorted(r.seed for r in runs(tmp_path)) == [7, 8]
    assert leaderboard(tmp_path, capsys)["seeds"].tolist() == [2]


def test_ppo_run_twice_with_one_seed_gives_identical_metrics(tmp_path, tiny_proxy):
    for store in ("a.sqlite", "b.sqlite"):
        assert run(tmp_path, "--algo", "ppo", "--budget", "128", "--seeds", "5", store=store) == 0
    (a,), (b,) = runs(tmp_path, "a.sqlite"), runs(tmp_path, "b.sqlite")
    assert a.run_id != b.run_id and a.spec_key == b.spec_key
    assert a.metrics == b.metrics and a.metrics["eval/kl"] > 0  # it trained, and both runs agree to the last bit
    assert run(tmp_path, "--algo", "ppo", "--budget", "128", "--seeds", "6", store="a.sqlite") == 0
    assert runs(tmp_path, "a.sqlite")[1].metrics != a.metrics  # the seed matters


# -------------------------------------------------------------------------
# fairness: who sees what, and how much
# -------------------------------------------------------------------------


def reachable(root) -> list:
    """Every object reachable from ``root`` through attributes, containers, closures, bound
    methods and partials (not through modules, classes or function globals: any object can
    reach those; the question is what the harness hands over)."""
    seen, stack, out = set(), [root], []
    leaves = (str, bytes, int, float, bool, type(None), torch.Tensor, types.ModuleType, type, torch.Generator, Path)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, leaves):
            continue
        if isinstance(obj, dict):
            stack += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        elif isinstance(obj, types.FunctionType):
            stack += [c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not None] + list(obj.__defaults__ or ())
        elif isinstance(obj, types.MethodType):
            stack += [obj.__self__, obj.__func__]
        elif isinstance(obj, functools.partial):
            stack += [obj.func, obj.args, obj.keywords]
        else:
            stack += [getattr(obj, "__dict__", {})] + [getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)]
    return out


def leads_to_gold(root) -> bool:
    """Whether ``root`` reaches r* or anything made from it: the judge, the benchmark's gold
    function, the prepared benchmark (which holds the judge), annotated items with gold, the
    store (other runs' gold-scored samples), or a reward model's held-out figures."""
    from harness.pipeline.annotator import AnnotatedItem
    from harness.pipeline.judge import Judge
    from harness.pipeline.stages import PreparedBenchmark

    def gold_bearing(o) -> bool:
        if isinstance(o, (Judge, PreparedBenchmark, AnnotatedItem, Store)):
            return True
        if isinstance(o, dict) and any(isinstance(k, str) and k.startswith(("rm/gold", "rm/spearman", "eval/")) for k in o):
            return True
        return "gold_reward.<locals>" in getattr(o, "__qualname__", "")

    return any(gold_bearing(o) for o in reachable(root))


SPIES = """
    import harness.api as api
    from harness_plugins.reward_models import Pairwise

    SEEN = {}

    class SpyOptimizer(api.PolicyOptimizer):
        name = "spy"
        description = "records its TrainContext"

        def train(self, ctx):
            SEEN["train"] = ctx
            return api.Policy(ctx.model, ctx.tokenizer)

    class SpyRewardModel(Pairwise):
        name = "spy-rm"
        description = "records its RewardFitContext"

        def fit(self, ctx):
            SEEN["fit"] = ctx
            return super().fit(ctx)

        def save(self, fitted, folder):
            return False  # never cached: fit runs in every test session

    class SpyEvaluator(api.Evaluator):
        name = "spy-eval"
        description = "records its EvalBatch"

        def evaluate(self, batch):
            SEEN["eval"] = batch
            return {}

    @api.hookimpl
    def harness_register_algorithms(registry):
        registry.add(SpyOptimizer)

    @api.hookimpl
    def harness_register_reward_models(registry):
        registry.add(SpyRewardModel)

    @api.hookimpl
    def harness_register_evaluators(registry):
        registry.add(SpyEvaluator)
"""


@pytest.fixture
def spies(tmp_path):
    """A plugin file with a spy optimizer, reward model and evaluator (unloaded afterwards)."""
    yield write_plugin(tmp_path, "spies", SPIES)
    for name in [m for m in sys.modules if m.startswith("harness_userplugin_spies")]:
        del sys.modules[name]


def _seen():
    (module,) = [m for name, m in sys.modules.items() if name.startswith("harness_userplugin_spies")]
    return module.SEEN


def test_the_optimizer_gets_the_proxy_and_the_reward_model_gets_preferences_never_gold(tmp_path, tiny_prepared, spies):
    from harness_plugins.reward_models import Pairwise

    from harness.api import PreferenceItem
    from harness.lm import ClassifierReward
    from harness.running.reward_fit import fit_proxy

    assert run(tmp_path, "--plugin", str(spies), "--algo", "spy", "--reward-model", "spy-rm") == 0
    seen = _seen()
    fit_ctx, train_ctx = seen["fit"], seen["train"]
    assert all(type(item) is PreferenceItem for item in fit_ctx.preferences.items)
    assert not leads_to_gold(fit_ctx)
    assert isinstance(train_ctx.reward_model._fitted, ClassifierReward) and not train_ctx.reward_model.is_oracle
    assert not leads_to_gold(train_ctx)
    rollout = seen["eval"].rollout  # and it is the proxy itself: the pairwise RM's scores
    pairwise = fit_proxy(Pairwise(), tiny_prepared, torch.device("cpu")).fitted
    torch.testing.assert_close(train_ctx.reward_model.score(rollout), pairwise.score(rollout))

    seen.clear()  # the oracle row gets r* on purpose, and the detector sees it (a positive control)
    assert run(tmp_path, "--plugin", str(spies), "--algo", "spy", "--reward-model", "gold", "--seeds", "1") == 0
    assert _seen()["train"].reward_model.is_oracle and leads_to_gold(_seen()["train"])


def test_evaluation_samples_held_out_prompts_with_the_seeds_it_should(tmp_path, tiny_prepared, spies):
    from harness.lm import sample_rollout
    from harness.running.evaluation import evaluation_seeds

    assert run(tmp_path, "--plugin", str(spies), "--algo", "sft", "--seeds", "3") == 0
    batch = _seen()["eval"]
    held_out, train = set(tiny_prepared.eval_prompts), set(tiny_prepared.train_prompts)
    for rollout in (batch.rollout, batch.ref_rollout):
        assert set(rollout.prompts) == held_out and not set(rollout.prompts) & train
        assert len(rollout) == 2 * len(held_out)  # --eval-samples-per-prompt 2
    policy_seed, reference_seed = evaluation_seeds(3)
    assert len({3, policy_seed, reference_seed}) == 3 and evaluation_seeds(4) != (policy_seed, reference_seed)
    sft = tiny_prepared.load_sft()
    for rollout, seed in ((batch.rollout, policy_seed), (batch.ref_rollout, reference_seed)):
        again = sample_rollout(sft, tiny_prepared.tokenizer, rollout.prompts, tiny_prepared.generation, torch.Generator().manual_seed(seed))
        assert torch.equal(again.response_ids, rollout.response_ids)
    assert not torch.equal(batch.rollout.response_ids, batch.ref_rollout.response_ids)  # π's and π_sft's draws differ
    (stored,) = runs(tmp_path)
    with Store(tmp_path / "store.sqlite") as s:
        samples = s.samples(stored.run_id)
    # every evaluated sample, in evaluation order, with per-sample values for paired comparisons
    assert [x["prompt"] for x in samples] == batch.rollout.prompts and [x["response"] for x in samples] == batch.rollout.responses
    assert [x["length"] for x in samples] == batch.rollout.lengths.tolist()
    assert [x["kl"] for x in samples] == pytest.approx(batch.kl_per_sequence.tolist())


@pytest.mark.parametrize(
    "algo_args, budget",
    [
        (["--algo", "ppo", "--batch-size", "32"], 80),
        (["--algo", "rm-ranking", "--batch-size", "32", "--k", "4"], 80),
        (["--algo", "rrhf", "--batch-size", "32", "--k", "4", "--num-epochs", "1"], 80),
        (["--algo", "best-of-n", "--n", "4"], 80),
    ],
)
def test_a_run_never_samples_more_episodes_than_its_budget(tmp_path, tiny_proxy, monkeypatch, algo_args, budget):
    """Every response sampled during training, counted at the samplers themselves, fits the
    budget and is what the run recorded."""
    import harness.lm.fast_gpt2 as fast
    import harness.lm.sampling as sampling
    import harness.running.runner as runner

    sampled = {"training": 0}
    phase = {"training": True}

    def counting(original):
        def wrapper(model, query_ids, *args, **kwargs):
            if phase["training"]:
                sampled["training"] += query_ids.size(0)
            return original(model, query_ids, *args, **kwargs)

        return wrapper

    def after_training(original):  # checkpoint measurements and the final evaluation are not training
        def wrapper(*args, **kwargs):
            phase["training"] = False
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(fast, "gpt2_sample", counting(fast.gpt2_sample))
    monkeypatch.setattr(sampling, "sample_responses", counting(sampling.sample_responses))
    monkeypatch.setattr(runner, "gold_along_training", after_training(runner.gold_along_training))
    monkeypatch.setattr(runner, "evaluate", after_training(runner.evaluate))
    assert run(tmp_path, *algo_args, "--budget", str(budget)) == 0
    (r,) = runs(tmp_path)
    assert sampled["training"] == r.budget_used["episodes_used"] <= budget
    if algo_args[1] != "best-of-n":
        assert r.budget_used["episodes_used"] == 64 and r.budget_used["rm_queries"] == 64  # two batches of 32; 16 unspent
    assert not phase["training"]


def test_best_of_n_records_its_inference_samples_and_rm_queries(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "sft") == 0
    assert run(tmp_path, "--algo", "best-of-n", "--n", "8") == 0
    sft, bon = runs(tmp_path)
    assert bon.metrics["eval/kl"] == pytest.approx(math.log(8) - 7 / 8)
    assert bon.metrics["eval/proxy"] > sft.metrics["eval/proxy"] + 0.3
    assert bon.budget_used["inference"] == {"samples_per_response": 8, "rm_queries_per_response": 8}
    assert sft.budget_used["inference"] == {"samples_per_response": 1, "rm_queries_per_response": 0}
    board = leaderboard(tmp_path, capsys).set_index("algorithm")
    assert board.loc["best-of-n", "samples_per_response"] == 8 and board.loc["sft", "samples_per_response"] == 1
    capsys.readouterr()
    assert main(["leaderboard", "--store", str(tmp_path / "store.sqlite")]) == 0
    assert "samples/resp" in capsys.readouterr().out


# -------------------------------------------------------------------------
# runs, failures, reports
# -------------------------------------------------------------------------


def test_sft_has_exactly_zero_kl_and_even_win_rate(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "sft") == 0
    (r,) = runs(tmp_path)
    assert r.metrics["eval/kl"] == 0.0
    assert r.budget_used["episodes_used"] == 0
    assert 0.3 < r.metrics["eval/win_rate"] < 0.7
    assert (Path(r.run_dir) / "policy.safetensors").exists() and (Path(r.run_dir) / "run.json").exists()
    assert r.manifest["packages"]["torch"] and "device" in r.manifest


def test_leaderboard_rows_come_from_runs(tmp_path, tiny_proxy, capsys):
    assert run(tmp_path, "--algo", "sft", "--seeds", "0", "1") == 0
    capsys.readouterr()
    assert main(["leaderboard", "--store", str(tmp_path / "store.sqlite"), "--format", "csv", "--out", str(tmp_path / "lb")]) == 0
    out = capsys.readouterr().out
    assert "sft" in out and (tmp_path / "lb" / "LEADERBOARD.md").exists()
    assert main(["runs", "--store", str(tmp_path / "store.sqlite"), "--key", runs(tmp_path)[0].spec_key[:6]]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3  # a header and both seeds
    assert main(["show", runs(tmp_path)[0].run_id[:6], "--store", str(tmp_path / "store.sqlite")]) == 0
    assert "sample (gold" in capsys.readouterr().out
    assert main(["samples", "--store", str(tmp_path / "store.sqlite"), "--seed", "1", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("### sentiment · sft · seed 1") == 1
    assert len(re.findall(r"^\| [+-]\d", out, re.M)) == 2  # two sample rows


def _faulty_plugin(tmp_path: Path, body: str) -> Path:
    """A throwaway algorithm plugin whose ``train`` is ``body``."""
    return write_plugin(tmp_path, "faulty", "from harness.api import PolicyOptimizer, hookimpl\n\n\n"
                        "class Faulty(PolicyOptimizer):\n    name = 'faulty'\n    description = 'fails on purpose'\n\n"
                        "    def train(self, ctx):\n" + textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
                        + "\n\n\n@hookimpl\ndef harness_register_algorithms(registry):\n    registry.add(Faulty)\n")  # fmt: skip


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
    assert run(tmp_path, "--plugin", str(plugin), "--algo", "faulty") == 1  # a failed (key, seed) may run again
    assert len(runs(tmp_path)) == 3


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


def test_a_results_dir_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "results").write_text("a file where the results folder should be")
    assert run(tmp_path, "--algo", "sft") == 2
    assert "--results-dir" in capsys.readouterr().err and not (tmp_path / "store.sqlite").exists()


def test_a_run_folder_that_cannot_be_written_fails_the_run_not_the_store(tmp_path, tiny_proxy, monkeypatch):
    """The folder went away between the CLI's check and the run (a full disk, another process)."""
    import harness.cli.flags

    monkeypatch.setattr(harness.cli.flags, "writable_folder", lambda path, flag: Path(path))
    (tmp_path / "results").write_text("a file where the results folder should be")
    assert run(tmp_path, "--algo", "sft") == 1
    (r,) = runs(tmp_path)
    assert r.status == "failed" and "cannot write the run folder" in r.error


SWEEP = """\
benchmarks: [{{name: sentiment, settings: {{{bench}}}}}]
seeds: [0, 1]
evaluation: {{samples_per_prompt: 2}}
budget: {budget}
runs:
  - algo: sft
  - algo: best-of-n
    args: {{n: 2}}
reports:
  samples: {{seed: 0, n: 2}}
  reward_models: [pairwise]
  plots: true
  fits: true
  report: true
"""


def test_sweep_runs_the_grid_resumes_and_writes_its_tables(tmp_path, tiny_proxy, capsys):
    bench = ", ".join(f"{b.split('=')[0]}: {b.split('=')[1]}" for b in TINY_FLAGS[:-2] for b in [b.split("=", 1)[1]])
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.format(bench=bench, budget=64))
    out = tmp_path / "board"
    argv = ["sweep", str(sweep), "--store", str(tmp_path / "store.sqlite"), "--results-dir", str(tmp_path / "r"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert len(runs(tmp_path)) == 4
    board = (out / "LEADERBOARD.md").read_text()
    assert board.startswith(f"Made by `harness sweep {sweep}`") and "| best-of-n " in board and "| sft " in board
    assert "code version " in board.splitlines()[0]
    assert (out / "SAMPLES.md").read_text().count("· seed 0 ·") == 2 and "| pairwise " in (out / "REWARD_MODELS.md").read_text()
    # the best-of-n curve and π_sft's point: a frontier, a fit of the curve, one page with all of it
    assert (out / "plots" / "frontier_sentiment.svg").exists() and (out / "plots" / "frontier_sentiment.png").exists()
    assert "| best-of-n " in (out / "FITS.md").read_text() and "d (α − β d)" in (out / "FITS.md").read_text()
    assert "frontier_sentiment" in (out / "report.html").read_text()

    assert main(argv) == 0  # a second sweep resumes: every seed is already in the store
    assert len(runs(tmp_path)) == 4
    assert "already in the store" in capsys.readouterr().out

    sweep.write_text(SWEEP.format(bench=bench, budget=128))  # another budget: other experiments, new runs
    assert main(argv) == 0
    assert len(runs(tmp_path)) == 8
    sweep.write_text(SWEEP.format(bench=bench + ", fluency_weight: 0.3", budget=128))  # another benchmark setting
    assert main(argv) == 0
    assert len(runs(tmp_path)) == 12
    assert (out / "LEADERBOARD.md").read_text().count("| sft ") == 1  # the tables show this sweep's runs only


@pytest.mark.parametrize(
    "text, error",
    [
        ("seeds: []\nruns:\n  - algo: sft\n", "line 1: 'seeds' must be a non-empty list of integers in 0 .. 2^63 - 1, got []"),
        ("seeds: [0]\nruns:\n  - algo: sft\n  - algo: sft\n    args: [1]\n", "line 4: runs[1]: expected {algo: NAME"),
        ("seeds: [0]\nruns:\n  - algo: sft\n  - algo: ppo\n    args: {kl_coeff: 0}\n",
         "line 4: runs[1] (ppo) on sentiment: ppo args: unknown key 'kl_coeff' (did you mean 'kl_coef'?)"),
        ("seeds: [0]\nruns:\n  - algo: ppp\n", "line 3: runs[0] (ppp) on sentiment: unknown algorithm 'ppp' (did you mean 'ppo'?)"),
        ("seeds: [0]\nrunz: []\n", "line 2: unknown key(s) runz"),
        ("seeds: [99999999999999999999]\nruns:\n  - algo: sft\n", "line 1: 'seeds' must be a non-empty list of integers in 0 .. 2^63 - 1"),
        ("seeds: [0]\nreward_model: [pairwise]\nruns:\n  - algo: sft\n", "line 2: 'reward_model' must be a name"),
        ("seeds: [0]\nruns:\n  - algo: sft\n    reward_model: {a: 1}\n", "line 3: runs[0]: expected {algo: NAME"),
        ("seeds: [0]\nruns:\n  - algo: sft\nreports:\n  reward_models: [pairwse]\n",
         "line 4: reports: unknown reward model 'pairwse' (did you mean 'pairwise'?)"),
        ("seeds: [0]\nruns:\n  - algo: sft\nreports:\n  plots: yes please\n", "line 4: reports: plots: expected true or false"),
        ("seeds: [0\n", "invalid YAML"),
    ],
)
def test_sweep_file_mistakes_name_the_file_and_line(tmp_path, capsys, text, error):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(text)
    assert main(["sweep", str(sweep), "--store", str(tmp_path / "s.sqlite"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{sweep}" in err and error in err, err


def test_reward_model_table(tmp_path, tiny_proxy, capsys):
    argv = ["reward-models", "pairwise", "ranking", "--rm", "ranking:epochs=1", "--quiet", *TINY_FLAGS[:-2]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| pairwise " in out and "| ranking " in out and "rm/gold_accuracy" in out and "annotation cost" in out
