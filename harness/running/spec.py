"""The run spec: a frozen, serialisable description of one run, and its identity.

A :class:`RunSpec` names the benchmark (name, version, full config), the algorithm (name, full
config), the reward model (name, full config), the training budget, the evaluation settings, the
code version and the seed. Two keys come from it:

- :attr:`RunSpec.key` — everything but the seed. The store keeps at most one finished run per
  (key, seed); sweeps resume by it.
- :attr:`RunSpec.experiment_key` — everything but the seed and the code version: one leaderboard
  row (its runs over seeds; runs of another code version of it are flagged, never pooled silently).

Every spec is built by :func:`make_specs` from names and config objects (the CLI and sweep files
both go through it), so the same experiment has the same key however it was spelt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.config import config_dict, config_from_dict, help_field
from harness.errors import UsageError
from harness.running.manifest import harness_code_version

#: bump when the meaning of a spec's fields changes
SPEC_VERSION = 1


@dataclass(frozen=True)
class EvaluationSettings:
    """How a trained policy is evaluated (flags ``--eval-*``)."""

    samples_per_prompt: int = help_field("samples per held-out prompt at evaluation", 8)
    max_prompts: int = help_field("evaluate on the first N held-out prompts (0: all of them)", 0)
    checkpoint_every: int = help_field("measure gold, proxy and KL along training every N episodes (0: off)", 512)
    checkpoint_prompts: int = help_field("checkpoints use the first N held-out prompts", 64)
    checkpoint_samples_per_prompt: int = help_field("samples per prompt at each checkpoint", 2)
    best_of_n_curve: int = help_field("a best-of-n run also traces best-of-k for k = 1, 2, 4, … up to N from one set of N samples per checkpoint prompt (0: off)", 64)

    def __post_init__(self):
        if self.samples_per_prompt < 1:
            raise ValueError(f"--eval-samples-per-prompt must be >= 1, got {self.samples_per_prompt}")
        if self.max_prompts < 0:
            raise ValueError(f"--eval-max-prompts must be >= 0, got {self.max_prompts}")
        for name in ("checkpoint_every", "best_of_n_curve"):
            if getattr(self, name) < 0:
                raise ValueError(f"--eval-{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("checkpoint_prompts", "checkpoint_samples_per_prompt"):
            if getattr(self, name) < 1:
                raise ValueError(f"--eval-{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Component:
    """One registered part of a run: its name, its full config (JSON), and for a benchmark its
    version. ``oracle`` marks the gold reward used as a reward model."""

    name: str
    config: dict[str, Any]
    version: str = ""
    oracle: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "config": self.config}
        if self.version:
            out["version"] = self.version
        if self.oracle:
            out["oracle"] = True
        return out


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunSpec:
    benchmark: Component
    algorithm: Component
    reward_model: Component
    budget: int  # training episodes
    evaluation: dict[str, Any]
    code: dict[str, str]  # {"harness": version, "<role>": a third-party plugin's version}
    seed: int
    spec_version: int = field(default=SPEC_VERSION)

    # -- identity ----------------------------------------------------------------------------

    def identity(self, with_code: bool = True) -> dict[str, Any]:
        """Everything that defines the experiment: all but the seed (and, unless ``with_code``, the code)."""
        out = {
            "spec_version": self.spec_version,
            "benchmark": self.benchmark.as_dict(),
            "algorithm": self.algorithm.as_dict(),
            "reward_model": self.reward_model.as_dict(),
            "budget": self.budget,
            "evaluation": self.evaluation,
        }
        if with_code:
            out["code"] = self.code
        return out

    @property
    def key(self) -> str:
        """The identity with the code version, without the seed: one (key, seed) is finished at most once."""
        return _digest(self.identity())

    @property
    def experiment_key(self) -> str:
        """The identity without code version and seed: one leaderboard row."""
        return _digest(self.identity(with_code=False))

    @property
    def code_version(self) -> str:
        """The code as one short string: the harness's version, then any third-party plugin's."""
        return " ".join([self.code.get("harness", "?")] + [f"{role}={v}" for role, v in sorted(self.code.items()) if role != "harness"])

    # -- (de)serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {**self.identity(), "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(
            benchmark=Component(**data["benchmark"]),
            algorithm=Component(**data["algorithm"]),
            reward_model=Component(**data["reward_model"]),
            budget=int(data["budget"]),
            evaluation=dict(data["evaluation"]),
            code=dict(data["code"]),
            seed=int(data["seed"]),
            spec_version=int(data.get("spec_version", SPEC_VERSION)),
        )

    def with_seed(self, seed: int) -> RunSpec:
        return replace(self, seed=seed)

    # -- what the runner needs ------------------------------------------------------------------

    def evaluation_settings(self) -> EvaluationSettings:
        return EvaluationSettings(**self.evaluation)

    def instantiate(self, host) -> tuple[Any, Any, Any]:
        """(benchmark, algorithm, reward model) objects, configured exactly as the spec says."""

        def build(registry, component: Component):
            cls = registry.get(component.name).cls
            return cls(config_from_dict(cls.Config, component.config, what=f"{registry.kind} {component.name}"))

        return build(host.benchmarks, self.benchmark), build(host.algorithms, self.algorithm), build(host.reward_models, self.reward_model)


def _plugin_code(host, role: str, entry) -> dict[str, str]:
    """A third-party plugin's version under ``role`` (built-ins are the harness's own code)."""
    if entry.plugin.startswith(f"{host.own_distribution}:"):
        return {}
    return {role: host.plugin_versions.get(entry.plugin, "unknown")}


def make_specs(
    host,
    *,
    benchmark: str,
    bench_config: Any = None,
    algorithm: str,
    algo_config: Any = None,
    reward_model: str,
    rm_config: Any = None,
    budget: int | None = None,
    evaluation: EvaluationSettings | None = None,
    seeds: list[int],
) -> list[RunSpec]:
    """One spec per distinct seed (in the given order). Names are checked against the registries
    (a :class:`UsageError` lists the valid ones); a missing config is the class's default; the
    budget defaults to the benchmark's; the algorithm is stored under its row name (``ppo`` with
    β = 0 is ``ppo-nokl``) and the reward model's config with the benchmark's defaults filled in
    (``resolved_config``): one experiment, one spec, however it was spelt."""
    bench_entry = host.benchmarks.get(benchmark)
    algo_entry = host.algorithms.get(algorithm)
    rm_entry = host.reward_models.get(reward_model)
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
    code = {"harness": harness_code_version()}
    roles = [("benchmark", bench_entry), ("algorithm", algo_entry), ("reward_model", rm_entry)]
    roles += [(f"evaluator {e.name}", e) for e in host.evaluators.entries()]  # every registered evaluator runs
    for role, entry in roles:
        code.update(_plugin_code(host, role, entry))
    # The benchmark's default budget is resolved into `budget`: `--budget N` and
    # `--benchmark-set default_budget=N` are one experiment.
    bench_settings = {k: v for k, v in config_dict(bench_config).items() if k != "default_budget"}
    template = RunSpec(
        benchmark=Component(bench_entry.name, bench_settings, version=str(bench_entry.cls.version)),
        algorithm=Component(algo_entry.name, config_dict(algo_config)),
        reward_model=Component(rm_entry.name, config_dict(rm_config), oracle=bool(getattr(rm_entry.cls, "is_oracle", False))),
        budget=resolved_budget,
        evaluation=asdict(evaluation or EvaluationSettings()),
        code=code,
        seed=0,
    )
    return [template.with_seed(seed) for seed in dict.fromkeys(seeds)]

