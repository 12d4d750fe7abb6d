"""One walk: following one run spec from the command line to its stored row consults the plugin
registries once per name per process. Resolution (:func:`harness.specs.make_plans`,
:func:`harness.specs.resolve`) looks each name up once, or not at all when the caller passes the
entries it has looked up already; the runner, given a :class:`~harness.specs.RunPlan`, looks up
nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.registry import Registry
from harness.specs import EvaluationSettings, RunPlan, make_plans, resolve
from tests.conftest import TINY_FLAGS, tiny_sentiment_config

NAMES = {("benchmark", "sentiment"), ("algorithm", "sft"), ("reward model", "pairwise")}


@pytest.fixture
def lookups(monkeypatch) -> Counter:
    """How many times each (registry kind, name) is looked up (``Registry.get``) from now on."""
    counts: Counter = Counter()
    original = Registry.get

    def counting(self, name):
        counts[(self.kind, name)] += 1
        return original(self, name)

    monkeypatch.setattr(Registry, "get", counting)
    return counts


@pytest.fixture(scope="module")
def host():
    from harness.plugin_manager import load_plugins

    return load_plugins()


def _plans(host, **names):
    kwargs = dict(benchmark="sentiment", algorithm="sft", reward_model="pairwise")
    kwargs.update(names)
    return make_plans(host, **kwargs, bench_config=tiny_sentiment_config(), budget=64,
                      evaluation=EvaluationSettings(samples_per_prompt=2), seeds=[0])  # fmt: skip


def test_resolution_looks_each_name_up_once(host, lookups):
    (plan,) = _plans(host)
    assert dict(lookups) == dict.fromkeys(NAMES, 1)
    assert (plan.benchmark.name, plan.algorithm.name, plan.reward_model.name) == ("sentiment", "sft", "pairwise")
    lookups.clear()
    assert resolve(host, plan.spec) == plan  # a bare spec, resolved on another side: once per name again
    assert dict(lookups) == dict.fromkeys(NAMES, 1)


def test_entries_a_caller_looked_up_are_not_looked_up_again(host, lookups):
    entries = {"benchmark": host.benchmarks.get("sentiment"), "algorithm": host.algorithms.get("sft"),
               "reward_model": host.reward_models.get("pairwise")}  # fmt: skip
    lookups.clear()
    by_entries = _plans(host, **entries)
    assert not lookups
    assert [p.spec for p in by_entries] == [p.spec for p in _plans(host)]  # the same spec however it was named


def test_the_runner_looks_nothing_up_for_a_plan(tmp_path, tiny_proxy, host, lookups):
    from harness.running.runner import Workspace, run

    (plan,) = _plans(host)
    lookups.clear()

    def workspace(store: str) -> Workspace:
        return Workspace(host, store=tmp_path / store, results_dir=tmp_path / "results", device="cpu", quiet=True)

    with workspace("a.sqlite") as a:
        result = run(plan, a)
    assert result.status == "finished", result.error
    assert not lookups  # resolved before: the runner consults no registry
    with workspace("b.sqlite") as b:
        again = run(plan.spec, b)
    assert again.status == "finished" and again.metrics == result.metrics
    assert dict(lookups) == dict.fromkeys(NAMES, 1)  # a bare spec: resolved once, inside the runner


def test_harness_run_looks_each_name_up_once(tmp_path, tiny_proxy, lookups):
    from harness.cli import main

    code = main(["run", "--algo", "sft", "--budget", "64", "--seeds", "0", "--store", str(tmp_path / "s.sqlite"),
                 "--results-dir", str(tmp_path / "results"), "--quiet", *TINY_FLAGS])  # fmt: skip
    assert code == 0
    assert set(lookups) == NAMES and dict(lookups) == dict.fromkeys(NAMES, 1), dict(lookups)


def test_a_plan_is_a_spec_and_its_entries():
    assert [f for f in RunPlan.__dataclass_fields__] == ["spec", "benchmark", "algorithm", "reward_model", "evaluators", "settings"]
