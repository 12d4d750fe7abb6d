"""Progress bars on every stage longer than a second (tqdm, to stderr)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def quiet_default() -> bool:
    return bool(os.environ.get("HARNESS_QUIET"))


def bar(total: int | None = None, desc: str = "", disable: bool | None = None, unit: str = "it"):
    if disable is None:
        disable = quiet_default()
    return tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
