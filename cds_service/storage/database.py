"""Engines and sessions: SQLite (WAL) by default, PostgreSQL through psycopg 3 by URL.

Built per app or per CLI command, never at import. SQLite connections set, on connect:

- `journal_mode=WAL`: readers (exports, reports) never block the service's writes;
- `synchronous=FULL`: a commit returns only after the WAL is fsynced. `NORMAL` would already
  survive a SIGKILL of the server process (the committed frames are in the OS page cache), but
  not a power loss or kernel crash; a feedback `200` promises the record is stored, so the
  service pays one fsync per commit (about 0.3 ms here, see `bench/audit_cost.py`);
- `busy_timeout`: how long a write waits for another writer (`DATABASE_TIMEOUT_SECONDS`).

On PostgreSQL the same timeout bounds connecting, waiting for a pooled connection and each
statement, and connections are pinged before use so a restarted server costs no record.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

APPLICATION_NAME = "mipomersen-cds"


def is_sqlite(url: str | URL) -> bool:
    """Return True when `url` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_database_engine(
    url: str | URL, *, timeout_seconds: float, immediate_transactions: bool = False
) -> Engine:
    """Return an engine for `url` with the service's pragmas or timeouts.

    `immediate_transactions` (SQLite only) makes every transaction `BEGIN IMMEDIATE`: it takes
    the write lock at once, so concurrent migrations run one after the other.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, hide_parameters=True, pool_timeout=timeout_seconds)
        event.listen(engine, "connect", _sqlite_pragmas(timeout_seconds, immediate_transactions))
        if immediate_transactions:
            event.listen(engine, "begin", _begin_immediate)
        return engine
    timeout_ms = int(timeout_seconds * 1000)
    sent = parsed.query.get("options", ())
    options = [sent] if isinstance(sent, str) else list(sent)
    options.append(f"-c statement_timeout={timeout_ms}")
    parsed = parsed.update_query_dict({"options": " ".join(options)})
    connect_args: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeout_seconds))}
    if "application_name" not in parsed.query:
        connect_args["application_name"] = APPLICATION_NAME
    return create_engine(
        parsed,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_timeout=timeout_seconds,
        connect_args=connect_args,
    )


def _sqlite_pragmas(timeout_seconds: float, immediate_transactions: bool) -> Any:
    timeout_ms = int(timeout_seconds * 1000)

    def set_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
        if immediate_transactions:
            # pysqlite must not emit its own BEGIN; the "begin" listener does.
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    return set_pragmas


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine and its session factory; `close()` releases the pooled connections."""

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self.url = url
        self.engine = create_database_engine(url, timeout_seconds=timeout_seconds)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Return True for a SQLite database."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session in a transaction: committed on exit, rolled back on an error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session for reading; nothing is committed."""
        with self._sessions() as session:
            yield session

    def close(self) -> None:
        """Close every pooled connection (the database stays usable: it reconnects)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"


def describe_database_error(error: BaseException) -> str:
    """Return a log-safe description of a database error.

    Connection, lock and timeout errors keep the driver's first line ("database is locked",
    "connection refused"); any other error is named by its class only, because messages such as
    a unique violation's DETAIL quote the row's values.
    """
    name = type(error).__name__
    if not isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        return name
    original = error.orig if isinstance(error, exc.DBAPIError) else error
    first_line = str(original).strip().split("\n", 1)[0]
    return f"{name}: {first_line}" if first_line else name
