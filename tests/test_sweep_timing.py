"""Where a sweep's time goes: the stage cache records what it built (and how long that took) and
what it loaded; each run records its phases beside its results; a sweep ends with a summary, one
row per algorithm, per benchmark and per stage; the local executor's torch stays on the cores the
process may use. The sweeps here run the arithmetic benchmark at a size that builds cold in about
a second."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
import torch
from conftest import make_spec

from harness.cli import main
from harness.pipeline.cache import STAGES, StageCache, StageEvent, stage_info
from harness.plugin_manager import load_plugins
from harness.running.executors import run_payload, store_payload
from harness.running.runner import PHASES, RunResult, Workspace, run_times
from harness.running.sweep import SweepOutcome, load_sweep, run_sweep, time_summary
from harness.store import Store

#: the arithmetic benchmark at test size: every stage builds in well under a second
ARITHMETIC = ("{max_operand: 9, corpus_size: 500, sft_size: 200, preference_prompts: 64, preference_eval_prompts: 16, "
              "max_new_tokens: 4}")  # fmt: skip
SWEEP = f"""\
benchmarks: [{{name: arithmetic, settings: {ARITHMETIC}}}]
seeds: [0, 1]
budget: 64
evaluation: {{samples_per_prompt: 1, max_prompts: 8, checkpoint_every: 32, checkpoint_prompts: 4}}
runs:
  - algo: sft
  - algo: ppo
    args: {{batch_size: 32}}
"""
#: the phases inside the run's claim, hence inside the store's wall_seconds
IN_WALL = [f"{phase}_s" for phase in PHASES if phase != "stages"]


def summary_rows(text: str, title: str) -> dict[str, list[str]]:
    """One section of :func:`time_summary`'s table (``title`` starts its header line): each
    row's label → its cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {title} "))
    width = 4 if title == "stage" else 8  # built, built s, loaded, loaded s; or the runs' columns
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if not line.startswith("  ") or cells[-1] == "s":  # the end, or the next section's header ("… stages s")
            break
        rows[" ".join(cells[:-width])] = cells[-width:]
    return rows


def headline(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("time: "))


def sweep_in(folder: Path, cache: StageCache, host) -> tuple[SweepOutcome, str, Workspace]:
    file = folder / "sweep.yaml"
    file.write_text(SWEEP)
    out = io.StringIO()
    with Workspace(host, store=folder / "store.sqlite", results_dir=folder / "results", cache=cache, device="cpu",
                   quiet=True) as workspace:  # fmt: skip
        outcome = run_sweep(load_sweep(file, host), workspace, out=out)
    return outcome, out.getvalue(), workspace


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """One sweep from an empty cache, on a process that may use one core (its torch set to 2
    threads beforehand: the local executor must bring it down)."""
    folder = tmp_path_factory.mktemp("cold")
    cache, host = StageCache(folder / "cache"), load_plugins()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
            outcome, text, _ = sweep_in(folder, cache, host)
    finally:
        torch.set_num_threads(before)
    return outcome, text, folder, cache, host


def test_a_stage_records_its_build_time_and_then_its_loads(tmp_path):
    cache = StageCache(tmp_path)
    built = []

    def build(folder: Path) -> None:
        built.append(folder)
        time.sleep(0.05)
        (folder / "x.txt").write_text("x")

    folder = cache.get_or_build("data", "k1", build)
    (event,) = cache.events
    assert (event.stage, event.key, event.action) == ("data", "k1", "built") and 0.05 <= event.seconds < 5
    assert stage_info(folder)["seconds"] == event.seconds  # the same figure as stage.json's
    again = StageCache(tmp_path)  # another process: it loads
    assert again.get_or_build("data", "k1", build) == folder and len(built) == 1
    assert [(e.stage, e.key, e.action) for e in again.events] == [("data", "k1", "loaded")] and again.events[0].seconds < 1
    assert cache.events == [event]  # per object: the first one saw its build only

    # a stage.json without the build time (hand-edited, or some older writer) still loads
    info = stage_info(folder)
    del info["seconds"]
    (folder / "stage.json").write_text(json.dumps(info))
    third = StageCache(tmp_path)
    assert third.get_or_build("data", "k1", build) == folder and len(built) == 1 and third.events[0].action == "loaded"
    assert next(e for e in third.entries() if e["key"] == "k1")["status"] == "ok"


def test_a_cold_sweep_times_each_stage_it_builds_and_a_second_one_loads_them(cold, tmp_path):
    outcome, text, folder, cache, host = cold
    built = [e for e in outcome.stages if e.action == "built"]
    assert {e.stage for e in built} == {"data", "base_lm", "sft", "preferences", "reward_model"}  # arithmetic has no judge
    for event in built:  # each as its stage.json records it
        assert stage_info(cache.folder(event.stage, event.key))["seconds"] == event.seconds
    assert outcome.seconds >= sum(e.seconds for e in built)
    stages = summary_rows(text, "stage")
    assert list(stages) == [s for s in STAGES if s != "judge"]
    assert stages["sft"][:2] == ["1", f"{next(e.seconds for e in built if e.stage == 'sft'):.1f}"]

    # the same sweep on a fresh store: every stage comes from the cache
    again, text2, _ = sweep_in(tmp_path, StageCache(folder / "cache"), host)
    assert again.stages and all(e.action == "loaded" for e in again.stages)
    assert {e.stage for e in again.stages} == {e.stage for e in built}
    assert all(row[0] == "0" and int(row[2]) >= 1 for row in summary_rows(text2, "stage").values())
    assert f"0 stages built in 0.0 s, {len(again.stages)} loaded" in headline(text2)


def test_each_run_records_its_phase_times_within_its_wall_time(cold, capsys):
    outcome, _, folder, _, _ = cold
    assert [r.status for r in outcome.results] == ["finished"] * 4
    with Store(folder / "store.sqlite") as store:
        for result in outcome.results:
            record = store.get_run(result.run_id)
            times = result.times
            assert set(times) == {f"{p}_s" for p in PHASES} | {"wall_s"}
            assert all(v >= 0 for v in times.values())
            inside = sum(times[k] for k in IN_WALL)
            # within the runner's wall time and the store's (the leaderboard's wall_s), which agree but for the store's commit
            assert inside <= times["wall_s"] and inside <= record.wall_seconds, (times, record.wall_seconds)
            assert abs(times["wall_s"] - record.wall_seconds) < 0.5 and record.wall_seconds - inside < 1.0
            assert run_times(record.run_dir) == times  # kept in the run folder's run.json
            assert main(["show", result.run_id, "--store", str(folder / "store.sqlite"), "--samples", "0"]) == 0
            shown = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  time: "))
            assert f"train {times['train_s']:.1f} s" in shown and f"wall {times['wall_s']:.1f} s" in shown, shown
            # and nowhere else: metrics and the budget are what they were
            assert "time" not in record.budget_used and not any(k.startswith("time") for k in record.metrics)
            if result.spec.algorithm.name == "ppo":
                assert times["train_s"] > 0.01 and times["checkpoints_s"] > 0.01
        first = outcome.results[0]
        # the first run built them all
        assert first.times["stages_s"] >= sum(e.seconds for e in outcome.stages if e.action == "built")
        # the local executor's runs: torch on the one core this process was allowed, not the 2 threads it had
        manifests = [store.get_run(r.run_id).manifest for r in outcome.results]
        assert all((m["torch_threads"], m["cpus_allowed"]) == (1, 1) for m in manifests)


def test_the_summary_has_one_row_per_algorithm_and_per_benchmark(cold):
    outcome, text, *_ = cold
    rows = summary_rows(text, "algorithm · reward model")
    assert list(rows) == ["sft · pairwise", "ppo · pairwise"]
    for label, name in [("sft · pairwise", "sft"), ("ppo · pairwise", "ppo")]:
        runs = [r for r in outcome.results if r.spec.algorithm.name == name]
        wall = sum(r.times["wall_s"] for r in runs)
        assert rows[label][:3] == ["2", f"{wall:.1f}", f"{wall / 2:.1f}"]
        assert rows[label][3] == f"{sum(r.times['train_s'] for r in runs):.1f}"
    assert list(summary_rows(text, "benchmark")) == ["arithmetic"]
    assert summary_rows(text, "benchmark")["arithmetic"][0] == "4"
    assert text.splitlines()[-1].startswith("  reward_model")  # the summary ends the sweep's output
    assert all(len(line) < 120 for line in text.splitlines() if line.startswith(("time:", "  ")))


def test_summary_labels_rows_as_the_leaderboard_and_counts_what_did_not_run():
    def result(seed, status="finished", **spec):
        times = {} if status == "skipped" else {"stages_s": 1.0, "setup_s": 0.5, "train_s": 6.0, "checkpoints_s": 1.0,
                                                "eval_s": 2.0, "save_s": 0.25, "wall_s": 10.0}  # fmt: skip
        return RunResult(make_spec(seed=seed, **spec), "r", "n", status, times=times)

    results = [result(s, algo_config={"kl_coef": kl}) for kl in (0.05, 0.0) for s in (0, 1)]
    results += [result(0, reward_model="gold", oracle=True, algo_config={"kl_coef": 0.05}), result(1, status="skipped"),
                result(2, algorithm="sft", algo_config={})]  # fmt: skip
    results.append(RunResult(make_spec(seed=3), None, "", "failed", error="its Ray worker died"))  # no times
    text = time_summary(results, [StageEvent("sft", "k", "built", 12.0), StageEvent("sft", "k2", "loaded", 0.01)], 99.0)
    assert headline(text).startswith("time: 7 runs (1 failed; 1 skipped) in 99.0 s wall; 1 stages built in 12.0 s, 1 loaded")
    rows = summary_rows(text, "algorithm · reward model")
    assert list(rows) == ["ppo (kl_coef=0.05) · pairwise", "ppo (kl_coef=0) · pairwise", "ppo (kl_coef=0.05) · gold (oracle)",
                          "sft · pairwise"]  # fmt: skip
    assert rows["ppo (kl_coef=0) · pairwise"] == ["2", "20.0", "10.0", "12.0", "2.0", "4.0", "2.0", "2.0"]
    assert summary_rows(text, "stage")["sft"] == ["1", "12.0", "1", "0.0"]
    # runs stored before (skipped) still tell the rows apart: only the new config ran, its label says which
    again = [result(s, status="skipped", algo_config={"kl_coef": 0.05}) for s in (0, 1)]
    again += [result(s, algo_config={"kl_coef": 0.0}) for s in (0, 1)]
    assert list(summary_rows(time_summary(again, [], 5.0), "algorithm · reward model")) == ["ppo (kl_coef=0) · pairwise"]


def test_the_executor_path_prints_the_summary_and_a_payload_carries_the_times(cold, tmp_path):
    outcome, _, folder, cache, host = cold

    class Executor:  # what RayExecutor.run hands back: the runs, stored by the driver
        def run(self, sweep, workspace, out):
            data = next(e for e in outcome.stages if e.stage == "data")
            cache.get_or_build("data", data.key, lambda f: None)  # a stage the driver loads before dispatch
            return SweepOutcome(outcome.results)

    out = io.StringIO()
    with Workspace(host, store=tmp_path / "s.sqlite", results_dir=tmp_path / "r", cache=cache, device="cpu", quiet=True) as ws:
        again = run_sweep(load_sweep(folder / "sweep.yaml", host), ws, out=out, executor=Executor())
    assert [e.action for e in again.stages] == ["loaded"] and again.seconds > 0
    assert list(summary_rows(out.getvalue(), "algorithm · reward model")) == ["sft · pairwise", "ppo · pairwise"]

    with Store(folder / "store.sqlite") as store, Store(tmp_path / "copy.sqlite") as copy:
        x = outcome.results[-1]
        payload = run_payload(store, x, [])
        assert store_payload(copy, x.spec, payload).times == x.times
