"""Sweeps: a grid of benchmarks × algorithm configs × seeds from one YAML file, turned into run
specs directly (no command lines in between) and run by the same orchestrator as ``harness run``.

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
with :func:`time_summary`: where its time went, per algorithm, benchmark and stage.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.config import config_from_dict
from harness.errors import UsageError
from harness.pipeline.cache import STAGES, StageEvent
from harness.running.manifest import limit_torch_threads
from harness.running.runner import RunResult, Workspace, run
from harness.running.spec import EvaluationSettings, RunSpec, make_specs

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
    bench_cls = host.benchmarks.get(bench_name).cls
    algo_cls = host.algorithms.get(r["algo"]).cls
    rm_name = r.get("reward_model", data.get("reward_model", "pairwise"))
    rm_cls = host.reward_models.get(rm_name).cls
    args = _mapping(r.get("args"), "args", UsageError)
    rm_args = {**_mapping(data.get("rm_args"), "rm_args", UsageError), **_mapping(r.get("rm_args"), "rm_args", UsageError)}
    budget = r.get("budget", data.get("budget"))
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
        raise UsageError(f"'budget' must be a positive integer, got {budget!r}")
    specs = make_specs(
        host,
        benchmark=bench_name,
        bench_config=config_from_dict(bench_cls.Config, settings, f"benchmark {bench_name} settings"),
        algorithm=r["algo"],
        algo_config=config_from_dict(algo_cls.Config, args, f"{r['algo']} args"),
        reward_model=rm_name,
        rm_config=config_from_dict(rm_cls.Config, rm_args, f"reward model {rm_name} rm_args"),
        budget=budget,
        evaluation=evaluation,
        seeds=seeds,
    )
    words = [f"{k}={v}" for k, v in args.items()] + [f"rm.{k}={v}" for k, v in rm_args.items()]
    label = f"{bench_name} · {specs[0].algorithm.name}" + (f" ({', '.join(words)})" if words else "") + f" · {rm_name}"
    return Cell(label, specs)


@dataclass
class SweepOutcome:
    results: list[RunResult]
    #: what this process's stage cache built and loaded during the sweep (with Ray: the driver's
    #: builds before dispatch; the workers' loads are in their runs' ``stages_s``)
    stages: list[StageEvent] = field(default_factory=list)
    #: the sweep's wall seconds, stage builds and runs together
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.status in ("failed", "interrupted")]


def _print_cell(sweep: Sweep, index: int, cell: Cell, workspace: Workspace, out) -> None:
    finished = [s.seed for s in cell.specs if workspace.store.finished_run(s) is not None]
    note = f"  (seeds {finished} already in the store)" if finished else ""
    print(f"[{index}/{len(sweep.cells)}] {cell.label}: seeds {[s.seed for s in cell.specs]}{note}", file=out, flush=True)


def run_sweep(sweep: Sweep, workspace: Workspace, *, dry_run: bool = False, out=None, executor=None) -> SweepOutcome:
    """Every spec of ``sweep`` through :func:`harness.running.runner.run`, cell by cell, with a
    progress line per run (done / total, skipped, failed, ETA). ``dry_run``: print what would
    run, run nothing. ``executor`` (:mod:`harness.running.executors`, e.g. Ray): it runs the
    specs once the plan is printed; ``None`` runs them here, one at a time."""
    out = out or sys.stdout
    clock, seen = time.perf_counter(), len(workspace.cache.events)
    if executor is not None:
        for index, cell in enumerate(sweep.cells, 1):
            _print_cell(sweep, index, cell, workspace, out)
        if dry_run:
            return SweepOutcome([])
        return _timed(executor.run(sweep, workspace, out), workspace, seen, clock, out)
    if not dry_run:
        limit_torch_threads()  # one run at a time: every core this process may use, and no more
    total, results, started = len(sweep.specs), [], time.time()
    done = 0
    for index, cell in enumerate(sweep.cells, 1):
        _print_cell(sweep, index, cell, workspace, out)
        if dry_run:
            continue
        for spec in cell.specs:
            result = run(spec, workspace)
            results.append(result)
            done += 1
            ran = [r for r in results if r.status != "skipped"]
            elapsed = time.time() - started
            eta = elapsed / len(ran) * (total - done) if ran else 0.0
            failed = sum(r.status in ("failed", "interrupted") for r in results)
            print(f"  seed {spec.seed}: {result.status}{f' ({result.error})' if result.error else ''}  "
                  f"[{done}/{total} done, {failed} failed, ETA {eta / 60:.1f} min]", file=out, flush=True)  # fmt: skip
    return SweepOutcome(results) if dry_run else _timed(SweepOutcome(results), workspace, seen, clock, out)


def _timed(outcome: SweepOutcome, workspace: Workspace, seen: int, clock: float, out) -> SweepOutcome:
    """``outcome`` with the sweep's stage events and wall time, its :func:`time_summary` printed."""
    outcome.stages, outcome.seconds = workspace.cache.events[seen:], time.perf_counter() - clock
    print(time_summary(outcome.results, outcome.stages, outcome.seconds), file=out, flush=True)
    return outcome


# -------------------------------------------------------------------------
# where the time went
# -------------------------------------------------------------------------

#: the summary's run columns (see :func:`_time_row`)
_TIME_HEADERS = ("runs", "wall s", "mean s", "train s", "ckpts s", "eval s", "other s", "stages s")


def algorithm_labels(specs: list[RunSpec]) -> list[str]:
    """A leaderboard row's name for each spec, benchmark and seed aside: the algorithm, what
    tells its configs apart (``rm-ranking (kl_coef=0)``, as the leaderboard's ``config``
    column), and the reward model (``· gold (oracle)``)."""
    from harness.results.leaderboard import config_labels

    by_algo: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        by_algo.setdefault(spec.algorithm.name, []).append(i)
    labels = [""] * len(specs)
    for indices in by_algo.values():
        for i, config in zip(indices, config_labels([specs[i] for i in indices])):
            algo, rm = specs[i].algorithm.name, specs[i].reward_model
            labels[i] = f"{algo} ({config})" if config else algo
            labels[i] += f" · {rm.name}" + (" (oracle)" if rm.oracle else "")
    return labels


def time_summary(results: list[RunResult], stages: list[StageEvent], seconds: float) -> str:
    """Where a sweep's time went, one line per row: a headline (runs, wall time, stage builds and
    loads); per algorithm (a leaderboard row's name over benchmarks and seeds) and per benchmark,
    the runs' wall seconds (sum, mean per run) split into train, checkpoints, eval and the rest,
    and the seconds spent on stages before them; per stage, what was built and loaded. Runs that
    did not run here (skipped) have no times and are only counted. Both executors print it."""
    ran = [r for r in results if r.times]  # not a run skipped, nor one whose Ray worker died
    skipped = sum(r.status == "skipped" for r in results)
    failed = sum(r.status in ("failed", "interrupted") for r in results)
    built = [e for e in stages if e.action == "built"]
    counts = f"{len(results) - skipped} runs ({failed} failed; {skipped} skipped)"
    stage_text = f"{len(built)} stages built in {sum(e.seconds for e in built):.1f} s, {len(stages) - len(built)} loaded"
    lines = [f"time: {counts} in {seconds:.1f} s wall; {stage_text}"]
    if ran:
        sections: dict[str, dict[str, list[RunResult]]] = {"algorithm · reward model": {}, "benchmark": {}}
        # labelled among every run of the sweep, skipped ones too: a bf16 row re-run beside stored fp32
        # runs still reads "ppo (precision=bf16)"
        labels = dict(zip(map(id, results), algorithm_labels([r.spec for r in results])))
        for label, result in ((labels[id(r)], r) for r in ran):
            sections["algorithm · reward model"].setdefault(label, []).append(result)
            sections["benchmark"].setdefault(result.spec.benchmark.name, []).append(result)
        width = max(len(label) for rows in sections.values() for label in [*rows, *sections])
        for title, rows in sections.items():
            lines.append(f"  {title:<{width}}" + "".join(f"{header:>9}" for header in _TIME_HEADERS))
            lines += [f"  {label:<{width}}" + "".join(f"{cell:>9}" for cell in _time_row(runs)) for label, runs in rows.items()]
    by_stage: dict[str, list[StageEvent]] = {}
    for event in sorted(stages, key=lambda e: STAGES.index(e.stage) if e.stage in STAGES else len(STAGES)):
        by_stage.setdefault(event.stage, []).append(event)
    if by_stage:
        lines.append(f"  {'stage':<13}{'built':>7}{'built s':>10}{'loaded':>8}{'loaded s':>10}")
    for stage, events in by_stage.items():
        b, ld = [e for e in events if e.action == "built"], [e for e in events if e.action == "loaded"]
        b_s, ld_s = sum(e.seconds for e in b), sum(e.seconds for e in ld)
        lines.append(f"  {stage:<13}{len(b):>7}{b_s:>10.1f}{len(ld):>8}{ld_s:>10.1f}")
    return "\n".join(lines)


def _time_row(runs: list[RunResult]) -> list[str]:
    """:data:`_TIME_HEADERS` of some runs: how many; their wall seconds, summed and per run; of
    it, training, checkpoints, evaluation and the rest (setup, saving, the store); and the
    seconds they waited on stages before their claim (outside wall: the first run of a benchmark
    builds them)."""

    def total(key: str) -> float:
        return sum(r.times.get(key, 0.0) for r in runs)

    wall, train, ckpts, evals = total("wall_s"), total("train_s"), total("checkpoints_s"), total("eval_s")
    seconds = (wall, wall / len(runs), train, ckpts, evals, wall - train - ckpts - evals, total("stages_s"))
    return [str(len(runs))] + [f"{v:.1f}" for v in seconds]


def write_sweep_reports(sweep: Sweep, workspace: Workspace, out_dir: Path, command: str) -> list[Path]:
    """The sweep's tables, from its own runs only (its spec keys: this code version, these
    settings): LEADERBOARD.md and leaderboard.csv, and the ``reports`` the file asks for."""
    from harness.results.leaderboard import build_leaderboard, write_atomically, write_leaderboard
    from harness.results.reports import samples_markdown

    keys = {spec.key for spec in sweep.specs}
    frame = workspace.store.metrics_frame()
    frame = frame[frame["spec_key"].isin(keys)] if len(frame) else frame
    codes = sorted({spec.code_version for spec in sweep.specs})
    header = (f"Made by `{command}` (store `{workspace.store.path}`), {time.strftime('%Y-%m-%d')}; "
              f"code version {', '.join(codes)}.\n\n")  # fmt: skip
    board = build_leaderboard(frame)
    paths = write_leaderboard(board, out_dir, preamble=header)
    if (samples := sweep.reports.get("samples")) is not None:
        seed, n = int(samples.get("seed", 0)), int(samples.get("n", 4))
        runs = [r for r in workspace.store.list_runs(status="finished") if r.spec_key in keys and r.seed == seed]
        intro = f"# Samples: what each policy writes\n\n{header}Held-out prompts; the first {n} stored samples of each seed-{seed} run.\n\n"
        paths.append(write_atomically(out_dir / "SAMPLES.md", intro + samples_markdown(runs, workspace.store.samples, n)))
    if (entries := sweep.reports.get("reward_models")) is not None:
        paths.append(write_atomically(out_dir / "REWARD_MODELS.md", _reward_model_report(sweep, workspace, entries, header)))
    # Figures, fits and the page read the whole store: give a sweep a store of its own (as the committed one has).
    if sweep.reports.get("plots"):
        from harness.results.plots import plot_store

        paths += plot_store(workspace.store, out_dir / "plots")[0]
    if sweep.reports.get("fits"):
        paths += _write_fits(workspace, out_dir, header)
    if sweep.reports.get("report"):
        from harness.results.html_report import write_report

        paths.append(write_report(workspace.store, out_dir / "report.html", sweep_file=sweep.path))
    return paths


def _write_fits(workspace: Workspace, out_dir: Path, header: str) -> list[Path]:
    from harness.results.fits import fit_table, render_fit_table
    from harness.results.leaderboard import write_atomically
    from harness.results.plots import fit_points, load_trajectories

    points = fit_points(load_trajectories(workspace.store))
    if points.empty:
        return []
    table = fit_table(points, n_boot=1000, seed=0)
    intro = "# Over-optimisation fits (Gao, Schulman & Hilton 2022)\n\n" + header
    return [write_atomically(out_dir / "FITS.md", intro + render_fit_table(table, "md") + "\n"),
            write_atomically(out_dir / "fits.csv", render_fit_table(table, "csv"))]  # fmt: skip


def _reward_model_report(sweep: Sweep, workspace: Workspace, entries: list, header: str) -> str:
    from harness.results.reports import reward_models_markdown
    from harness.running.reward_fit import reward_model_rows

    out = [
        "# Reward models at an equal annotation budget\n",
        header.strip() + "\n",
        "A K-ranking costs log2(K!) pair-equivalents (the comparisons an optimal sort needs). Held-out items are "
        "drawn on eval prompts; `rm/accuracy` is agreement with the (noisy) annotator over pairs of different responses, "
        "`rm/gold_accuracy` agreement with r* over pairs whose gold differs, `rm/spearman` the rank correlation with r* "
        "over all held-out responses.\n",
    ]
    seen: set[str] = set()
    for spec in sweep.specs:
        bench_id = json.dumps(spec.benchmark.as_dict(), sort_keys=True)
        if bench_id in seen:
            continue
        seen.add(bench_id)
        benchmark, _, _ = spec.instantiate(workspace.host)
        prepared = workspace.prepared(benchmark, spec)
        rows = reward_model_rows(reward_model_entries(workspace.host, entries), prepared, workspace.device)
        out.append(f"## {spec.benchmark.name}\n\n{reward_models_markdown(rows)}")
    return "\n".join(out)
