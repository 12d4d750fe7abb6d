"""Where runs happen and land: :class:`Workspace` (the loaded plugins, the store, the run folders,
the stage cache, the device) and :func:`resolve_device`.

Layer: running. Imports the store, the pipeline, the specs, the ground floor and
:mod:`harness.running.reward_fit`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.config import config_hash
from harness.errors import UsageError
from harness.pipeline.cache import StageCache
from harness.pipeline.stages import PreparedBenchmark, prepare
from harness.running.reward_fit import ProxyFit, fit_proxy
from harness.specs import RunSpec
from harness.store import Store, is_url


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
