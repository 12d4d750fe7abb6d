"""The plugin host of one ``harness`` command: every plugin loaded (torch, transformers and TRL
with them: seconds), once, and only by a command that needs it. While the dispatcher runs a
command (:func:`kept`), the first :func:`plugin_host` call loads the host and later calls get
the same one.

Layer: part of ``harness.cli``, the top layer: it may import every lower layer
(``harness.plugin_manager`` lazily: it is slow), and ``harness.cli.flags``.
"""

from __future__ import annotations

from contextlib import contextmanager

from harness.cli.flags import plugins_from_argv
from harness.errors import UsageError

#: the module of the plugin that registers the core commands (harness run, list, …)
CORE_PLUGIN = "harness.cli.commands"


class _Kept:
    active = False
    host = None


_kept = _Kept()


def core_plugin_installed() -> bool:
    """Whether the ``harness`` entry-point group registers :data:`CORE_PLUGIN` (pyproject.toml's
    ``[project.entry-points.harness]``); where it does not, :func:`load` registers it by name."""
    import importlib.metadata

    from harness.plugin_manager import ENTRY_POINT_GROUP

    return any(ep.value == CORE_PLUGIN for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def load(argv: list[str]):
    """Every plugin: the installed ones, the core commands', and those ``--plugin`` names in ``argv``."""
    from harness.plugin_manager import load_plugins

    requested = plugins_from_argv(argv)
    host = load_plugins(([] if core_plugin_installed() else [CORE_PLUGIN]) + requested)
    for err in host.errors:  # a plugin the user named is theirs to fix; an installed one that broke is a warning
        if err.plugin in requested:
            raise UsageError(f"--plugin {err.plugin}: not loaded: {err.error}")
    host.report_errors()
    return host


def plugin_host(argv: list[str]):
    """The plugin host for the command line ``argv``: the kept one while the dispatcher runs a
    command, loaded on the first call."""
    if _kept.host is not None:
        return _kept.host
    host = load(argv)
    if _kept.active:
        _kept.host = host
    return host


@contextmanager
def kept():
    """While this runs, one plugin host serves every :func:`plugin_host` call (the dispatcher's
    for a plugin command, and a core command's own)."""
    previous = _kept.active, _kept.host  # a command run from inside a command keeps its own
    _kept.active, _kept.host = True, None
    try:
        yield
    finally:
        _kept.active, _kept.host = previous
