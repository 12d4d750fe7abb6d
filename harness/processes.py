"""Whether a process on this host is still alive — the one check the stage cache (abandoned
builds) and the store (runs whose process died) share. Ground floor: imports nothing of the
harness."""

from __future__ import annotations

import os
from pathlib import Path


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether ``pid`` names a live process (one owned by another user counts). With ``started``
    (a :func:`process_start` value recorded earlier), a pid that now names a process with another
    start time — the pid was reused, e.g. after a container restart — counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_start(pid) in (None, started)
