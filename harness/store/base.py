"""A store's connections: opening it (the engine, then the schema), read connections, write
transactions (all or nothing) and the lock that serialises some of them, closing. The base class
of :class:`harness.store.Store`. Layer: harness.store (imports harness.errors only).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from harness.errors import FaultError, StoreUnwritable, UsageError
from harness.store.engines import _check_foreign_file, _one_line, _parse_location, _server_engine, _sqlite_engine, _Tx
from harness.store.migrations import SchemaMixin

#: engines of stores whose files turned unwritable: never closed (see :meth:`StoreBase.close`)
_LEFT_OPEN: list[sa.Engine] = []


class StoreBase(SchemaMixin):
    """The plumbing of :class:`harness.store.Store` (see there)."""

    def __init__(self, path: str | Path):
        url, self.path = _parse_location(path)
        self._dialect = url.get_backend_name()
        try:
            if self._dialect == "sqlite":
                if self.path.is_dir():
                    raise UsageError(
                        f"the store {self.path} is a directory; --store takes an SQLite file (e.g. {self.path / 'store.sqlite'}) or a database URL"
                    )
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _check_foreign_file(self.path)  # before the engine's first connection switches the file to WAL
                self._engine = _sqlite_engine(url)
            else:
                self._engine = _server_engine(url, self.path)
        except (FileExistsError, NotADirectoryError) as e:  # a file where a folder of the path should be: a mistake
            raise UsageError(f"cannot open the store {self.path}: {e.strerror or e}") from None
        except OSError as e:  # a folder that cannot be made or written: the environment's fault
            raise FaultError(f"cannot open the store {self.path}: {e.strerror or e}") from None
        try:
            self._ensure_schema()
        except sa.exc.DBAPIError as e:
            self._engine.dispose()
            raise self._open_error(e.orig) from None
        except sqlite3.DatabaseError as e:  # raised by the connect hook, before SQLAlchemy wraps it
            self._engine.dispose()
            raise self._open_error(e) from None
        except BaseException:
            self._engine.dispose()
            raise

    def _open_error(self, error: BaseException) -> UsageError | FaultError:
        """One line for a database error while opening the store (``error``: the driver's): a file
        that is no database is the command's mistake; a store that cannot be reached or opened is
        the environment's fault."""
        if getattr(error, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            return UsageError(f"{self.path} is not a harness store: it is not an SQLite database ({error})")
        if self._dialect != "sqlite" and getattr(error, "sqlstate", None) is None:  # no server's answer: unreachable
            return FaultError(f"cannot connect to the store {self.path}: {_one_line(error)}")
        return FaultError(f"cannot open the store {self.path}: {_one_line(error)}")

    def _unwritable_file(self, writing: bool) -> tuple[Path, str] | None:
        """A file SQLite would write that has turned unwritable (a read-only remount, ``chattr +i``),
        and why; ``None`` when all can be written. A read writes its read marks into the WAL index
        (``-shm``); a write also needs the database and its WAL."""
        if self._dialect != "sqlite":
            return None
        for suffix in ("-shm", "", "-wal") if writing else ("-shm",):
            file = Path(f"{self.path}{suffix}")
            if file.exists() and not os.access(file, os.W_OK):
                try:
                    read_only = bool(os.statvfs(file).f_flag & os.ST_RDONLY)
                except OSError:
                    read_only = False
                return file, "is on a file system mounted read-only" if read_only else "may not be written (permissions, or chattr +i)"
        return None

    def _check_files(self, writing: bool) -> None:
        """A :class:`StoreUnwritable` before SQLite touches a file it may no longer write: it maps
        the WAL index into memory, and a write into a mapping the kernel refuses ends the process
        with SIGBUS and no message."""
        unwritable = self._unwritable_file(writing)
        if unwritable is not None:
            file, why = unwritable
            raise StoreUnwritable(f"the store {self.path} can no longer be written: {file.name} {why}; nothing stored was lost — "
                                  "make it writable again and rerun (finished runs are skipped)")  # fmt: skip

    def _full_disk(self, error: sa.exc.OperationalError) -> FaultError | None:
        """One line for SQLite's "database or disk is full" (the transaction was rolled back whole)."""
        if self._dialect == "sqlite" and getattr(error.orig, "sqlite_errorname", None) == "SQLITE_FULL":
            return FaultError(f"the disk under the store {self.path} is full ({error.orig}): nothing stored was lost (the write was "
                              "rolled back); free some space, or move the store (--store), and rerun (finished runs are skipped)")  # fmt: skip
        return None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reading; its transaction ends (rolled back) on exit."""
        self._check_files(writing=False)
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, foreign_keys: bool = True) -> Iterator[_Tx]:
        """One write transaction: committed on success; any exception, KeyboardInterrupt included,
        rolls the whole of it back. On SQLite it begins IMMEDIATE (see :func:`_sqlite_engine`):
        the write lock is taken up front, so concurrent writers queue on the busy timeout instead
        of failing on a read-to-write lock upgrade."""
        self._check_files(writing=True)
        try:
            with self._engine.connect() as conn:
                conn.execution_options(harness_write=True)
                driver = conn.connection.driver_connection if self._dialect == "sqlite" and not foreign_keys else None
                if driver is not None:  # a no-op inside a transaction: switched before it begins
                    driver.execute("PRAGMA foreign_keys = OFF")
                try:
                    with conn.begin():
                        yield _Tx(conn)
                finally:
                    if driver is not None:
                        driver.execute("PRAGMA foreign_keys = ON")
        except sa.exc.OperationalError as e:
            full = self._full_disk(e)
            if full is None:
                raise
            raise full from None

    def _lock(self, tx: _Tx, *key: Any) -> None:
        """Serialise this transaction with every other one that locks ``key``, until it ends. On
        SQLite every write transaction already holds the database's one write lock."""
        if self._dialect == "postgresql":
            digest = hashlib.sha256(json.dumps(key).encode()).digest()
            tx.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)})

    def close(self) -> None:
        if self._unwritable_file(writing=True) is not None:
            # closing the last connection checkpoints the WAL through its memory-mapped index: SIGBUS on
            # a file gone unwritable. Leave them open (kept from the garbage collector); the CLI ends the process.
            _LEFT_OPEN.append(self._engine)
            return
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _no_run(self, run_id: str) -> UsageError:
        return UsageError(f"no run '{run_id}' in {self.path}; `harness runs` lists them")
