"""One run on several devices (#10): data-parallel training, one process per device.

``harness run --num-processes N …`` starts N copies of the same command (this module's
:func:`launch`, the ``torchrun`` environment: ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` …); a
command started by ``accelerate launch --num_processes N -m harness.cli run …`` or by ``torchrun``
arrives with that environment already set. Each process joins one process group through
``accelerate.PartialState`` (gloo on CPU, nccl on CUDA). Then:

* **rank 0** (the main process) runs :func:`harness.running.runner.run` as in one process: it
  alone opens the store, claims the run, writes the run folder, evaluates and stores. Once the run
  is claimed it tells the other ranks to start (:func:`announce_start`), or to skip it.
* **the other ranks** build the same training context (:func:`_train_only`) and run the
  optimizer's ``train`` only: no store, no run folder, no evaluation.

Inside ``train`` an optimizer that declares ``data_parallel = True`` (PPO and its subclasses,
RRHF) uses the collectives of :mod:`harness.parallel` (``harness.api.parallel``): each rank samples
its slice of the batch, gradients and logged scalars are averaged over ranks. In one process every
one of them returns its input untouched, so a single-process run computes exactly what it did
before. TRL's trainers (``dpo``, ``grpo``, ``rloo``) join the same process group through their
``Accelerator`` (DDP, sharded data loaders, gathered metrics) with per-device batches of
``batch / N``. ``sft`` and ``best-of-n`` train nothing: the other ranks return at once.

Each process parses its own command line, so each resolves the run's plugins once on its side
(:class:`~harness.specs.RunPlan`).

Layer: running. Imports the ground floor, the specs and :mod:`harness.running.runner` (rank 0
runs it, passing :data:`RANK0` as its ``ranks``) and :mod:`harness.running.training`; the
runner never imports this module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from harness import parallel
from harness.api import Budget
from harness.errors import FaultError, NonFiniteError, UsageError
from harness.parallel import DataParallel
from harness.running.runner import RunResult
from harness.running.runner import run as run_one
from harness.running.training import check_finite, seed_everything, train_metered, training_context
from harness.specs import RunPlan, RunSpec, as_plan, spec_of

WORLD_ENV = "WORLD_SIZE"


_started = False  # rank 0: whether the other ranks were told to train the current run


def state() -> DataParallel:
    return parallel.state()


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as a launcher (ours, torchrun, accelerate launch) sets it; 1 without one."""
    try:
        return int(os.environ.get(WORLD_ENV, "1"))
    except ValueError:
        raise UsageError(f"${WORLD_ENV}={os.environ[WORLD_ENV]!r}: expected a number of processes") from None


# -------------------------------------------------------------------------
# which algorithms can
# -------------------------------------------------------------------------


def data_parallel_algorithms(host) -> list[str]:
    return [e.name for e in host.algorithms.entries() if e.cls.data_parallel]


def check_algorithm(host, specs: list[RunSpec | RunPlan], n: int) -> None:
    """A :class:`UsageError` unless every spec's algorithm trains data-parallel on ``n`` processes
    (plans as resolved; a bare spec is resolved here)."""
    able = data_parallel_algorithms(host)
    for spec in specs:
        plan = as_plan(host, spec)
        algorithm = plan.build_algorithm()
        if not algorithm.data_parallel:
            raise UsageError(f"--num-processes {n}: {plan.spec.algorithm.name} does not train data-parallel yet; "
                             f"these do: {', '.join(able) or 'none'}")  # fmt: skip
        algorithm.check_data_parallel(n)


# -------------------------------------------------------------------------
# starting the processes
# -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], n: int) -> int:
    """Run ``harness run argv`` in ``n`` processes on this machine (rank 0 prints, the others are
    quiet); the first one to fail stops the others (SIGTERM: rank 0 marks its run interrupted).
    Returns rank 0's exit status (or the failing rank's, when rank 0 itself succeeded)."""
    port = _free_port()
    procs = []
    for rank in range(n):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
        env.setdefault("OMP_NUM_THREADS", "1")  # N processes share the cores
        out = None if rank == 0 else subprocess.DEVNULL
        procs.append(subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *argv], env=env, stdout=out))
    codes: dict[int, int] = {}
    try:
        while len(codes) < n:
            for rank, p in enumerate(procs):
                if rank not in codes and p.poll() is not None:
                    codes[rank] = p.returncode
                    if p.returncode != 0:  # a rank that failed leaves the others waiting in a collective
                        for other in procs:
                            if other.poll() is None:
                                other.terminate()
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait()
    return codes[0] or next((c for c in codes.values() if c), 0)


def init(device: torch.device) -> torch.device:
    """Join the process group the launcher set up (gloo on CPU, nccl on CUDA); returns this rank's
    device (``cuda:LOCAL_RANK`` when ``device`` is CUDA)."""
    from accelerate import PartialState

    cpu = device.type == "cpu"
    partial = PartialState(cpu=cpu)
    if partial.num_processes < 2:
        raise FaultError(f"${WORLD_ENV}={world_size_from_env()} but accelerate found no process group")
    parallel.set_state(DataParallel(partial.process_index, partial.num_processes, partial.local_process_index))
    return device if cpu else partial.device


def close() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# -------------------------------------------------------------------------
# one run: rank 0 runs it in full, the others train
# -------------------------------------------------------------------------


def _broadcast_object(obj):
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def announce_start() -> None:
    """Rank 0, once it has claimed the run and written its folder: the other ranks start training
    it. Nothing in one process."""
    global _started
    if state().enabled and state().is_main:
        _broadcast_object(True)
        _started = True


def manifest_fields() -> dict[str, int]:
    """What the run's manifest records about data parallelism."""
    return {"num_processes": state().world_size}


class Rank0:
    """Rank 0's ``ranks`` for :func:`harness.running.runner.run` (see its ``OneProcess``): the
    manifest records the number of processes, and the claim sends the other ranks training."""

    def manifest_fields(self) -> dict[str, int]:
        return manifest_fields()

    def announce_start(self) -> None:
        announce_start()


RANK0 = Rank0()


def run(spec: RunSpec | RunPlan, workspace):
    """:func:`harness.running.runner.run` on every rank: the full run on rank 0, training only on
    the others. A data-parallel run that does not finish stops the whole job (the other ranks
    cannot tell where rank 0 left their collectives)."""
    global _started

    if not state().is_main:
        return _train_only(spec, workspace)
    _started = False
    result = run_one(spec, workspace, ranks=RANK0)
    if not _started:  # skipped (finished already, running elsewhere) or failed before training
        _broadcast_object(False)
    elif result.status != "finished":
        if (result.error or "").startswith(NonFiniteError.__name__):
            # every rank stopped at the same check (harness.parallel.any_over_ranks): they wait here
            # until the failure and its reason are stored, then all exit (none is killed mid-write)
            torch.distributed.barrier()
        raise FaultError(f"data-parallel run {result.run_id} {result.status}: {result.error}")
    return result


def _train_only(spec: RunSpec | RunPlan, workspace):
    """A rank other than 0: the training context exactly as the runner builds it, then ``train``.
    Nothing is stored and no file is written."""
    if not _broadcast_object(None):
        return RunResult(spec_of(spec), None, "", "skipped")
    plan = as_plan(workspace.host, spec)
    spec = plan.spec
    benchmark, algorithm, rm = plan.build()
    prepared = workspace.prepared(benchmark, spec)  # after rank 0's: read from the stage cache
    proxy = workspace.proxy(rm, spec, prepared).fitted
    budget = Budget(spec.budget)
    seed_everything(spec.seed)
    # the logged scalars are the mean over ranks, the same on every rank: each rank checks them as rank 0's
    # runner does, so a NaN there stops every rank at the same step
    ctx, _ = training_context(spec, workspace, algorithm, prepared, proxy, budget, log=check_finite, quiet=True,
                              run_dir=Path(workspace.results_dir) / "runs" / f".rank{state().rank}")  # never written
    try:
        train_metered(algorithm, ctx)
    except NonFiniteError as exc:  # NaN or inf on some rank: all ranks stopped together, rank 0 stores why
        torch.distributed.barrier()
        return RunResult(spec, None, "", "failed", {}, f"{type(exc).__name__}: {exc}")
    return RunResult(spec, None, "", "finished")
