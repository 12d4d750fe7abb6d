"""Sweeps: a grid of benchmarks × algorithm configs × seeds from one YAML file, run by the
local executor through the same code path as ``harness run``, then a leaderboard.

.. code-block:: yaml

    benchmarks: [sentiment]          # each may also be {name: sentiment, bench: {annotator_noise: 0.5}}
    seeds: [0, 1, 2]
    reward_model: pairwise
    budget: 4096                     # optional: the benchmark's default otherwise
    runs:
      - algo: sft
      - algo: ppo
      - algo: ppo
        args: {kl: false}            # flags of the algorithm: --no-kl
      - algo: ppo
        reward_model: gold           # this row only: the oracle upper bound
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError

TOP_KEYS = {"benchmarks", "seeds", "reward_model", "rm_args", "budget", "runs", "device"}
RUN_KEYS = {"algo", "args", "reward_model"}


@dataclass
class SweepRun:
    benchmark: str
    bench: dict[str, Any]
    algo: str
    args: dict[str, Any]
    seeds: list[int]
    reward_model: str
    rm_args: dict[str, Any]
    budget: int | None
    device: str = "auto"

    def argv(self) -> list[str]:
        """The ``harness run`` arguments of this cell."""
        out = ["--benchmark", self.benchmark, "--algo", self.algo, "--reward-model", self.reward_model, "--device", self.device]
        out += ["--seeds", *map(str, self.seeds)]
        if self.budget is not None:
            out += ["--budget", str(self.budget)]
        out += [f"--bench={k}={v}" for k, v in self.bench.items()]
        out += _flags(self.args) + _flags(self.rm_args, prefix="rm-")
        return out


def _flags(args: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in args.items():
        flag = "--" + prefix + str(key).replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--" + prefix + "no-" + str(key).replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


@dataclass
class Sweep:
    path: Path
    runs: list[SweepRun] = field(default_factory=list)


def _error(path: Path, message: str) -> UsageError:
    return UsageError(f"{path}: {message}")


def load_sweep(path: Path) -> Sweep:
    """Parse and check a sweep file (``yaml.safe_load``: no arbitrary objects)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read sweep file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise _error(path, f"invalid YAML at{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise _error(path, "expected a mapping with 'benchmarks', 'seeds' and 'runs'")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _error(path, f"unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(TOP_KEYS))}")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise _error(path, "'seeds' must be a list of non-negative integers")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise _error(path, "'runs' must be a non-empty list of {algo: NAME, args: {...}}")
    benchmarks = data.get("benchmarks", ["sentiment"])
    if not isinstance(benchmarks, list) or not benchmarks:
        raise _error(path, "'benchmarks' must be a non-empty list")
    budget = data.get("budget")
    if budget is not None and (not isinstance(budget, int) or budget <= 0):
        raise _error(path, "'budget' must be a positive integer")
    sweep = Sweep(path)
    for b in benchmarks:
        name, bench = (b, {}) if isinstance(b, str) else (b.get("name"), b.get("bench", {})) if isinstance(b, dict) else (None, None)
        if not isinstance(name, str) or not isinstance(bench, dict):
            raise _error(path, f"benchmark entry {b!r}: expected a name or {{name: ..., bench: {{...}}}}")
        for i, r in enumerate(runs, 1):
            if not isinstance(r, dict) or "algo" not in r or set(r) - RUN_KEYS or not isinstance(r.get("args", {}), dict):
                raise _error(path, f"runs[{i}]: expected {{algo: NAME, args: {{...}}, reward_model: NAME}}, got {r!r}")
            sweep.runs.append(
                SweepRun(name, bench, r["algo"], r.get("args", {}), seeds, r.get("reward_model", data.get("reward_model", "pairwise")),
                         data.get("rm_args", {}), budget, data.get("device", "auto"))
            )
    return sweep
