"""Content-addressed cache of pipeline stages: ``<root>/<stage>/<hash>/`` folders, written to
a temporary folder and renamed into place when complete, so an interrupted stage never leaves a
half-written artifact that a later run would trust."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

CACHE_ENV = "HARNESS_CACHE_DIR"
DONE = "stage.json"


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


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlhf-harness"


class StageCache:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def folder(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None], describe: dict | None = None) -> Path:
        """The folder of ``stage`` under ``key``, built by ``build(tmp_folder)`` if missing."""
        final = self.folder(stage, key)
        if (final / DONE).exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            started = time.time()
            build(tmp)
            info = {"stage": stage, "key": key, "seconds": round(time.time() - started, 3), "created": time.time()}
            (tmp / DONE).write_text(json.dumps({**info, "inputs": describe or {}}, indent=1, default=str))
            try:
                tmp.rename(final)
            except OSError:  # another process finished the same stage first: keep theirs
                if not (final / DONE).exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def entries(self) -> list[dict]:
        """Every complete stage folder, with its size."""
        rows = []
        if not self.root.exists():
            return rows
        for done in sorted(self.root.glob(f"*/*/{DONE}")):
            folder = done.parent
            info = json.loads(done.read_text())
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            rows.append({"stage": folder.parent.name, "key": folder.name, "bytes": size, "seconds": info.get("seconds"), "path": str(folder)})
        return rows

    def clear(self, stage: str | None = None) -> int:
        """Remove every cached stage (or one stage's folders); return how many were removed."""
        targets = [e for e in self.entries() if stage is None or e["stage"] == stage]
        for entry in targets:
            shutil.rmtree(entry["path"], ignore_errors=True)
        return len(targets)
