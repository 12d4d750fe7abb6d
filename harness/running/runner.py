"""The one orchestrator: :func:`run` runs one :class:`~harness.running.spec.RunSpec` in a
:class:`Workspace` — build (or load) the benchmark, fit (or load) the proxy reward model, train,
evaluate on held-out prompts, store everything. ``harness run``, sweeps and tests all call it.

A (key, seed) already finished in the store is skipped, and so is one that another live process
is running: a re-run, ``--seeds 7 7`` or two copies of one sweep never finish it twice.

Where a run's time went (:data:`PHASES`, wall seconds) is kept in its ``run.json`` under
``time`` and in :attr:`RunResult.times`, beside the results: no metric, key or budget changes.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.api import Budget, Policy, RunInfo, TrainContext
from harness.config import config_hash
from harness.errors import NonFiniteError, Terminated, UsageError
from harness.pipeline.cache import StageCache
from harness.pipeline.stages import PreparedBenchmark, prepare
from harness.results.store import Store, is_url
from harness.running import distributed
from harness.running.checkpoints import CHECKPOINT_SEED_OFFSET, CheckpointSchedule, best_of_n_curve, checkpoint_prompts, measure, measure_checkpoints
from harness.running.evaluation import evaluate, stored_samples
from harness.running.heartbeat import Heartbeat
from harness.running.manifest import manifest
from harness.running.reward_fit import CountingRewardModel, ProxyFit, fit_proxy, optimizer_preferences
from harness.running.spec import RunSpec



def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``; anything else, or a
    CUDA device this machine does not have, is a :class:`UsageError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {name}: expected cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not (torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()):
        raise UsageError(f"--device {name}: no such CUDA device here ({torch.cuda.device_count()} found; use cpu or auto)")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Workspace:
    """Where runs happen and land: the loaded plugins, the store, the run folders, the stage
    cache and the device. Built benchmarks and fitted reward models are kept in memory across
    the runs it hosts (a sweep builds each once)."""

    def __init__(self, host, *, store: Path | str, results_dir: Path | str = "results", cache: StageCache | None = None,
                 device: str = "auto", quiet: bool = False):  # fmt: skip
        self.host = host
        # a database URL (postgresql://…) stays a string: Path() would fold its "//"
        self.store_path = store if is_url(str(store)) else Path(store)
        self.results_dir = Path(results_dir)
        self.cache = cache or StageCache()
        self.device = resolve_device(device)
        self.quiet = quiet
        self._store: Store | None = None
        self._prepared: dict[str, PreparedBenchmark] = {}
        self._proxies: dict[str, ProxyFit] = {}
        self._initial_checkpoints: dict[str, dict[str, float]] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_path)
            self._store.interrupt_orphans()  # runs left `running` by a process that died (kill -9, power loss)
        return self._store

    def prepared(self, benchmark, spec: RunSpec) -> PreparedBenchmark:
        key = config_hash(spec.benchmark.as_dict())
        if key not in self._prepared:
            self._prepared[key] = prepare(benchmark, self.cache, self.device, quiet=self.quiet)
        return self._prepared[key]

    def proxy(self, rm, spec: RunSpec, prepared: PreparedBenchmark) -> ProxyFit:
        key = config_hash(spec.benchmark.as_dict(), spec.reward_model.as_dict())
        if key not in self._proxies:
            self._proxies[key] = fit_proxy(rm, prepared, self.device)
        return self._proxies[key]

    def initial_checkpoint(self, spec: RunSpec, measure) -> dict[str, float]:
        """π_sft's checkpoint measurement, the same for every run of one benchmark, reward model,
        seed and evaluation settings: measured once per workspace."""
        key = config_hash(spec.benchmark.as_dict(), spec.reward_model.as_dict(), spec.evaluation, spec.seed)
        if key not in self._initial_checkpoints:
            self._initial_checkpoints[key] = measure()
        return self._initial_checkpoints[key]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
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


def _check_finite(step: int, metrics: dict[str, float]) -> None:
    for key, value in metrics.items():
        if key.startswith(("loss/", "objective/")) and not math.isfinite(float(value)):
            raise NonFiniteError(f"{key} is {value} at step {step}")


def gold_along_training(workspace: Workspace, spec: RunSpec, prepared: PreparedBenchmark, proxy, settings,
                        schedule: CheckpointSchedule, policy: Policy, ref_model, last_step: int) -> list[tuple[int, dict[str, float]]]:  # fmt: skip
    """After training: the checkpoint points (π_sft, each weight snapshot, the final policy) on
    the checkpoint prompts, or a best-of-n policy's best-of-k curve (see ``checkpoints``)."""
    prompts = checkpoint_prompts(prepared.eval_prompts, settings)
    gold = prepared.judge.gold if prepared.judge.has_gold else None
    seed = spec.seed + CHECKPOINT_SEED_OFFSET
    ref = Policy(ref_model, prepared.tokenizer)
    if policy.best_of_n_base is not None:
        if not settings.best_of_n_curve:
            return []
        points = best_of_n_curve(policy.best_of_n_base, prompts[:: settings.checkpoint_samples_per_prompt],
                                 settings.best_of_n_curve, prepared.generation, seed, gold, proxy)  # fmt: skip
        return list(enumerate(points))
    if settings.checkpoint_every <= 0:
        return []

    def measure_policy(p: Policy) -> dict[str, float]:
        return measure(p, ref, prompts, prepared.generation, seed, gold, proxy)

    initial = workspace.initial_checkpoint(spec, lambda: measure_policy(ref))
    probe = prepared.load_sft() if schedule.snapshots else None
    final_is_sft = type(policy) is Policy and same_weights(policy.model, ref_model)
    return measure_checkpoints(schedule, probe, policy, last_step, initial, measure_policy, final_is_sft)


def same_weights(model, other) -> bool:
    theirs = other.state_dict()
    return all(key in theirs and torch.equal(value, theirs[key]) for key, value in model.state_dict().items())


def training_context(spec: RunSpec, workspace: Workspace, algorithm, prepared: PreparedBenchmark, proxy, budget: Budget, *,
                     run_dir: Path, log, quiet: bool) -> tuple[TrainContext, float | None]:  # fmt: skip
    """The optimizer's whole world for one run — a fresh π_sft to train, a frozen π_ref, the proxy
    behind a budget counter, the train prompts (never r*) — built alike by the runner and by each
    rank of a data-parallel run; with the cost of the preferences an offline learner gets."""
    preferences, annotation_cost = optimizer_preferences(algorithm, prepared)
    ref_model = prepared.load_sft().requires_grad_(False)
    ctx = TrainContext(
        model=prepared.load_sft(), ref_model=ref_model, tokenizer=prepared.tokenizer,
        reward_model=CountingRewardModel(proxy, budget), train_prompts=list(prepared.train_prompts),
        generation=prepared.generation, budget=budget, seed=spec.seed, device=workspace.device, run_dir=run_dir,
        log=log, quiet=quiet, preferences=preferences,
    )  # fmt: skip
    return ctx, annotation_cost


def run(spec: RunSpec, workspace: Workspace) -> RunResult:
    """Run ``spec`` once: a crash fails this run only (stored with its reason); Ctrl-C marks it
    interrupted and propagates."""
    host, store = workspace.host, workspace.store
    done = store.finished_run(spec)
    if done is not None:
        return RunResult(spec, done.run_id, done.name, "skipped", done.metrics, f"already finished as run {done.run_id}")
    timer = PhaseTimer()
    with timer("stages"):
        benchmark, algorithm, rm = spec.instantiate(host)
        prepared = workspace.prepared(benchmark, spec)
        proxy = workspace.proxy(rm, spec, prepared).fitted

    name, run_id = run_name(spec), uuid.uuid4().hex[:12]
    run_dir = workspace.results_dir / "runs" / f"{name}__{run_id}"
    # data-parallel: the manifest records the number of processes (1 without --num-processes)
    claim = store.claim_run(spec, run_id=run_id, name=name, manifest={**manifest(workspace.device), **distributed.manifest_fields()},
                            run_dir=run_dir)  # fmt: skip
    if not claim.claimed:
        holder = claim.holder
        why = "already finished" if holder.status == "finished" else f"running in process {holder.pid} on {holder.host}"
        return RunResult(spec, holder.run_id, holder.name, "skipped", holder.metrics, f"{why} as run {holder.run_id}")
    claimed = time.perf_counter()  # the store's wall_seconds starts at the claim
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps({"spec": spec.to_dict(), "spec_key": spec.key,
                                                      "reward_model_metrics": proxy.metrics}, indent=1))  # fmt: skip
        log_file = (run_dir / "log.txt").open("a")
    except OSError as exc:
        error = f"cannot write the run folder {run_dir}: {exc.strerror or exc}"
        store.finish_run(run_id, status="failed", error=error)
        return RunResult(spec, run_id, name, "failed", {}, error, {**timer.seconds, "wall_s": time.perf_counter() - claimed})
    # data-parallel: only rank 0 gets here (it alone claims and writes); the other ranks start training this
    # run now (harness.running.distributed._train_only); a no-op in one process
    distributed.announce_start()

    info = RunInfo(run_id, name, spec.benchmark.name, spec.algorithm.name, spec.reward_model.name, spec.seed,
                   spec.algorithm.config, run_dir, spec.to_dict(), spec.key)  # fmt: skip
    budget = Budget(spec.budget)
    # ctx.log keeps the curve here and in log.txt; it reaches the store when training ends, so the
    # optimizer holds no handle on the store (which holds other runs' gold-scored samples).
    curve: list[tuple[int, dict[str, float]]] = []

    def record(step: int, metrics: dict[str, float]) -> None:
        metrics = {k: float(v) for k, v in metrics.items()}
        curve.append((step, metrics))
        log_file.write(json.dumps({"step": step, **metrics}) + "\n")
        host.hook.harness_metrics_logged(run=info, step=step, metrics=metrics)

    def log(step: int, metrics: dict[str, float]) -> None:
        record(step, metrics)
        _check_finite(step, metrics)
        schedule.after_log(step, ctx.model)  # weights only: measured after training, out of the optimizer's reach

    schedule: CheckpointSchedule | None = None
    status, metrics, higher, error = "failed", {}, {}, None
    budget_used: dict[str, Any] = budget.as_dict()
    heartbeat = Heartbeat(workspace.store_path, run_id).start()  # stopped in `finally`
    try:
        host.hook.harness_run_started(run=info)
        seed_everything(spec.seed)
        settings = spec.evaluation_settings()
        schedule = CheckpointSchedule(settings.checkpoint_every, budget, run_dir / "checkpoints")
        with timer("setup"):
            ctx, annotation_cost = training_context(spec, workspace, algorithm, prepared, proxy, budget, run_dir=run_dir, log=log,
                                                    quiet=workspace.quiet)  # fmt: skip
        preferences, ref_model = ctx.preferences, ctx.ref_model
        with timer("train"):
            policy = algorithm.train(ctx)
        with timer("checkpoints"):
            points = gold_along_training(workspace, spec, prepared, proxy, settings, schedule, policy, ref_model,
                                         last_step=max((step for step, _ in curve), default=0))  # fmt: skip
        for step, point in points:
            record(step, point)
        with timer("save"):
            store.log_curve(run_id, curve)
        budget_used = budget.as_dict()  # training only: evaluation's RM calls are not the optimizer's
        if preferences is not None:  # an offline learner's data: annotations, in pair-equivalents
            budget_used["annotations"] = annotation_cost
        with timer("eval"):
            metrics, higher, batch = evaluate(host.evaluators.entries(), policy, Policy(ref_model, prepared.tokenizer), prepared,
                                              proxy, spec.seed, settings, workspace.quiet)  # fmt: skip
        # Inference-time cost: best-of-n samples n responses and asks the RM n times per answer.
        budget_used["inference"] = {"samples_per_response": policy.samples_per_response,
                                    "rm_queries_per_response": policy.rm_queries_per_response}  # fmt: skip
        with timer("save"):
            store.add_samples(run_id, stored_samples(batch))
            policy.save(run_dir / "policy.safetensors")
        status = store.finish_run(run_id, status="finished", metrics=metrics, higher_is_better=higher, budget_used=budget_used)
        if status != "finished":
            metrics, error = {}, store.get_run(run_id).error
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (the CLI raises Terminated)
        status, error = "interrupted", str(exc) if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"
        store.log_curve(run_id, curve)
        store.finish_run(run_id, status=status, budget_used=budget.as_dict(), error=error)
        raise
    except Exception as exc:  # a crash fails this run, stored with its reason; nothing else is lost
        error = f"{type(exc).__name__}: {exc}"
        log_file.write(traceback.format_exc())
        store.log_curve(run_id, curve)
        # metrics measured before a late failure (saving the policy) are kept with the failed run;
        # tables read finished runs only
        store.finish_run(run_id, status="failed", metrics=metrics, higher_is_better=higher, budget_used=budget.as_dict(), error=error)
        metrics = {}
    finally:
        times = {**timer.seconds, "wall_s": time.perf_counter() - claimed}  # the store's finish is behind us: its wall time
        heartbeat.stop()
        log_file.close()
        _record_times(run_dir, times)
        if schedule is not None:
            schedule.discard()
        host.hook.harness_run_finished(run=info, status=status, metrics=metrics, error=error)
    return RunResult(spec, run_id, name, status, metrics, error, times)
