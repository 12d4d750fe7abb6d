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


class NonFiniteError(FloatingPointError):
    """A loss or reward became NaN or inf: the run stops and is stored as failed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, ``kill``): handled like Ctrl-C — the run in progress is stored
    as interrupted — and the command exits 143."""
