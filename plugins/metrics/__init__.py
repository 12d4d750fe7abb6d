"""The evaluators' metrics as `evaluate` modules defined in this project (loaded from these
folders, never fetched from a hub at run time)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

METRICS_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def load_metric(name: str):
    """``evaluate.load`` on the local module folder ``plugins/metrics/<name>``."""
    import evaluate

    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").exists():
        raise ValueError(f"no metric module {name!r} in {METRICS_DIR}")
    return evaluate.load(str(folder))
