"""RLHF Harness: benchmark RLHF algorithms against each other, fairly and reproducibly."""

import pluggy

__version__ = "0.1.0"

PROJECT = "harness"
#: Mark a function in a plugin module as an implementation of a hook in `harness.hookspecs`.
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["hookimpl", "hookspec", "__version__"]
