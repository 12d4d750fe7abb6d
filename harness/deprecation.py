"""The plugin API's promise, as code: a public name that is renamed or moved keeps working for at
least one minor release, with a :class:`DeprecationWarning` that names its replacement (README:
"The plugin API's promise"; CHANGELOG.md says what to change). Ground floor: imports nothing of
the harness.

Two tools:

- :func:`moved_names` — a module-level ``__getattr__`` for names that moved out of a module::

      __getattr__ = moved_names(__name__, {"old_name": ("harness.new.home", "new_name")})

- :func:`warn_moved_module` — called at the top of a module kept only as an alias of a moved one.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable


def deprecated(old: str, new: str, *, since: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated since ``since`` and that ``new`` replaces it."""
    warnings.warn(f"{old} is deprecated since harness {since}: use {new} instead (removed after the next minor release)",
                  DeprecationWarning, stacklevel=stacklevel)  # fmt: skip


def moved_names(module: str, moves: dict[str, tuple[str, str]], *, since: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves each old name in ``moves`` from its new home
    ``(module, name)``, with a :class:`DeprecationWarning`; other names are an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name not in moves:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, new_name = moves[name]
        deprecated(f"{module}.{name}", f"{home}.{new_name}", since=since)
        return getattr(importlib.import_module(home), new_name)

    return __getattr__


def warn_moved_module(old: str, new: str, *, since: str) -> None:
    """Call at the top of a module that only re-exports a module that moved: importing ``old``
    warns once per process (Python caches the module) and names ``new``."""
    deprecated(f"module {old}", f"{new}", since=since, stacklevel=4)
