"""Gold along training and best-of-n as a curve: the exact subsampling estimator, checkpoints
that never perturb training, and the trajectory frame the plots and fits read."""

from __future__ import annotations

import io
import itertools
import math

import pandas as pd
import pytest
import torch

from harness.analysis.trajectories import trajectory_frame
from harness.running.checkpoints import best_of_n_kl, curve_ns, expected_best_of
from harness.store import Store
from tests.test_runner import run, runs


def brute_force_best_of(proxy: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """The mean over every n-subset of each row of the value at the subset's proxy argmax."""
    out = []
    for p, v in zip(proxy.tolist(), values.tolist()):
        picks = [v[max(subset, key=lambda i: p[i])] for subset in itertools.combinations(range(len(p)), n)]
        out.append(sum(picks) / len(picks))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_best_of_n_is_the_exact_expectation_over_subsets(n):
    generator = torch.Generator().manual_seed(0)
    proxy, gold = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    torch.testing.assert_close(expected_best_of(proxy, gold, n), brute_force_best_of(proxy, gold, n))
    if n == 1:
        torch.testing.assert_close(expected_best_of(proxy, gold, 1), gold.double().mean(1))
    if n == 6:
        torch.testing.assert_close(expected_best_of(proxy, gold, 6), gold.gather(1, proxy.argmax(1, keepdim=True)).squeeze(1).double())


def test_best_of_n_rejects_n_outside_the_sample():
    with pytest.raises(ValueError, match=r"n must be in \[1, 4\]"):
        expected_best_of(torch.zeros(2, 4), torch.zeros(2, 4), 5)


def test_curve_points_and_their_kl():
    assert curve_ns(64) == [1, 2, 4, 8, 16, 32, 64]
    assert curve_ns(12) == [1, 2, 4, 8, 12]
    assert best_of_n_kl(1) == 0 and best_of_n_kl(64) == pytest.approx(math.log(64) - 63 / 64)


def _checkpoints(store_path, run_id):
    with Store(store_path) as store:
        curves = store.curves(run_id)
    return curves.dropna(subset=["checkpoint/episodes"]) if "checkpoint/episodes" in curves else curves.iloc[:0]


def test_ppo_records_gold_along_training_without_changing_training(tmp_path, tiny_proxy):
    flags = ["--algo", "ppo", "--batch-size", "32", "--budget", "96"]
    assert run(tmp_path, *flags, "--eval-checkpoint-every", "32", "--eval-checkpoint-prompts", "8") == 0
    assert run(tmp_path, *flags, "--eval-checkpoint-every", "0", store="off.sqlite") == 0
    (on,), (off,) = runs(tmp_path), runs(tmp_path, "off.sqlite")
    points = _checkpoints(tmp_path / "store.sqlite", on.run_id)
    # π_sft at 0 episodes (KL exactly 0), then one point per 32 episodes; the last saw every episode
    assert points["checkpoint/episodes"].tolist() == [0, 32, 64, 96]
    assert points["checkpoint/kl"].iloc[0] == 0 and points["checkpoint/kl"].iloc[1:].gt(0).all()
    assert points[["checkpoint/gold", "checkpoint/proxy"]].notna().all().all()
    assert points["step"].is_monotonic_increasing
    assert _checkpoints(tmp_path / "off.sqlite", off.run_id).empty
    # measured from weight copies after training: the training curve and the final metrics are identical
    with Store(tmp_path / "store.sqlite") as a, Store(tmp_path / "off.sqlite") as b:
        assert a.metrics(on.run_id) == b.metrics(off.run_id)
        plain = b.curves(off.run_id).filter(regex=r"^(?!time/)")  # wall-clock figures aside
        trained = a.curves(on.run_id)[plain.columns].dropna(how="all", subset=list(plain.columns.drop("step")))
        pd.testing.assert_frame_equal(trained.reset_index(drop=True), plain, check_exact=True)


def test_best_of_n_run_traces_the_curve_from_one_set_of_samples(tmp_path, tiny_proxy):
    assert run(tmp_path, "--algo", "best-of-n", "--n", "4", "--eval-best-of-n-curve", "8", "--eval-checkpoint-prompts", "6") == 0
    assert run(tmp_path, "--algo", "sft", "--eval-checkpoint-prompts", "6") == 0
    frame = trajectory_frame(Store(tmp_path / "store.sqlite"))
    curve = frame[frame["kind"] == "best-of-n"]
    assert curve["n"].tolist() == [1, 2, 4, 8] and curve["config"].unique().tolist() == ["best-of-n"]
    assert curve["kl"].tolist() == pytest.approx([best_of_n_kl(n) for n in (1, 2, 4, 8)])
    assert curve["d"].tolist() == pytest.approx([math.sqrt(best_of_n_kl(n)) for n in (1, 2, 4, 8)])
    assert curve["proxy"].is_monotonic_increasing  # the best of more samples scores higher on r̂, by construction
    sft = frame[frame["config"] == "sft"]
    assert sft["kind"].tolist() == ["rl"] and sft["episodes"].tolist() == [0] and sft["kl"].tolist() == [0]
    # best-of-1 is π_sft: the same prompts, another draw, so close to the SFT point but not equal
    assert abs(curve["gold"].iloc[0] - sft["gold"].iloc[0]) < 0.5


def test_fit_command_fits_the_stored_curves_and_says_when_there_are_none(tmp_path, tiny_proxy, capsys):
    from harness.cli import main

    store = str(tmp_path / "store.sqlite")
    assert run(tmp_path, "--algo", "sft", "--eval-best-of-n-curve", "8", "--eval-checkpoint-prompts", "6") == 0
    capsys.readouterr()
    assert main(["fit", "--store", store]) == 2  # π_sft alone is a point: nothing to fit
    assert "no trajectories to fit" in capsys.readouterr().err
    assert run(tmp_path, "--algo", "best-of-n", "--eval-best-of-n-curve", "8", "--eval-checkpoint-prompts", "6") == 0
    capsys.readouterr()
    assert main(["fit", "--store", store, "--format", "csv", "--bootstrap", "20"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["config"].tolist() == ["best-of-n"] and table["points"].tolist() == [3]  # n = 2, 4, 8


def test_evaluation_settings_for_checkpoints_are_checked(tmp_path, capsys):
    assert run(tmp_path, "--algo", "sft", "--eval-checkpoint-every", "-1") == 2
    assert "--eval-checkpoint-every must be >= 0" in capsys.readouterr().err
    assert run(tmp_path, "--algo", "sft", "--eval-checkpoint-prompts", "0") == 2
    assert "--eval-checkpoint-prompts must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "store.sqlite").exists() or runs(tmp_path) == []


@pytest.mark.parametrize("final_is_sft, expected", [(False, [0, 1]), (True, [0])])
def test_an_offline_learner_gets_its_final_policy_measured(tmp_path, final_is_sft, expected):
    """DPO spends no episodes, so no mark is ever crossed: its trajectory is π_sft and the final
    policy — unless the policy is π_sft itself (``sft``), which is one point."""
    from harness.api import Budget, Policy
    from harness.running.checkpoints import CheckpointSchedule, measure_checkpoints

    schedule = CheckpointSchedule(512, Budget(4096), tmp_path)
    final = Policy(torch.nn.Linear(1, 1), tokenizer=None)
    points = measure_checkpoints(schedule, None, final, last_step=1, initial={"kl": 0.0}, final_is_sft=final_is_sft,
                                 measure_policy=lambda policy: {"kl": 1.5})  # fmt: skip
    assert [step for step, _ in points] == expected
    assert [p["checkpoint/episodes"] for _, p in points] == [0.0] * len(expected)


def test_checkpoints_along_training_are_measured_on_held_out_prompts_only(tmp_path, tiny_prepared, tiny_proxy, monkeypatch):
    """A guard (#23): every prompt a checkpoint measurement samples on is a held-out evaluation prompt,
    never a training prompt (the curve would otherwise score the policy on what it trained on)."""
    import harness.running.training as training
    from harness.cli import main
    from tests.conftest import TINY_FLAGS

    seen: list[str] = []
    original = training.measure

    def spy(policy, ref, prompts, *args, **kwargs):
        seen.extend(prompts)
        return original(policy, ref, prompts, *args, **kwargs)

    monkeypatch.setattr(training, "measure", spy)
    assert main(["run", "--algo", "ppo", "--budget", "64", "--batch-size", "32", "--eval-checkpoint-every", "32",
                 "--store", str(tmp_path / "s.sqlite"), "--results-dir", str(tmp_path / "r"), "--quiet", *TINY_FLAGS]) == 0  # fmt: skip
    assert seen, "no checkpoint was measured"
    assert set(seen) <= set(tiny_prepared.eval_prompts)
    assert not set(seen) & set(tiny_prepared.train_prompts)
