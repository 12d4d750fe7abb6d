"""Content-addressed cache of pipeline stages: ``<root>/<stage>/<hash>/`` folders, written to
a temporary folder and renamed into place when complete, so an interrupted stage never leaves a
half-written artifact that a later run would trust. A temporary folder is named after the
process building it (``.<hash>-<pid>-…``), so that ``clear`` can remove the ones whose process is
gone (kill -9 mid-build) and leave a build in progress alone.

``stage.json`` records the size and SHA-256 of every file the stage wrote; a hit is verified
against it before anything is loaded (a few MB per stage at our sizes: milliseconds), so a
truncated ``.safetensors``, a garbage ``prompts.json`` or a file deleted by hand is rebuilt with
a one-line warning instead of failing every later run. A folder whose ``stage.json`` does not
parse, or that an older harness wrote without checksums, is rebuilt the same way.

``stage.json`` also records how long the build took (``seconds``), and a :class:`StageCache`
keeps a :class:`StageEvent` for every stage it built or loaded in this process, so that a sweep
can tell where its time went."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from harness.processes import pid_alive

CACHE_ENV = "HARNESS_CACHE_DIR"
DONE = "stage.json"
#: every stage the pipeline caches, in build order
STAGES = ("data", "base_lm", "sft", "judge", "preferences", "reward_model")


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlhf-harness"


@dataclass(frozen=True)
class StageEvent:
    """One :meth:`StageCache.get_or_build` call that returned a folder."""

    stage: str
    key: str
    #: ``built`` (here, in this process) or ``loaded`` (found complete and verified)
    action: Literal["built", "loaded"]
    #: a build: the wall seconds of the build itself, as ``stage.json`` records them; a load:
    #: finding the folder and verifying its checksums (the caller reads the files afterwards)
    seconds: float


class StageCache:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else default_cache_dir()
        #: every stage this object built or loaded, in order (per process: a Ray worker's own
        #: cache object records its loads, not the driver's builds)
        self.events: list[StageEvent] = []

    def folder(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], None], describe: dict | None = None) -> Path:
        """The folder of ``stage`` under ``key``, built by ``build(tmp_folder)`` if missing;
        recorded in :attr:`events` either way."""
        looked = time.perf_counter()
        final = self.folder(stage, key)
        if (final / DONE).exists():
            damage = verify(final)
            if damage is None:
                self.events.append(StageEvent(stage, key, "loaded", time.perf_counter() - looked))
                return final
            warnings.warn(f"cache: {final} is damaged ({damage}): rebuilding it", stacklevel=2)
            shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-{os.getpid()}-", dir=final.parent))
        try:
            started = time.perf_counter()
            build(tmp)
            seconds = round(time.perf_counter() - started, 3)
            info = {"stage": stage, "key": key, "seconds": seconds, "created": time.time()}
            (tmp / DONE).write_text(json.dumps({**info, "inputs": describe or {}, "files": _checksums(tmp)}, indent=1, default=str))
            try:
                tmp.rename(final)
            except OSError:  # another process finished the same stage first: keep theirs
                if not (final / DONE).exists():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.events.append(StageEvent(stage, key, "built", seconds))  # built here, even if another process's copy was kept
        return final

    def entries(self) -> list[dict]:
        """Every stage folder with a ``stage.json``, with its size; ``status`` is ``ok``, or
        ``damaged`` (``damage`` says why) when it fails :func:`verify` (the next run rebuilds it;
        ``clear`` removes it)."""
        rows = []
        if not self.root.exists():
            return rows
        for done in sorted(self.root.glob(f"*/*/{DONE}")):
            folder = done.parent
            info, damage = stage_info(folder), verify(folder)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            rows.append({"stage": folder.parent.name, "key": folder.name, "bytes": size, "path": str(folder),
                         "seconds": (info or {}).get("seconds"), "status": "ok" if damage is None else "damaged",
                         "damage": damage})  # fmt: skip
        return rows

    def abandoned(self) -> list[Path]:
        """Temporary folders of builds whose process is gone (killed mid-build): named
        ``.<key>-<pid>-…`` by :meth:`get_or_build`; one without a readable pid counts as gone."""
        out = []
        for tmp in sorted(self.root.glob("*/.*-*")) if self.root.exists() else []:
            parts = tmp.name.split("-")
            pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
            if tmp.is_dir() and not (pid is not None and pid_alive(pid)):
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


def verify(folder: Path) -> str | None:
    """What is wrong with a complete stage folder (one line), or ``None`` when every file its
    ``stage.json`` lists is there with the recorded size and SHA-256 and nothing is missing."""
    info = stage_info(folder)
    if info is None:
        return f"its {DONE} does not parse"
    recorded = info.get("files")
    if not isinstance(recorded, dict):
        return f"its {DONE} has no checksums (an older harness built it)"
    try:
        found = _checksums(folder)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    for name, (size, digest) in recorded.items():
        if name not in found:
            return f"{name} is missing"
        if found[name][0] != size:
            return f"{name} has {found[name][0]} bytes, {size} were written"
        if found[name][1] != digest:
            return f"{name} does not match its checksum"
    return None


def _checksums(folder: Path) -> dict[str, tuple[int, str]]:
    """``{relative path: (size, sha256)}`` of every file under ``folder`` but ``stage.json``."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / DONE):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        out[str(path.relative_to(folder))] = (path.stat().st_size, digest.hexdigest())
    return out
