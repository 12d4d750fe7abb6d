"""Content-addressed cache of pipeline stages: ``<root>/<stage>/<hash>/`` folders, written to
a temporary folder and renamed into place when complete, so an interrupted stage never leaves a
half-written artifact that a later run would trust. A temporary folder is named after the
process building it (``.<hash>-<pid>-…``), so that ``clear`` can remove the ones whose process is
gone (kill -9 mid-build) and leave a build in progress alone; a complete folder whose
``stage.json`` does not parse is rebuilt with a warning."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
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
            if stage_info(final) is not None:
                return final
            warnings.warn(f"cache: {final} is damaged (its {DONE} does not parse): rebuilding it", stacklevel=2)
            shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-{os.getpid()}-", dir=final.parent))
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
        """Every stage folder with a ``stage.json``, with its size; ``status`` is ``ok``, or
        ``damaged`` when that file does not parse (the next run rebuilds it; ``clear`` removes it)."""
        rows = []
        if not self.root.exists():
            return rows
        for done in sorted(self.root.glob(f"*/*/{DONE}")):
            folder = done.parent
            info = stage_info(folder)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            rows.append({"stage": folder.parent.name, "key": folder.name, "bytes": size, "path": str(folder),
                         "seconds": (info or {}).get("seconds"), "status": "ok" if info is not None else "damaged"})  # fmt: skip
        return rows

    def abandoned(self) -> list[Path]:
        """Temporary folders of builds whose process is gone (killed mid-build): named
        ``.<key>-<pid>-…`` by :meth:`get_or_build`; one without a readable pid counts as gone."""
        out = []
        for tmp in sorted(self.root.glob("*/.*-*")) if self.root.exists() else []:
            parts = tmp.name.split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if tmp.is_dir() and not (pid is not None and _pid_alive(pid)):
                out.append(tmp)
        return out

    def clear(self, stage: str | None = None) -> int:
        """Remove every cached stage (or one stage's folders), damaged ones included, and the
        temporary folders of abandoned builds; return how many folders were removed."""
        targets = [Path(e["path"]) for e in self.entries() if stage is None or e["stage"] == stage]
        targets += [t for t in self.abandoned() if stage is None or t.parent.name == stage]
        for folder in targets:
            shutil.rmtree(folder, ignore_errors=True)
        return len(targets)


def stage_info(folder: Path) -> dict | None:
    """A stage folder's ``stage.json``, or ``None`` when it is missing or does not parse."""
    try:
        info = json.loads((folder / DONE).read_text())
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return info if isinstance(info, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
