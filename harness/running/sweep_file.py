"""Sweep files: a grid of benchmarks × algorithm configs × seeds from one YAML file, read, checked and
turned into run specs directly (no command lines in between), each resolved once
(:class:`~harness.specs.RunPlan`); :mod:`harness.running.sweep` runs them.

.. code-block:: yaml

    benchmarks: [sentiment]          # each may also be {name: sentiment, settings: {annotator_noise: 0.5}}
    seeds: [0, 1, 2]
    reward_model: pairwise           # and rm_args: {...}: the reward model's settings
    budget: 4096                     # optional: the benchmark's default otherwise
    evaluation: {samples_per_prompt: 8}
    resources: {num_cpus: 1, num_gpus: 0}   # optional, per run (--executor ray); a runs entry may set its own
    runs:
      - algo: sft
      - algo: ppo
      - algo: ppo
        args: {no_kl: true}          # the algorithm's settings, flag names with _ (aliases too)
      - algo: ppo
        reward_model: gold           # this row only: the oracle upper bound
    reports:                         # optional, written beside the leaderboard
      samples: {seed: 0, n: 6}       # SAMPLES.md
      reward_models: [pairwise, {name: ranking, args: {loss: plackett-luce}}]   # REWARD_MODELS.md
      plots: true                    # plots/: frontier, over-optimisation, training curves (PNG, SVG)
      fits: true                     # FITS.md, fits.csv: Gao et al.'s forms fitted
      report: true                   # report.html: one standalone page of all of it

A re-run resumes: a (spec key, seed) already finished in the store is skipped. The local
executor runs one spec at a time in this process, with torch's threads on every core the process
may use (never more); ``--executor ray`` runs each as a Ray task
(:mod:`harness.running.executors`), which is what ``resources`` is for. Either way the sweep ends
with :func:`~harness.running.sweep_time.time_summary`: where its time went, per algorithm, benchmark and stage.

Layer: running. Imports harness.config, harness.errors and the specs only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import config_from_dict
from harness.errors import UsageError
from harness.specs import EvaluationSettings, RunPlan, RunSpec, make_plans

TOP_KEYS = {"benchmarks", "seeds", "reward_model", "rm_args", "budget", "evaluation", "device", "runs", "reports", "resources"}
RUN_KEYS = {"algo", "args", "reward_model", "rm_args", "budget", "resources"}
RESOURCE_KEYS = ("num_cpus", "num_gpus")
REPORT_KEYS = {"samples", "reward_models", "plots", "fits", "report"}


@dataclass
class Cell:
    """One line of the grid: a benchmark × one ``runs`` entry, over the sweep's seeds."""

    label: str
    specs: list[RunSpec]
    #: what one run asks of a Ray cluster (``num_cpus``, ``num_gpus``): only the keys the file sets
    resources: dict[str, float] = field(default_factory=dict)
    #: ``specs`` resolved (their plugins looked up once, when the file was read); empty for a cell
    #: built from bare specs, which the runner resolves itself
    plans: list[RunPlan] = field(default_factory=list)

    def runs(self) -> list[RunPlan] | list[RunSpec]:
        """What to hand the runner: the plans, or the bare specs when there are none."""
        return self.plans or self.specs


@dataclass
class Sweep:
    path: Path
    cells: list[Cell] = field(default_factory=list)
    device: str = "auto"
    reports: dict[str, Any] = field(default_factory=dict)

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for cell in self.cells for spec in cell.specs]

    @property
    def benchmarks(self) -> list[str]:
        return sorted({spec.benchmark.name for spec in self.specs})


def _lines(text: str) -> dict[tuple, int]:
    """1-based line numbers of the top-level keys and of the items of ``runs`` and ``benchmarks``."""
    lines: dict[tuple, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            lines[(key.value,)] = key.start_mark.line + 1
            if isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    lines[(key.value, i)] = item.start_mark.line + 1
    return lines


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently: ``seeds:`` twice would run other seeds than the reader of the file sees)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Errors:
    def __init__(self, path: Path, lines: dict[tuple, int]):
        self.path, self.lines = path, lines

    def __call__(self, message: str, *where) -> UsageError:
        line = self.lines.get(tuple(where)) if where else None
        return UsageError(f"{self.path}{f' line {line}' if line else ''}: {message}")


def _mapping(value: Any, what: str, error) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{what} must be a mapping of settings, got {value!r}")
    return value


def _resources(value: Any) -> dict[str, float]:
    """A ``resources`` mapping, checked: ``num_cpus`` > 0 and ``num_gpus`` >= 0, numbers (Ray
    takes fractions: ``num_gpus: 0.5`` puts two runs on one GPU)."""
    if not isinstance(value, dict):
        raise UsageError(f"'resources' must be a mapping {{num_cpus: N, num_gpus: N}}, got {value!r}")
    if unknown := set(value) - set(RESOURCE_KEYS):
        raise UsageError(f"resources: unknown key(s) {', '.join(sorted(map(str, unknown)))}; valid: {', '.join(RESOURCE_KEYS)}")
    for key, number in value.items():
        is_number = isinstance(number, (int, float)) and not isinstance(number, bool) and math.isfinite(number)
        if not is_number or (number <= 0 if key == "num_cpus" else number < 0):
            raise UsageError(f"resources: {key} must be a number {'> 0' if key == 'num_cpus' else '>= 0'}, got {number!r}")
    return dict(value)


def load_sweep(path: Path, host) -> Sweep:
    """Parse a sweep file (``yaml.safe_load``: no arbitrary objects) and build every cell's specs,
    so that a mistake in the last cell is reported before the first runs. Errors name the file
    and, where known, the line."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except OSError as exc:
        raise UsageError(f"cannot read sweep file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    error = _Errors(path, _lines(text))
    if not isinstance(data, dict):
        raise error("expected a mapping with 'benchmarks', 'seeds' and 'runs'")
    if unknown := set(data) - TOP_KEYS:
        first = sorted(unknown)[0]
        raise error(f"unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(TOP_KEYS))}", first)
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in seeds):
        raise error(f"'seeds' must be a non-empty list of integers in 0 .. 2^63 - 1, got {seeds!r}", "seeds")
    if not isinstance(data.get("reward_model", "pairwise"), str):
        raise error(f"'reward_model' must be a name, got {data['reward_model']!r}", "reward_model")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise error("'runs' must be a non-empty list of {algo: NAME, args: {...}}", "runs")
    benchmarks = data.get("benchmarks", ["sentiment"])
    if not isinstance(benchmarks, list) or not benchmarks:
        raise error("'benchmarks' must be a non-empty list", "benchmarks")
    evaluation_values = _mapping(data.get("evaluation"), "'evaluation'", error)
    try:
        evaluation = config_from_dict(EvaluationSettings, evaluation_values, "evaluation")
    except UsageError as exc:
        raise error(str(exc), "evaluation") from None
    try:
        resources = _resources(data["resources"]) if "resources" in data else {}
    except UsageError as exc:
        raise error(str(exc), "resources") from None
    reports = _mapping(data.get("reports"), "'reports'", error)
    if unknown := set(reports) - REPORT_KEYS:
        raise error(f"reports: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(REPORT_KEYS))}", "reports")
    try:
        _check_reports(host, reports)
    except UsageError as exc:
        raise error(f"reports: {exc}", "reports") from None

    device = str(data.get("device", "auto"))
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):  # whether this machine has it is checked when the sweep runs here
        raise error(f"device must be cpu, cuda, cuda:N or auto, got {device!r}", "device")
    sweep = Sweep(path, device=device, reports=reports)
    for b_index, b in enumerate(benchmarks):
        if isinstance(b, str):
            bench_name, settings = b, {}
        elif isinstance(b, dict) and set(b) <= {"name", "settings"} and isinstance(b.get("name"), str):
            bench_name, settings = b["name"], _mapping(b.get("settings"), f"benchmarks[{b_index}].settings", error)
        else:
            raise error(f"benchmarks[{b_index}]: expected a name or {{name: ..., settings: {{...}}}}, got {b!r}", "benchmarks", b_index)
        for i, r in enumerate(runs):
            mappings = [r.get(k) for k in ("args", "rm_args")] if isinstance(r, dict) else []
            if not isinstance(r, dict) or not isinstance(r.get("algo"), str) or set(r) - RUN_KEYS or \
                    not all(m is None or isinstance(m, dict) for m in mappings) or not isinstance(r.get("reward_model", ""), str):
                raise error(f"runs[{i}]: expected {{algo: NAME, args: {{...}}, reward_model: NAME, rm_args: {{...}}, budget: N, "
                            f"resources: {{...}}}}, got {r!r}", "runs", i)  # fmt: skip
            try:
                run_resources = {**resources, **_resources(r["resources"])} if "resources" in r else dict(resources)
            except UsageError as exc:
                raise error(f"runs[{i}] ({r['algo']}): {exc}", "runs", i) from None
            try:
                sweep.cells.append(_cell(host, bench_name, settings, r, data, evaluation, seeds))
                sweep.cells[-1].resources = run_resources
            except UsageError as exc:
                raise error(f"runs[{i}] ({r['algo']}) on {bench_name}: {exc}", "runs", i) from None
    return sweep


def reward_model_entries(host, entries) -> list[tuple[str, str, Any]]:
    """``reports.reward_models`` entries (a name, or ``{name, args}``) as (name, the args as text,
    a configured reward model)."""
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"reward_models: expected a list of names or {{name: ..., args: {{...}}}}, got {entries!r}")
    out = []
    for entry in entries:
        name, args = (entry, {}) if isinstance(entry, str) else (entry.get("name"), entry.get("args") or {}) if isinstance(entry, dict) else (None, None)
        if not isinstance(name, str) or not isinstance(args, dict):
            raise UsageError(f"reward_models: expected a name or {{name: ..., args: {{...}}}}, got {entry!r}")
        cls = host.reward_models.get(name).cls
        out.append((name, ", ".join(f"{k}={v}" for k, v in args.items()), cls(config_from_dict(cls.Config, args, f"reward model {name}"))))
    return out


def _check_reports(host, reports: dict) -> None:
    samples = reports.get("samples")
    if samples is not None and (not isinstance(samples, dict) or set(samples) - {"seed", "n"}
                                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in samples.values())):
        raise UsageError(f"samples: expected {{seed: N, n: N}}, got {samples!r}")
    if reports.get("reward_models") is not None:
        reward_model_entries(host, reports["reward_models"])
    for key in ("plots", "fits", "report"):
        if key in reports and not isinstance(reports[key], bool):
            raise UsageError(f"{key}: expected true or false, got {reports[key]!r}")


def _cell(host, bench_name: str, settings: dict, r: dict, data: dict, evaluation, seeds: list[int]) -> Cell:
    bench = host.benchmarks.get(bench_name)
    algo = host.algorithms.get(r["algo"])
    rm_name = r.get("reward_model", data.get("reward_model", "pairwise"))
    rm = host.reward_models.get(rm_name)
    args = _mapping(r.get("args"), "args", UsageError)
    rm_args = {**_mapping(data.get("rm_args"), "rm_args", UsageError), **_mapping(r.get("rm_args"), "rm_args", UsageError)}
    budget = r.get("budget", data.get("budget"))
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
        raise UsageError(f"'budget' must be a positive integer, got {budget!r}")
    plans = make_plans(  # the entries looked up above: not looked up again
        host,
        benchmark=bench,
        bench_config=config_from_dict(bench.cls.Config, settings, f"benchmark {bench_name} settings"),
        algorithm=algo,
        algo_config=config_from_dict(algo.cls.Config, args, f"{r['algo']} args"),
        reward_model=rm,
        rm_config=config_from_dict(rm.cls.Config, rm_args, f"reward model {rm_name} rm_args"),
        budget=budget,
        evaluation=evaluation,
        seeds=seeds,
    )
    specs = [plan.spec for plan in plans]
    words = [f"{k}={v}" for k, v in args.items()] + [f"rm.{k}={v}" for k, v in rm_args.items()]
    label = f"{bench_name} · {specs[0].algorithm.name}" + (f" ({', '.join(words)})" if words else "") + f" · {rm_name}"
    return Cell(label, specs, plans=plans)

