"""The one orchestrator: :func:`run` runs one :class:`~harness.specs.RunSpec` (or its resolved
:class:`~harness.specs.RunPlan`) in a :class:`Workspace` — build (or load) the benchmark, fit (or
load) the proxy reward model, train, evaluate on held-out prompts, store everything. ``harness
run``, sweeps and tests all call it.

A (key, seed) already finished in the store is skipped, and so is one that another live process
is running: a re-run, ``--seeds 7 7`` or two copies of one sweep never finish it twice.

Where a run's time went (:data:`PHASES`, wall seconds) is kept in its ``run.json`` under
``time`` and in :attr:`RunResult.times`, beside the results: no metric, key or budget changes.

Layer: running. Imports the store, the pipeline, the specs, the ground floor and the
:mod:`harness.running` modules below it (workspace, training, evaluation, checkpoints and
reward_fit through them) — never :mod:`harness.running.distributed`, which passes its own
``ranks`` to :func:`run` instead.
"""

from __future__ import annotations

import json
import re
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import parallel
from harness.api import Budget, Policy, RunInfo
from harness.errors import Terminated
from harness.running.checkpoints import CheckpointSchedule
from harness.running.evaluation import evaluate, stored_samples
from harness.running.training import check_finite, gold_along_training, seed_everything, train_metered, training_context
from harness.running.workspace import Workspace, resolve_device  # noqa: F401  (their old home)
from harness.specs import RunPlan, RunSpec, as_plan, spec_of
from harness.specs.manifest import manifest
from harness.store.heartbeat import Heartbeat

#: a run's phases, each timed in wall seconds as ``<phase>_s``. ``stages``: building or loading
#: the benchmark's stages and the proxy for this run (a sweep's first run of a benchmark builds,
#: the others find them in memory), before the run is claimed; ``setup``: π_sft, π_ref and an
#: offline learner's preferences; ``train``: ``algorithm.train``; ``checkpoints``: gold along
#: training; ``eval``: evaluation; ``save``: the curve, samples and policy written. ``wall_s``
#: runs from the claim to the store's finish, as the store's ``wall_seconds`` (the leaderboard's
#: ``wall_s``) does, give or take the store's own writes: every phase but ``stages`` lies within
#: both.
PHASES = ("stages", "setup", "train", "checkpoints", "eval", "save")
TIMES_FILE_KEY = "time"


class PhaseTimer:
    """Wall seconds per phase: ``with timer("train"): ...`` adds to ``seconds["train_s"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        #: the phase running now (a failure's reason names it), or the last one
        self.current = ""

    @contextmanager
    def __call__(self, phase: str):
        started, self.current = time.perf_counter(), phase
        try:
            yield
        finally:
            self.seconds[f"{phase}_s"] = self.seconds.get(f"{phase}_s", 0.0) + time.perf_counter() - started


@dataclass
class RunResult:
    spec: RunSpec
    run_id: str | None
    name: str
    status: str  # finished, failed, interrupted, or skipped (already finished / running elsewhere)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    #: where the run's time went, ``{"<phase>_s": seconds, "wall_s": seconds}`` (:data:`PHASES`);
    #: empty for a run that did not run here (skipped)
    times: dict[str, float] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.spec.seed


def run_times(run_dir: Path | str | None) -> dict[str, float]:
    """The phase times a run folder's ``run.json`` records (see :data:`PHASES`); ``{}`` when
    there are none (a run by an older harness, a folder gone)."""
    try:
        times = json.loads((Path(run_dir) / "run.json").read_text()).get(TIMES_FILE_KEY)
    except (TypeError, OSError, ValueError, AttributeError):
        return {}
    return times if isinstance(times, dict) else {}


def _record_times(run_dir: Path, times: dict[str, float]) -> None:
    """Add ``times`` to the run folder's ``run.json`` (written whole, then renamed into place).
    Best effort: a run is not failed for its timing (a full disk has already told its story)."""
    path = run_dir / "run.json"
    try:
        record = json.loads(path.read_text())
        tmp = path.with_name(f".run.json-{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps({**record, TIMES_FILE_KEY: times}, indent=1))
        tmp.replace(path)
    except (OSError, ValueError):
        pass


def run_name(spec: RunSpec) -> str:
    """``{benchmark}__{algorithm}__{seed}__{time}``, safe as a folder name whatever the plugin names."""
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("._") or "_" for part in (spec.benchmark.name, spec.algorithm.name)]
    return f"{safe[0]}__{safe[1]}__{spec.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


class OneProcess:
    """The other processes of a run when there are none: :func:`run`'s default ``ranks``. A
    data-parallel job passes its own (:class:`harness.running.distributed.Rank0`): the fields its
    manifest records, and the signal that sends the other ranks training once the run is claimed."""

    def manifest_fields(self) -> dict[str, int]:
        return {"num_processes": parallel.state().world_size}

    def announce_start(self) -> None:
        """Nobody to tell."""


ONE_PROCESS = OneProcess()


# -------------------------------------------------------------------------
# one run, top to bottom
# -------------------------------------------------------------------------


def run(spec: RunSpec | RunPlan, workspace: Workspace, *, ranks=ONE_PROCESS) -> RunResult:
    """Run ``spec`` once: a crash fails this run only (stored with its reason); Ctrl-C marks it
    interrupted and propagates. A :class:`RunPlan` is run as resolved; a bare spec's plugins are
    looked up here, once. ``ranks``: see :class:`OneProcess`."""
    done = workspace.store.finished_run(spec_of(spec))
    if done is not None:  # skip if done
        return RunResult(spec_of(spec), done.run_id, done.name, "skipped", done.metrics, f"already finished as run {done.run_id}")
    plan, timer = as_plan(workspace.host, spec), PhaseTimer()
    with timer("stages"):  # resolve and prepare: the stages and the proxy, built or loaded
        benchmark, algorithm, rm = plan.build()
        prepared = workspace.prepared(benchmark, plan.spec)
        proxy = workspace.proxy(rm, plan.spec, prepared).fitted
    claimed = ClaimedRun.claim(plan, workspace, ranks)  # claim
    if isinstance(claimed, RunResult):
        return claimed
    try:
        claimed.write_folder(proxy)  # write the run folder
    except OSError as exc:
        return claimed.unwritable(exc, workspace.store, timer)
    # data-parallel: only rank 0 gets here (it alone claims and writes); the other ranks start training this
    # run now (harness.running.distributed._train_only); a no-op in one process
    ranks.announce_start()
    return _train_evaluate_store(claimed, plan, workspace, algorithm, prepared, proxy, timer)  # train … finish


class ClaimedRun:
    """A run this process claimed in the store: its name and folder, and (once the folder is
    written) its :class:`RunLog`."""

    def __init__(self, plan: RunPlan, host, run_id: str, name: str, run_dir: Path):
        self.spec, self.host = plan.spec, host
        self.run_id, self.name, self.run_dir = run_id, name, run_dir
        self.claimed = time.perf_counter()  # the store's wall_seconds starts at the claim
        self.log: RunLog | None = None
        spec = self.spec
        self.info = RunInfo(run_id, name, spec.benchmark.name, spec.algorithm.name, spec.reward_model.name, spec.seed,
                            spec.algorithm.config, run_dir, spec.to_dict(), spec.key)  # fmt: skip

    @classmethod
    def claim(cls, plan: RunPlan, workspace: Workspace, ranks) -> ClaimedRun | RunResult:
        """The claimed run, or why it is skipped (finished, or running in another live process)."""
        spec = plan.spec
        name, run_id = run_name(spec), uuid.uuid4().hex[:12]
        run_dir = workspace.results_dir / "runs" / f"{name}__{run_id}"
        # data-parallel: the manifest records the number of processes (1 without --num-processes)
        claim = workspace.store.claim_run(spec, run_id=run_id, name=name, manifest={**manifest(workspace.device), **ranks.manifest_fields()},
                                          run_dir=run_dir)  # fmt: skip
        if not claim.claimed:
            holder = claim.holder
            why = "already finished" if holder.status == "finished" else f"running in process {holder.pid} on {holder.host}"
            return RunResult(spec, holder.run_id, holder.name, "skipped", holder.metrics, f"{why} as run {holder.run_id}")
        return cls(plan, workspace.host, run_id, name, run_dir)

    def write_folder(self, proxy) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "run.json").write_text(json.dumps({"spec": self.spec.to_dict(), "spec_key": self.spec.key,
                                                           "reward_model_metrics": proxy.metrics}, indent=1))  # fmt: skip
        self.log = RunLog(self.host, self.info, (self.run_dir / "log.txt").open("a"))

    def unwritable(self, exc: OSError, store, timer: PhaseTimer) -> RunResult:
        error = f"cannot write the run folder {self.run_dir}: {exc.strerror or exc}"
        store.finish_run(self.run_id, status="failed", error=error)
        return RunResult(self.spec, self.run_id, self.name, "failed", {}, error, {**timer.seconds, "wall_s": self.wall_seconds()})

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.claimed


class RunLog:
    """The run's curve as it is logged: :meth:`log` is the optimizer's ``ctx.log``. It keeps the
    curve here and in ``log.txt``; the curve reaches the store when training ends, so the
    optimizer holds no handle on the store (which holds other runs' gold-scored samples): nothing
    reachable from here leads to gold."""

    def __init__(self, host, info: RunInfo, log_file):
        self.host, self.info, self.file = host, info, log_file
        self.curve: list[tuple[int, dict[str, float]]] = []
        self.schedule: CheckpointSchedule | None = None
        self.ctx = None

    def record(self, step: int, metrics: dict[str, float]) -> None:
        metrics = {k: float(v) for k, v in metrics.items()}
        self.curve.append((step, metrics))
        self.file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.host.hook.harness_metrics_logged(run=self.info, step=step, metrics=metrics)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.record(step, metrics)
        check_finite(step, metrics)
        self.schedule.after_log(step, self.ctx.model)  # weights only: measured after training, out of the optimizer's reach


#: what runs in each phase, for a failure's reason
_PHASE_WORDS = {"setup": "setting up", "train": "training", "checkpoints": "measuring checkpoints", "eval": "evaluating",
                "save": "saving"}  # fmt: skip


def failure_reason(exc: BaseException, plan: RunPlan, phase: str) -> str:
    """One line: what escaped, and the plugin whose code was running (the algorithm's while it
    trains; its policy's or an evaluator's while evaluating)."""
    what = f"{type(exc).__name__}({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
    algorithm = plan.algorithm
    where = f"algorithm {algorithm.name!r} of plugin {algorithm.plugin!r}, while {_PHASE_WORDS.get(phase, phase or 'running')}"
    if phase == "eval":
        where += " (its policy or an evaluator: " + ", ".join(sorted({e.plugin for e in plan.evaluators})) + ")"
    if not isinstance(exc, Exception):  # SystemExit, GeneratorExit, a plugin's own BaseException
        return f"{what} escaped {where}: a plugin that exits fails its run"
    return f"{what} ({where})"


def _train_evaluate_store(run: ClaimedRun, plan: RunPlan, workspace: Workspace, algorithm, prepared, proxy, timer: PhaseTimer) -> RunResult:
    """A claimed run with its folder written: train, gold along training, evaluate, save, finish
    (or fail, or be interrupted: stored either way)."""
    spec, store, host, run_id, log = plan.spec, workspace.store, workspace.host, run.run_id, run.log
    budget = Budget(spec.budget)
    status, metrics, higher, error = "failed", {}, {}, None
    budget_used: dict[str, Any] = budget.as_dict()
    heartbeat = Heartbeat(workspace.store_path, run_id).start()  # stopped in `finally`
    try:
        host.hook.harness_run_started(run=run.info)
        seed_everything(spec.seed)
        settings = plan.settings
        log.schedule = CheckpointSchedule(settings.checkpoint_every, budget, run.run_dir / "checkpoints")
        with timer("setup"):
            log.ctx, annotation_cost = training_context(spec, workspace, algorithm, prepared, proxy, budget, run_dir=run.run_dir,
                                                        log=log.log, quiet=workspace.quiet)  # fmt: skip
        preferences, ref_model = log.ctx.preferences, log.ctx.ref_model
        with timer("train"):
            policy = train_metered(algorithm, log.ctx)  # every toolkit sample charged, every proxy score counted
        with timer("checkpoints"):
            points = gold_along_training(workspace, spec, prepared, proxy, settings, log.schedule, policy, ref_model,
                                         last_step=max((step for step, _ in log.curve), default=0))  # fmt: skip
        for step, point in points:
            log.record(step, point)
        with timer("save"):
            store.log_curve(run_id, log.curve)
        budget_used = budget.as_dict()  # training only: evaluation's RM calls are not the optimizer's
        if preferences is not None:  # an offline learner's data: annotations, in pair-equivalents
            budget_used["annotations"] = annotation_cost
        with timer("eval"):
            metrics, higher, batch = evaluate(list(plan.evaluators), policy, Policy(ref_model, prepared.tokenizer), prepared,
                                              proxy, spec.seed, settings, workspace.quiet)  # fmt: skip
        # Inference-time cost: best-of-n samples n responses and asks the RM n times per answer.
        budget_used["inference"] = {"samples_per_response": policy.samples_per_response,
                                    "rm_queries_per_response": policy.rm_queries_per_response}  # fmt: skip
        with timer("save"):
            store.add_samples(run_id, stored_samples(batch))
            policy.save(run.run_dir / "policy.safetensors")
        status = store.finish_run(run_id, status="finished", metrics=metrics, higher_is_better=higher, budget_used=budget_used)
        if status != "finished":
            metrics, error = {}, store.get_run(run_id).error
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (the CLI raises Terminated)
        status, error = "interrupted", str(exc) if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"
        store.log_curve(run_id, log.curve)
        store.finish_run(run_id, status=status, budget_used=budget.as_dict(), error=error)
        raise
    except BaseException as exc:  # a crash fails this run, stored with its reason; nothing else is lost
        # SystemExit and other BaseExceptions from a plugin too: a plugin that exits is a failed run, not a success
        error = failure_reason(exc, plan, timer.current)
        log.file.write(traceback.format_exc())
        store.log_curve(run_id, log.curve)
        # metrics measured before a late failure (saving the policy) are kept with the failed run;
        # tables read finished runs only
        store.finish_run(run_id, status="failed", metrics=metrics, higher_is_better=higher, budget_used=budget.as_dict(), error=error)
        metrics = {}
    finally:
        times = {**timer.seconds, "wall_s": run.wall_seconds()}  # the store's finish is behind us: its wall time
        heartbeat.stop()
        log.file.close()
        _record_times(run.run_dir, times)
        if log.schedule is not None:
            log.schedule.discard()
        host.hook.harness_run_finished(run=run.info, status=status, metrics=metrics, error=error)
    return RunResult(spec, run_id, run.name, status, metrics, error, times)
