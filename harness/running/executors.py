"""Sweep executors beyond the local one: ``harness sweep FILE --executor ray`` runs each run spec
as a Ray task, on this machine or on a cluster (``--address auto``, ``ray://host:port``).

How the work is divided, and why:

- **Stages once, before dispatch.** The driver builds (or loads) each benchmark's stages and fits
  each proxy reward model the pending runs need, in its own :class:`Workspace`; that fills the
  on-disk :class:`~harness.pipeline.cache.StageCache`, and every task opens the same cache root
  and only loads. A shared path rather than Ray's object store: the models are files already, the
  object store would copy them to every worker and its objects die with the driver, while the
  cache outlives the sweep (the next ``harness run`` reads it). On several nodes the root must be
  on a shared filesystem, or each node rebuilds into its own: cache keys are content hashes and
  builds are deterministic, so the results are the same; only time is lost.
- **One writer.** A task runs :func:`harness.running.runner.run` against a throw-away SQLite store
  of its own and returns the run as a plain dict (:func:`run_payload`); the driver alone writes it
  into the sweep's store (:func:`store_payload`) through the store's public API, so no worker
  needs to reach the store or hold its lock. A (key, seed) already finished is skipped before
  dispatch; the claim refuses a second one anyway (another sweep finished it meanwhile).
- **Threads.** A task's torch uses as many threads as the task's ``num_cpus``: runs never
  oversubscribe the cores Ray gives them.
- **Time.** Each run's phase times come back in its payload (``RunResult.times``); the sweep's
  summary (:func:`harness.running.sweep.time_summary`, printed by ``run_sweep`` for both
  executors) adds the driver's stage builds. The gap between the sweep's wall time and its runs'
  is Ray's: starting, importing in each worker, waiting for a free slot.
- **A worker that dies** (killed, out of memory, a lost node) is retried by Ray up to
  ``--max-retries`` times; then the run is stored ``failed`` with the reason and the sweep goes on.
- **Resolution.** The driver runs the sweep file's plans (:class:`~harness.specs.RunPlan`: their
  plugins looked up once); a spec crosses to a worker as a plain dict and the worker resolves it
  once on its side (:func:`harness.specs.resolve`).

Layer: running. Imports the pipeline's stage cache, the plugin manager, the specs and the
:mod:`harness.running` modules below it (runner, sweep, sweep_file, reward_fit).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import config_hash
from harness.errors import UsageError
from harness.pipeline.cache import StageCache
from harness.plugin_manager import PLUGINS_ENV
from harness.running.reward_fit import optimizer_preferences
from harness.running.runner import RunResult, Workspace, run, run_name
from harness.running.sweep import SweepOutcome
from harness.running.sweep_file import Cell, Sweep
from harness.specs import RunPlan, RunSpec, as_plan, resolve, spec_of
from harness.specs.manifest import manifest

#: Ray's own default for tasks
DEFAULT_MAX_RETRIES = 3
#: driver variables a worker needs (trackers: $HARNESS_REPORT_TO, W&B's settings)
ENV_PREFIXES = ("HARNESS_", "WANDB_")


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise UsageError(f"--executor ray needs Ray ({exc}); install it with: pip install 'rlhf-harness[ray]'") from None
    return ray


# -------------------------------------------------------------------------
# the worker's side
# -------------------------------------------------------------------------

_HOSTS: dict[tuple[str, ...], Any] = {}  # per worker process: plugins load once, not once per run


def _worker_host(plugins: tuple[str, ...]):
    if plugins not in _HOSTS:
        from harness.plugin_manager import load_plugins

        _HOSTS[plugins] = load_plugins(list(plugins))
    return _HOSTS[plugins]


class _CurveTap:
    """Every point the runner logs for a run: the very list it gives ``store.log_curve`` (NaN
    included, which the store's wide ``curves`` frame could not tell from a missing value)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def harness_metrics_logged(self, run, step: int, metrics: dict[str, float]) -> None:
        self.points.append((int(step), dict(metrics)))


def execute(spec_dict: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """One run, in a Ray worker: :func:`run` with a temporary store of its own, the sweep's run
    folders and the shared stage cache; returns :func:`run_payload` for the driver to store."""
    import torch

    torch.set_num_threads(job["threads"])  # the task's num_cpus: never more threads than cores granted
    host = _worker_host(tuple(job["plugins"]))
    plan = resolve(host, RunSpec.from_dict(spec_dict))  # once, on this side of the process boundary
    tap, tap_name = _CurveTap(), f"harness-ray-curve-{uuid.uuid4().hex}"
    host.pm.register(tap, name=tap_name)
    try:
        with tempfile.TemporaryDirectory(prefix="harness-ray-") as tmp, Workspace(
            host, store=Path(tmp) / "run.sqlite", results_dir=job["results_dir"], cache=StageCache(job["cache"]),
            device=job["device"], quiet=True,
        ) as workspace:  # fmt: skip
            result = run(plan, workspace)
            return run_payload(workspace.store, result, tap.points)
    finally:
        host.pm.unregister(name=tap_name)


def run_payload(store, result: RunResult, curve: list[tuple[int, dict[str, float]]]) -> dict[str, Any]:
    """Everything the store holds of one run, as plain picklable values."""
    record = store.get_run(result.run_id)
    return {
        "run_id": record.run_id,
        "name": record.name,
        "spec": record.spec.to_dict(),
        "status": record.status,
        "error": record.error,
        "metrics": dict(record.metrics),
        "higher_is_better": dict(record.higher_is_better),
        "budget_used": record.budget_used,
        "manifest": record.manifest,
        "run_dir": record.run_dir,
        "wall_seconds": record.wall_seconds,
        "times": dict(result.times),  # where the worker's time went (RunResult.times)
        "curves": curve,
        "samples": store.samples(record.run_id),
    }


# -------------------------------------------------------------------------
# the driver's side: the one writer
# -------------------------------------------------------------------------


def _refused(spec: RunSpec, holder) -> RunResult:
    why = "already finished" if holder.status == "finished" else f"running in process {holder.pid} on {holder.host}"
    return RunResult(spec, holder.run_id, holder.name, "skipped", holder.metrics, f"{why} as run {holder.run_id}; this copy is not kept")


def store_payload(store, spec: RunSpec, payload: dict[str, Any]) -> RunResult:
    """Write a run a worker returned into ``store``, as :func:`run` would have: claim (refused
    when its (key, seed) is finished or running elsewhere: then nothing is written), curve,
    samples, finish."""
    run_id = payload["run_id"]
    claim = store.claim_run(spec, run_id=run_id, name=payload["name"], manifest=payload["manifest"], run_dir=payload["run_dir"])
    if not claim.claimed:
        return _refused(spec, claim.holder)
    store.log_curve(run_id, payload["curves"])
    if payload["samples"]:
        store.add_samples(run_id, payload["samples"])
    # the run took wall_seconds in its worker, not the moment the driver took to write it
    status = store.finish_run(run_id, status=payload["status"], metrics=payload["metrics"], higher_is_better=payload["higher_is_better"],
                              budget_used=payload["budget_used"], error=payload["error"], wall_seconds=payload["wall_seconds"])  # fmt: skip
    times = payload.get("times") or {}
    if status == "finished":
        return RunResult(spec, run_id, payload["name"], status, payload["metrics"], times=times)
    return RunResult(spec, run_id, payload["name"], status, {}, store.get_run(run_id).error, times)


def store_failure(store, spec: RunSpec, error: str, device) -> RunResult:
    """A run whose task returned nothing (its worker died after every retry): stored ``failed``
    with the reason, so that the sweep's record is complete and a re-run tries it again."""
    run_id, name = uuid.uuid4().hex[:12], run_name(spec)
    claim = store.claim_run(spec, run_id=run_id, name=name, manifest=manifest(device), run_dir=None)
    if not claim.claimed:
        return _refused(spec, claim.holder)
    store.finish_run(run_id, status="failed", error=error)
    return RunResult(spec, run_id, name, "failed", {}, error)


def failure_reason(exc: Exception, max_retries: int) -> str:
    """One line for a task that returned no run."""
    import ray.exceptions as rex

    first = (str(exc).strip().splitlines() or [""])[0]
    tries = f"--max-retries {max_retries}"
    if isinstance(exc, rex.OutOfMemoryError):
        return f"the Ray worker was killed for memory ({tries}): {first}"
    if isinstance(exc, (rex.WorkerCrashedError, rex.NodeDiedError)):
        return f"the Ray worker died ({tries}): {first}"
    if isinstance(exc, rex.RayTaskError):  # an exception outside run() (run() stores its own as failed runs)
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"the Ray task failed: {type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"
    return f"Ray: {type(exc).__name__}: {first}"


def _running(in_flight: list[dict[str, float]], totals: dict[str, float]) -> int:
    """How many of the unfinished tasks (in submission order) the cluster can hold at once: the
    running ones, as far as the driver can tell without Ray's state API."""
    cpus, gpus, n = totals.get("CPU", 0.0), totals.get("GPU", 0.0), 0
    for res in in_flight:
        if res["num_cpus"] > cpus + 1e-9 or res["num_gpus"] > gpus + 1e-9:
            break
        cpus, gpus, n = cpus - res["num_cpus"], gpus - res["num_gpus"], n + 1
    return n


def fits_a_node(res: dict[str, float], nodes: list[dict[str, float]]) -> bool:
    """Whether one of the cluster's nodes (their total resources) can hold a task of ``res``."""
    return any(res["num_cpus"] <= n.get("CPU", 0.0) + 1e-9 and res["num_gpus"] <= n.get("GPU", 0.0) + 1e-9 for n in nodes)


@dataclass
class RayExecutor:
    """Runs a sweep's pending specs as Ray tasks (see the module's docstring)."""

    address: str | None = None  # None: $RAY_ADDRESS, else a local Ray on this machine
    max_retries: int = DEFAULT_MAX_RETRIES
    plugins: tuple[str, ...] = ()
    device: str = "auto"

    def __post_init__(self) -> None:
        import_ray()  # before anything is built: a missing extra is a one-line error
        if self.max_retries < 0:
            raise UsageError(f"--max-retries must be >= 0, got {self.max_retries}")

    def worker_plugins(self) -> list[str]:
        """``--plugin`` and ``$HARNESS_PLUGINS`` entries, files as absolute paths (a worker's
        working folder is not ours)."""
        specs = list(self.plugins) + [s for s in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if s.strip()]
        return list(dict.fromkeys(str(Path(s).resolve()) if s.endswith(".py") or Path(s).is_file() else s for s in specs))

    def resources(self, cell: Cell, cluster_gpus: float) -> dict[str, float]:
        """The cell's ``resources``, defaults filled: 1 CPU; 1 GPU when the device is CUDA (or
        ``auto`` on a cluster with GPUs), else none."""
        cuda = self.device.startswith("cuda") or (self.device == "auto" and cluster_gpus > 0)
        res = {"num_cpus": 1, "num_gpus": 1 if cuda else 0, **cell.resources}
        if self.device.startswith("cuda") and res["num_gpus"] <= 0:
            raise UsageError(f"{cell.label}: --device {self.device} with resources num_gpus 0: Ray would give its tasks no GPU")
        return res

    def worker_device(self, res: dict[str, float]) -> str:
        if self.device == "auto":  # what Ray granted, not what the driver's machine has
            return "cuda" if res["num_gpus"] > 0 else "cpu"
        return self.device

    def _connect(self, ray) -> bool:
        """Connect (or start a local Ray); False when the caller had already (tests, notebooks)."""
        if ray.is_initialized():
            return False
        # Quiet: workers' output stays in Ray's log files, and Ray's INFO lines stay out of the CLI's.
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        except ConnectionError as exc:
            hint = ""
            if (self.address or "").startswith("ray://") and os.environ.get("RAY_AUTH_MODE") != "token":
                # Ray >= 2.59 starts clusters with token authentication, and a Ray Client without the token is
                # turned away at the door: all it reports is a timeout
                hint = ("; if the cluster uses token authentication (Ray's default since 2.59), set RAY_AUTH_MODE=token "
                        "and its token here too (RAY_AUTH_TOKEN, or ~/.ray/auth_token: `ray get-auth-token` on the head)")
            raise UsageError(f"--address {self.address}: cannot reach the Ray cluster ({exc}){hint}") from None
        return True

    def _prepare(self, pending: list[tuple[Cell, RunPlan]], workspace: Workspace) -> None:
        """Every stage the pending runs need, built once here into the shared cache."""
        seen: set[str] = set()
        for _, plan in pending:
            spec = plan.spec
            benchmark, algorithm, rm = plan.build()
            prepared = workspace.prepared(benchmark, spec)
            workspace.proxy(rm, spec, prepared)
            key = config_hash(spec.benchmark.as_dict(), spec.algorithm.as_dict())
            if key not in seen:  # an offline learner's preference data (DPO's pairs)
                seen.add(key)
                optimizer_preferences(algorithm, prepared)

    def run(self, sweep: Sweep, workspace: Workspace, out) -> SweepOutcome:
        ray = import_ray()
        store, total, started = workspace.store, len(sweep.specs), time.time()
        results: list[RunResult] = []
        pending: list[tuple[Cell, RunPlan]] = []
        seen: set[tuple[str, int]] = set()
        for cell in sweep.cells:
            for item in cell.runs():
                spec = spec_of(item)
                if (done := store.finished_run(spec)) is not None:
                    results.append(RunResult(spec, done.run_id, done.name, "skipped", done.metrics, f"already finished as run {done.run_id}"))
                elif (spec.key, spec.seed) in seen:
                    results.append(RunResult(spec, None, "", "skipped", {}, "the same run as an earlier entry of this sweep"))
                else:
                    seen.add((spec.key, spec.seed))
                    pending.append((cell, as_plan(workspace.host, item)))
        if not pending:
            print("  nothing to run: every run is already in the store", file=out, flush=True)
            return SweepOutcome(results)
        own = self._connect(ray)
        try:
            totals = ray.cluster_resources()
            shapes = [self.resources(cell, totals.get("GPU", 0.0)) for cell, _ in pending]
            nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
            for (cell, _), res in zip(pending, shapes):
                if not fits_a_node(res, nodes):  # Ray would queue it forever
                    sizes = ", ".join(sorted({f"{n.get('CPU', 0):g} CPUs and {n.get('GPU', 0):g} GPUs" for n in nodes}))
                    raise UsageError(f"{cell.label}: resources num_cpus {res['num_cpus']:g}, num_gpus {res['num_gpus']:g}: no node of the "
                                     f"Ray cluster has that much (its nodes: {sizes or 'none'})")  # fmt: skip
            self._prepare(pending, workspace)
            print(f"  ray: {len(pending)} runs on {totals.get('CPU', 0):g} CPUs, {totals.get('GPU', 0):g} GPUs; "
                  f"stages built once in {workspace.cache.root}", file=out, flush=True)  # fmt: skip
            return SweepOutcome(self._dispatch(ray, pending, shapes, workspace, results, total, started, out))
        finally:
            if own:
                ray.shutdown()

    def _dispatch(self, ray, pending, shapes, workspace: Workspace, results: list[RunResult], total: int, started: float, out) -> list[RunResult]:
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        env[PLUGINS_ENV] = ""  # the plugins travel in the job, resolved; a relative path would mean nothing there
        base = {"plugins": self.worker_plugins(), "results_dir": str(workspace.results_dir.resolve()),
                "cache": str(workspace.cache.root.resolve())}  # fmt: skip
        task = ray.remote(execute)
        refs: dict[Any, tuple[Cell, RunSpec, dict[str, float]]] = {}
        for (cell, plan), res in zip(pending, shapes):
            spec = plan.spec
            job = {**base, "device": self.worker_device(res), "threads": max(1, int(res["num_cpus"]))}
            ref = task.options(num_cpus=res["num_cpus"], num_gpus=res["num_gpus"], max_retries=self.max_retries, retry_exceptions=False,
                               runtime_env={"env_vars": env}, name=f"harness {spec.algorithm.name} seed {spec.seed}").remote(spec.to_dict(), job)  # fmt: skip
            refs[ref] = (cell, spec, res)
        unfinished, done = list(refs), len(results)
        try:
            while unfinished:
                ready, unfinished = ray.wait(unfinished, num_returns=1)
                for ref in ready:
                    cell, spec, _ = refs[ref]
                    try:
                        payload = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        result = store_failure(workspace.store, spec, failure_reason(exc, self.max_retries), workspace.device)
                    else:
                        result = store_payload(workspace.store, spec, payload)
                    results.append(result)
                    done += 1
                    ran = [r for r in results if r.status != "skipped"]
                    eta = (time.time() - started) / len(ran) * (total - done) if ran else 0.0
                    failed = sum(r.status in ("failed", "interrupted") for r in results)
                    running = _running([refs[r][2] for r in unfinished], ray.cluster_resources())
                    print(f"  {cell.label} · seed {spec.seed}: {result.status}{f' ({result.error})' if result.error else ''}  "
                          f"[{done}/{total} done, {running} running, {failed} failed, ETA {eta / 60:.1f} min]", file=out, flush=True)  # fmt: skip
        except KeyboardInterrupt:  # Ctrl-C / SIGTERM: stop the cluster's work; unfinished runs were never claimed
            for ref in unfinished:
                ray.cancel(ref, force=True)
            raise
        return results
