"""Writing a report's files: :func:`write_atomically`, the one way every table, page and figure
reaches the disk. Layer: harness.reports (imports harness.errors only).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UsageError


def write_atomically(path: Path, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` (text, written as UTF-8, or bytes) in one rename, so a reader
    never sees half a file; a folder that cannot be written is a :class:`UsageError` naming it."""
    if path.exists() and not path.is_file():  # a rename would replace a device (/dev/full) or a folder
        raise UsageError(f"cannot write {path}: not a regular file")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
