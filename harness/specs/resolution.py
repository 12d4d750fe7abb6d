"""Resolution: run specs from names and configs, and each spec's plugins looked up once.

One walk from a command line (or a sweep file) to a stored run consults the registries once per
name: :func:`make_plans` takes names or the registry entries a caller already looked up (the
CLI needs them to build its parser), fills the defaults, checks the budget and returns one
:class:`RunPlan` per seed — the spec and the entries it names. The runner takes a plan and never
consults a registry; a bare :class:`~harness.specs.run_spec.RunSpec` (a sweep re-read from the
store, a spec that crossed a process boundary) is resolved once by :func:`resolve` on the side
that runs it.

Layer: specs. Imports harness.config, harness.errors, harness.registry and this package only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.config import config_dict, config_from_dict
from harness.errors import UsageError
from harness.registry import Entry
from harness.specs.manifest import harness_code_version
from harness.specs.run_spec import Component, EvaluationSettings, RunSpec


def _build(entry: Entry, component: Component, kind: str):
    """``entry``'s class configured exactly as ``component`` says."""
    cls = entry.cls
    return cls(config_from_dict(cls.Config, component.config, what=f"{kind} {component.name}"))


@dataclass(frozen=True)
class RunPlan:
    """One run spec with what it names looked up: the registry entries of its benchmark,
    algorithm and reward model, the evaluators that will measure it (every registered one), and
    its evaluation settings checked. Built once (:func:`make_plans`, :func:`resolve`); the
    objects are built from it (:meth:`build`) without a registry. Not serialised: a spec crosses
    process boundaries as ``spec.to_dict()`` and is resolved again there."""

    spec: RunSpec
    benchmark: Entry
    algorithm: Entry
    reward_model: Entry
    evaluators: tuple[Entry, ...]
    settings: EvaluationSettings

    def build_benchmark(self):
        return _build(self.benchmark, self.spec.benchmark, "benchmark")

    def build_algorithm(self):
        return _build(self.algorithm, self.spec.algorithm, "algorithm")

    def build_reward_model(self):
        return _build(self.reward_model, self.spec.reward_model, "reward model")

    def build(self) -> tuple[Any, Any, Any]:
        """(benchmark, algorithm, reward model) objects, configured exactly as the spec says."""
        return self.build_benchmark(), self.build_algorithm(), self.build_reward_model()


def resolve(host, spec: RunSpec) -> RunPlan:
    """``spec``'s plugins looked up in ``host``'s registries, once (an unknown name is a
    :class:`UsageError` listing the valid ones)."""
    return RunPlan(
        spec=spec,
        benchmark=host.benchmarks.get(spec.benchmark.name),
        algorithm=host.algorithms.get(spec.algorithm.name),
        reward_model=host.reward_models.get(spec.reward_model.name),
        evaluators=tuple(host.evaluators.entries()),
        settings=spec.evaluation_settings(),
    )


def as_plan(host, run: RunSpec | RunPlan) -> RunPlan:
    """``run`` itself when it is resolved already, else :func:`resolve`\\ d."""
    return run if isinstance(run, RunPlan) else resolve(host, run)


def spec_of(run: RunSpec | RunPlan) -> RunSpec:
    return run.spec if isinstance(run, RunPlan) else run


def _plugin_code(host, role: str, entry) -> dict[str, str]:
    """A third-party plugin's version under ``role`` (built-ins are the harness's own code)."""
    if entry.plugin.startswith(f"{host.own_distribution}:"):
        return {}
    return {role: host.plugin_versions.get(entry.plugin, "unknown")}


def _entry(registry, name_or_entry: str | Entry) -> Entry:
    return name_or_entry if isinstance(name_or_entry, Entry) else registry.get(name_or_entry)


def make_plans(
    host,
    *,
    benchmark: str | Entry,
    bench_config: Any = None,
    algorithm: str | Entry,
    algo_config: Any = None,
    reward_model: str | Entry,
    rm_config: Any = None,
    budget: int | None = None,
    evaluation: EvaluationSettings | None = None,
    seeds: list[int],
) -> list[RunPlan]:
    """One plan per distinct seed (in the given order). ``benchmark``, ``algorithm`` and
    ``reward_model`` are names, checked against the registries (a :class:`UsageError` lists the
    valid ones), or the registry entries a caller has looked up already (then they are not looked
    up again). A missing config is the class's default; the budget defaults to the benchmark's;
    the algorithm is stored under its row name (``ppo`` with β = 0 is ``ppo-nokl``) and the reward
    model's config with the benchmark's defaults filled in (``resolved_config``): one
    experiment, one spec, however it was spelt."""
    bench_entry = _entry(host.benchmarks, benchmark)
    algo_entry = _entry(host.algorithms, algorithm)
    rm_entry = _entry(host.reward_models, reward_model)
    algorithm = algo_entry.name
    bench_config = bench_config if bench_config is not None else bench_entry.cls.Config()
    algo_config = algo_config if algo_config is not None else algo_entry.cls.Config()
    rm_config = rm_entry.cls(rm_config).resolved_config(bench_config.preference_prompts, bench_config.ranking_k)
    row_name = algo_entry.cls.row_name(algo_config)
    if row_name != algorithm:
        algo_entry = host.algorithms.get(row_name)
    if budget is not None and budget <= 0:
        raise UsageError(f"the budget must be a positive number of episodes, got {budget}")
    resolved_budget = int(budget if budget is not None else bench_config.default_budget)
    per_update = algo_entry.cls(algo_config).episodes_per_update()
    if per_update > resolved_budget:  # checked here, not after a minute of building the benchmark
        raise UsageError(f"a budget of {resolved_budget} episodes buys no update of {algorithm}: one spends {per_update} "
                         "(--batch-size); raise --budget or lower --batch-size")  # fmt: skip
    evaluators = tuple(host.evaluators.entries())
    code = {"harness": harness_code_version()}
    roles = [("benchmark", bench_entry), ("algorithm", algo_entry), ("reward_model", rm_entry)]
    roles += [(f"evaluator {e.name}", e) for e in evaluators]  # every registered evaluator runs
    for role, entry in roles:
        code.update(_plugin_code(host, role, entry))
    # The benchmark's default budget is resolved into `budget`: `--budget N` and
    # `--benchmark-set default_budget=N` are one experiment.
    bench_settings = {k: v for k, v in config_dict(bench_config).items() if k != "default_budget"}
    settings = evaluation or EvaluationSettings()
    template = RunSpec(
        benchmark=Component(bench_entry.name, bench_settings, version=str(bench_entry.cls.version)),
        algorithm=Component(algo_entry.name, config_dict(algo_config)),
        reward_model=Component(rm_entry.name, config_dict(rm_config), oracle=bool(getattr(rm_entry.cls, "is_oracle", False))),
        budget=resolved_budget,
        evaluation=asdict(settings),
        code=code,
        seed=0,
    )
    return [RunPlan(template.with_seed(seed), bench_entry, algo_entry, rm_entry, evaluators, settings) for seed in dict.fromkeys(seeds)]


def make_specs(host, **names_and_configs) -> list[RunSpec]:
    """:func:`make_plans`' specs alone (same arguments): one spec per distinct seed."""
    return [plan.spec for plan in make_plans(host, **names_and_configs)]
