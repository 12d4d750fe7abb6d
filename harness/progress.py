"""Progress bars on every stage longer than a second (tqdm, to stderr)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def bar(total: int | None = None, desc: str = "", disable: bool = False, unit: str = "it"):
    return tqdm(total=total, desc=desc, disable=disable, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
