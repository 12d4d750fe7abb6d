"""The run spec: a frozen, serialisable description of one run, and its identity.

A :class:`RunSpec` names the benchmark (name, version, full config), the algorithm (name, full
config), the reward model (name, full config), the training budget, the evaluation settings, the
code version and the seed. Two keys come from it:

- :attr:`RunSpec.key` — everything but the seed. The store keeps at most one finished run per
  (key, seed); sweeps resume by it.
- :attr:`RunSpec.experiment_key` — everything but the seed and the code version: one leaderboard
  row (its runs over seeds; runs of another code version of it are flagged, never pooled silently).

Every spec is built by :func:`harness.specs.resolution.make_specs` (or ``make_plans``) from names and
config objects (the CLI and sweep files both go through it), so the same experiment has the same
key however it was spelt. A spec is a plain value: it names its plugins and never looks them up
(:func:`harness.specs.resolution.resolve` does, once).

Layer: specs. Imports only harness.config and the standard library.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from harness.config import help_field

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
