"""Sweeps: a grid of benchmarks × algorithm configs × seeds from one YAML file (its format:
:mod:`.sweep_file`), run by the same orchestrator as ``harness run``.

A re-run resumes: a (spec key, seed) already finished in the store is skipped. The local
executor runs one spec at a time in this process, with torch's threads on every core the process
may use (never more); ``--executor ray`` runs each as a Ray task
(:mod:`harness.running.executors`), which is what ``resources`` is for. Either way the sweep ends
with :func:`~harness.running.sweep_time.time_summary`: where its time went, per algorithm, benchmark and stage.

This module runs the grid (:func:`run_sweep`); reading the file is :mod:`.sweep_file`, the time
summary :mod:`.sweep_time`, the written reports :mod:`.sweep_reports` (their names are
re-exported here).

Layer: running. Imports the pipeline's stage events, the specs and the :mod:`harness.running`
modules below it (runner, sweep_file, sweep_time, sweep_reports).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from harness.pipeline.cache import StageEvent
from harness.running.runner import RunResult, Workspace, run
from harness.running.sweep_file import (  # noqa: F401  (re-exported: the sweep's public names)
    REPORT_KEYS,
    RESOURCE_KEYS,
    RUN_KEYS,
    TOP_KEYS,
    Cell,
    Sweep,
    load_sweep,
    reward_model_entries,
)
from harness.running.sweep_reports import write_sweep_reports  # noqa: F401
from harness.running.sweep_time import algorithm_labels, time_summary  # noqa: F401
from harness.specs import limit_torch_threads


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
        for item in cell.runs():
            result = run(item, workspace)
            spec = result.spec
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
