"""Where a store lives: ``--store`` parsed (an SQLite path or a database URL), the SQLAlchemy
engine for it (SQLite in WAL mode with IMMEDIATE write transactions; a pooled server engine), a
foreign SQLite file refused unchanged, and :class:`_Tx`, one write transaction's connection.
Layer: harness.store (imports harness.errors only).
"""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url

from harness.errors import UsageError

BUSY_TIMEOUT_S = 30.0
#: what ``--store`` takes, for error messages
SUPPORTED_STORES = "a file path (SQLite), sqlite:///PATH, or postgresql://USER@HOST[:PORT]/DB"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str | Path) -> bool:
    """Whether ``--store`` names a database URL (``scheme://…``) rather than an SQLite file."""
    return isinstance(location, str) and bool(_URL_RE.match(location))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class _Tx:
    """The connection of one write transaction (see :meth:`Store._write`). ``execute`` takes a
    SQLAlchemy statement, or a string of the driver's SQL with its parameters (``?`` on SQLite)
    whose errors are the driver's own (``sqlite3.IntegrityError``): a hand repair, or a test."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult:
        if not isinstance(statement, str):
            return self.conn.execute(statement, parameters)
        try:
            return self.conn.exec_driver_sql(statement, parameters or ())
        except sa.exc.DBAPIError as e:
            raise e.orig from None


def _parse_location(location: str | Path) -> tuple[URL, Path | str]:
    """The SQLAlchemy URL of ``--store`` and how messages name it: a path (SQLite) or the URL
    without its password."""
    if not is_url(location):
        path = Path(location)
        return URL.create("sqlite", database=str(path)), path
    try:
        url = make_url(str(location))
    except (sa.exc.ArgumentError, ValueError) as e:  # ValueError: a port that is not a number
        hidden = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", str(location))
        raise UsageError(f"cannot parse the store URL {hidden} ({e}); --store takes {SUPPORTED_STORES}") from None
    shown = urllib.parse.unquote(url.render_as_string(hide_password=True))  # ?host=/tmp/… as typed
    backend = url.get_backend_name()
    if backend == "sqlite" and url.drivername.partition("+")[2] in ("", "pysqlite"):
        if not url.database or url.database == ":memory:":
            raise UsageError(f"the store URL {shown} names no file; --store takes {SUPPORTED_STORES}")
        return URL.create("sqlite", database=url.database), Path(url.database)
    if backend in ("postgresql", "postgres"):
        # SQLAlchemy's default driver is psycopg2; the extra installs psycopg (3). postgres:// is
        # libpq's spelling, unknown to SQLAlchemy.
        driver = url.drivername.partition("+")[2] or "psycopg"
        return url.set(drivername=f"postgresql+{driver}"), shown
    raise UsageError(f"unknown kind of store {url.drivername}:// in {shown}; --store takes {SUPPORTED_STORES}")


def _check_foreign_file(path: Path) -> None:
    """Refuse, without changing it, an existing SQLite file that is not a harness store (a read-only
    look: opening it through the engine would already switch it to WAL mode)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
            raise UsageError(f"{path} is not a harness store: it is not an SQLite database ({e})") from None
        return  # anything else (locked, unreadable) is met, and reported, by the real open
    if tables and "schema_version" not in tables:
        raise UsageError(f"{path} is not a harness store: it holds other tables ({', '.join(sorted(tables))})")


def is_empty_file(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite store file with nothing in it (0 bytes, or a database with no
    table), looked at read-only: a read command reports it instead of opening it, which would write
    the schema into it."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.stat().st_size == 0:
        return True
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.DatabaseError:
        return False  # not a database: the real open says so


def _sqlite_engine(url: URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver begins nothing: _begin below does
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        dbapi_conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against process crashes in WAL mode; only power loss can drop the
        # last commits, never corrupt the file.
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        dbapi_conn.execute("PRAGMA foreign_keys = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("harness_write") else "BEGIN")

    return engine


def _server_engine(url: URL, shown: str) -> sa.Engine:
    # Fail fast on a host that does not answer; pre-ping replaces a connection the server dropped
    # while a long run trained.
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=2, connect_args=connect_args)
    except ImportError as e:
        hint = (
            "pip install rlhf-harness[postgres]"
            if url.get_driver_name() == "psycopg"
            else f"pip install {e.name}, or use postgresql:// (psycopg: pip install rlhf-harness[postgres])"
        )
        raise UsageError(f"cannot open the store {shown}: its database driver ({e.name}) is not installed; {hint}") from None
    except sa.exc.NoSuchModuleError:
        raise UsageError(f"unknown database driver {url.drivername}:// in {shown}; --store takes {SUPPORTED_STORES}") from None
