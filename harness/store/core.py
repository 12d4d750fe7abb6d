"""The results store: runs, training curves, metrics and samples, in an SQLite file (the default:
a plain path) or a PostgreSQL database (``--store postgresql://user@host/db``), through one
SQLAlchemy Core code path.

Every record a leaderboard is built from lives here (see :func:`Store.metrics_frame`):

- ``runs``    — one row per run: its full run spec (JSON) and the spec's two keys (``spec_key``:
  everything but the seed; ``experiment_key``: also without the code version), status, timings,
  the budget used, the manifest (packages, hardware), the process that ran it (pid, host, start
  time) and its last heartbeat;
- ``curves``  — ``(run_id, step, key) -> value``, logged while training;
- ``metrics`` — final evaluation ``(run_id, key) -> value`` with each metric's ``higher_is_better``;
- ``samples`` — a few evaluated responses per run, for eyeballing reward hacking.

NaN is stored as NULL on both backends. A (spec_key, seed) is finished at most once:
:meth:`Store.claim_run` refuses a second claim while one is finished or running, and a partial
unique index backs that up. Several processes (a sweep's workers; with PostgreSQL, on several
machines) may write to one store at once, and every write is a single transaction, so a crash,
kill -9 or Ctrl-C never leaves half a write behind. On SQLite the file is in WAL mode and writers
queue for its lock (up to 30 s); on PostgreSQL a claim takes an advisory lock on its (key, seed).

A ``running`` run whose process died is marked ``interrupted`` by :meth:`Store.interrupt_orphans`
or by the next claim of its (key, seed): on this host when its pid is gone (or now names another
process); on another host when its heartbeat (:meth:`Store.heartbeat`, sent while it trains) is
older than :data:`STALE_AFTER_S`. :meth:`Store.mark_interrupted` releases one by hand
(``harness runs --mark-interrupted RUN``). SQLite files of schema 1 and 2 are migrated on open.

This module puts the :class:`Store` together from its parts: :mod:`harness.store.base`
(connections, opening), :mod:`~harness.store.migrations`, :mod:`~harness.store.leases`,
:mod:`~harness.store.writing` and :mod:`~harness.store.reading`. Layer: harness.store (imports
only its own modules, harness.specs and the ground floor; never harness.running, analysis,
reports or cli).
"""

from __future__ import annotations

from harness.store.base import StoreBase
from harness.store.leases import LeasesMixin
from harness.store.reading import ReadingMixin
from harness.store.writing import WritingMixin


class Store(LeasesMixin, WritingMixin, ReadingMixin, StoreBase):
    """The results store at ``path``: an SQLite file (created with its schema when missing), or a
    database URL (``postgresql://user@host/db``; its tables are created when missing).

    Each call checks a connection out of a small pool and returns it; use an object from the
    thread that made it. ``with Store(p) as s:`` closes it on exit.
    """
