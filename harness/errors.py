"""Errors the CLI prints as one line: the user's to fix (exit 2) or the environment's (exit 1)."""

from __future__ import annotations

import difflib


class UsageError(Exception):
    """A user mistake (unknown name, bad value, malformed file): no traceback, exit 2."""


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'ppo'?)`` when ``word`` is close to one of ``choices``, else ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class FaultError(Exception):
    """The environment, not the command (a folder that cannot be written, a full disk): the CLI
    prints one line and exits 1."""


class StoreUnwritable(FaultError):
    """The store's files turned unwritable while this process had the store open (a read-only
    remount, ``chattr +i``). Its SQLite connections are then left open rather than closed (closing
    the last one writes into the memory-mapped WAL index, which the kernel answers with SIGBUS), so
    a command that meets it ends its process at once after its one line."""


class NonFiniteError(FloatingPointError):
    """A loss or reward became NaN or inf: the run stops and is stored as failed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, ``kill``): handled like Ctrl-C — the run in progress is stored
    as interrupted — and the command exits 143."""
