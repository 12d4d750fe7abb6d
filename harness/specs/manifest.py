"""What a result needs to be reproduced: the code version, package versions, hardware.

Layer: specs (see :mod:`harness.specs`). Imports only the standard library and torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

PACKAGES = ["rlhf-harness", "torch", "transformers", "trl", "datasets", "accelerate", "pluggy", "evaluate", "pandas", "tokenizers"]
#: the code whose changes make a new code version: the core, the built-in plugins and benchmarks
CODE_PATHS = ["harness", "plugins", "benchmarks", "pyproject.toml"]
ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True).stdout


@lru_cache(maxsize=1)
def git_state() -> dict[str, str | bool | None]:
    """The checkout's commit, whether its code differs from it, and a digest of that difference
    (tracked changes and untracked files under :data:`CODE_PATHS`). Only when the harness itself
    is a git checkout: an installed copy inside some other repository has no commit of its own."""
    try:
        if Path(_git("rev-parse", "--show-toplevel").strip()).resolve() != ROOT:
            return {"commit": None, "dirty": None, "diff": None}
        _git("ls-files", "--error-unmatch", "harness/__init__.py")  # tracked here, not just inside the tree
        commit = _git("rev-parse", "HEAD").strip()
        diff = _git("diff", "HEAD", "--", *CODE_PATHS)
        untracked = _git("ls-files", "--others", "--exclude-standard", "--", *CODE_PATHS).split()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "diff": None}
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked):
        if name.endswith(".py"):
            digest.update(name.encode() + (ROOT / name).read_bytes())
    dirty = bool(diff) or any(n.endswith(".py") for n in untracked)
    return {"commit": commit or None, "dirty": dirty, "diff": digest.hexdigest()[:8] if dirty else None}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def harness_code_version() -> str:
    """The harness's code version: ``<commit[:12]>``, ``<commit[:12]>+dirty.<digest>`` when the
    code differs from the commit, or the package version outside a git checkout."""
    git = git_state()
    if git["commit"]:
        return git["commit"][:12] + (f"+dirty.{git['diff']}" if git["dirty"] else "")
    return f"rlhf-harness {_version('rlhf-harness') or 'unknown'}"


def allowed_cpus() -> int:
    """How many cores this process may run on (its CPU affinity: ``taskset``, a container's
    cpuset, a batch scheduler's allotment); the machine's count where affinity is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def limit_torch_threads() -> int:
    """Cap torch's intra-op threads at :func:`allowed_cpus`, and return the number. Torch's own
    default already stays within the affinity, but ``$OMP_NUM_THREADS`` above it (a cluster's
    environment) oversubscribes the cores granted; a lower setting (``torch.set_num_threads``,
    ``$OMP_NUM_THREADS=1``, physical cores only) is kept."""
    threads = min(torch.get_num_threads(), allowed_cpus())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def manifest(device: torch.device) -> dict:
    return {
        "git": dict(git_state()),
        "code_version": harness_code_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": allowed_cpus(),  # of cpu_count, the ones this process may use
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
    }
