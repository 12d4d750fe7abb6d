"""A digest that identifies a model or data source for a cache key (the stage cache's keys, a
benchmark's ``data_fingerprint``). Ground floor: imports nothing of the harness."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def source_fingerprint(source: str) -> str:
    """What identifies a model or data source for a cache key: for a local file or folder, the
    name, size and modification time of every file in it (an edited file rebuilds what depends
    on it, without hashing gigabytes); for anything else (a hub id), the id itself."""
    path = Path(source).expanduser()
    if not path.exists():
        return source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [(str(f.relative_to(path)) if f != path else f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]
