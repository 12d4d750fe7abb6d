"""Errors of the data adapters: :class:`DataError` for the user to fix, :class:`Skip` for a record left out."""

from __future__ import annotations

from harness.errors import UsageError


class DataError(UsageError):
    """Input that cannot be read as the chosen format: a missing file, unreadable JSON, a record
    with a missing or mistyped field, or nothing usable left. The message names the source and,
    where there is one, the record (0-based) and the field; the CLI prints it as one line."""


class Skip(Exception):
    """A well-formed record that yields no example (an HH pair whose earlier turns differ, an
    unsupported role): counted under ``reason`` in the load report, never an error."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
