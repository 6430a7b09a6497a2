"""Engines and sessions: SQLite (WAL) by default, PostgreSQL through psycopg 3 by URL.

Built per app or per CLI command, never at import. Two kinds of commit:

- ordinary (the audit record of every hook call): committed when the database has it, not yet
  on disk. SQLite `synchronous=NORMAL` in WAL mode: the commit has written its WAL frames into
  the OS page cache, so it survives a crash or SIGKILL of the service; a power loss or kernel
  crash may lose the last seconds of records, never the database. PostgreSQL
  `synchronous_commit=off`: the server has the commit; a crash of the PostgreSQL server may
  lose its last ~0.6 s. This keeps an fsync (0.3 to 4 ms on this machine) off every hook call;
- durable (`transaction(durable=True)`: feedback, whose `200` tells the client not to resend):
  the commit returns once the WAL is on disk (SQLite `synchronous=FULL`, PostgreSQL's default
  `synchronous_commit=on`), so it survives a power loss too.

SQLite connections also set `journal_mode=WAL` (readers such as exports never block writes)
and `busy_timeout` (`DATABASE_TIMEOUT_SECONDS`: how long a write waits for another writer). On
PostgreSQL the same timeout bounds connecting, waiting for a pooled connection and each
statement, and pooled connections are pinged before use so a restarted server costs no record;
the audit record's connections, held by each thread (`ThreadAutocommitConnections`), are
replaced when found closed instead, and the record written on the new one.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

APPLICATION_NAME = "mipomersen-cds"

_Held = TypeVar("_Held")


def is_sqlite(url: str | URL) -> bool:
    """Return True when `url` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def create_database_engine(
    url: str | URL,
    *,
    timeout_seconds: float,
    durable: bool = False,
    immediate_transactions: bool = False,
) -> Engine:
    """Return an engine for `url` with the service's pragmas or timeouts.

    `durable` makes every commit wait for the disk (see the module docstring).
    `immediate_transactions` (SQLite only) makes every transaction `BEGIN IMMEDIATE`: it takes
    the write lock at once, so concurrent migrations run one after the other.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, hide_parameters=True, pool_timeout=timeout_seconds)
        pragmas = _sqlite_pragmas(timeout_seconds, durable, immediate_transactions)
        event.listen(engine, "connect", pragmas)
        if immediate_transactions:
            event.listen(engine, "begin", _begin_immediate)
        return engine
    sent = parsed.query.get("options", ())
    options = [sent] if isinstance(sent, str) else list(sent)
    options.append(f"-c statement_timeout={int(timeout_seconds * 1000)}")
    if not durable:
        options.append("-c synchronous_commit=off")
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


def _sqlite_pragmas(timeout_seconds: float, durable: bool, immediate_transactions: bool) -> Any:
    timeout_ms = int(timeout_seconds * 1000)
    synchronous = "FULL" if durable else "NORMAL"

    def set_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
        if immediate_transactions:
            # pysqlite must not emit its own BEGIN; the "begin" listener does.
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
        finally:
            cursor.close()

    return set_pragmas


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class _PerThread(Generic[_Held]):
    """One object per thread, opened on first use; `close_all` closes every thread's."""

    def __init__(self, open_one: Callable[[], _Held], close_one: Callable[[_Held], None]) -> None:
        self._open_one = open_one
        self._close_one = close_one
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[_Held] = []
        self._generation = 0

    def get(self) -> _Held:
        """Return this thread's object, opened on first use (after `close_all`, again)."""
        held: tuple[int, _Held] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == self._generation:
            return held[1]
        opened = self._open_one()
        with self._lock:
            self._opened.append(opened)
            self._local.held = (self._generation, opened)
        return opened

    def close_all(self) -> None:
        """Close every thread's object; each opens a new one when next used."""
        with self._lock:
            self._generation += 1
            opened, self._opened = self._opened, []
        for one in opened:
            self._close_one(one)


class ThreadSqliteConnections:
    """One sqlite3 connection per thread to a SQLite file, opened as the engine opens its own.

    For the one write on every hook call (the audit record): checking a connection out of the
    engine's pool and running the statement through SQLAlchemy's execution context cost more
    than SQLite's insert and commit. The connection is opened with the dialect's own connect
    arguments and the engine's pragmas (WAL, `synchronous=NORMAL`, `busy_timeout`), in
    autocommit mode so the caller's `BEGIN` and `COMMIT` are the only transaction.
    """

    def __init__(self, engine: Engine, *, timeout_seconds: float) -> None:
        self.dialect = engine.dialect
        self._connect_args = engine.dialect.create_connect_args(engine.url)
        self._pragmas = _sqlite_pragmas(
            timeout_seconds, durable=False, immediate_transactions=False
        )
        self._connections: _PerThread[sqlite3.Connection] = _PerThread(
            self._open, sqlite3.Connection.close
        )

    @classmethod
    def for_engine(
        cls, engine: Engine, *, timeout_seconds: float
    ) -> ThreadSqliteConnections | None:
        """Return the connections for a SQLite file; None for any other database."""
        if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
            return None
        if engine.url.query.get("uri") or engine.url.database.startswith("file:"):
            return None  # URI options (e.g. a shared in-memory database): the engine's way
        return cls(engine, timeout_seconds=timeout_seconds)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opened on first use (after `close`, again)."""
        return self._connections.get()

    def _open(self) -> sqlite3.Connection:
        args, kwargs = self._connect_args
        # The dialect's DB-API module (sqlite3) and arguments, as the engine's pool connects.
        connection: sqlite3.Connection = self.dialect.loaded_dbapi.connect(
            *args, **{**kwargs, "isolation_level": None}
        )
        try:
            self._pragmas(connection, None)
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        """Close every thread's connection; each opens a new one when next used."""
        self._connections.close_all()


class ThreadAutocommitConnections:
    """One engine connection per thread, held between uses, in autocommit mode (PostgreSQL).

    For the audit record's write: checking a connection out of the pool for each record cost a
    ping, and a transaction its `BEGIN` and `COMMIT`, each a round trip to the server (and under
    load a wait for the GIL again): six waits on the server in all, against two (one round
    trip) for an INSERT on a held connection in autocommit mode (0.17-0.27 against 0.38-0.61
    ms). A held connection is not pinged: when a statement finds the server closed it,
    SQLAlchemy invalidates it, and after a rollback the same `Connection` connects anew
    (`repository._insert_reconnecting`).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._connections: _PerThread[Connection] = _PerThread(
            self._engine.connect, Connection.close
        )

    @classmethod
    def for_engine(cls, engine: Engine) -> ThreadAutocommitConnections | None:
        """Return the connections for PostgreSQL; None for any other database."""
        return cls(engine) if engine.dialect.name == "postgresql" else None

    def connection(self) -> Connection:
        """Return this thread's connection, opened on first use (after `close`, again)."""
        return self._connections.get()

    def close(self) -> None:
        """Close every thread's connection; each opens a new one when next used."""
        self._connections.close_all()


class Database:
    """Engines and session factories for one database; `close()` releases pooled connections.

    Durable transactions have their own pool (created on first use): SQLite cannot change
    `synchronous` inside a transaction, and PostgreSQL's setting is per connection here.
    `thread_connections` (a SQLite file only, else None) and `autocommit_connections`
    (PostgreSQL only, else None) serve the audit record's write.
    """

    def __init__(self, url: str, *, timeout_seconds: float) -> None:
        self.url = url
        self.engine = create_database_engine(url, timeout_seconds=timeout_seconds)
        self._durable_engine = create_database_engine(
            url, timeout_seconds=timeout_seconds, durable=True
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._durable_sessions = sessionmaker(self._durable_engine, expire_on_commit=False)
        self.thread_connections = ThreadSqliteConnections.for_engine(
            self.engine, timeout_seconds=timeout_seconds
        )
        self.autocommit_connections = ThreadAutocommitConnections.for_engine(self.engine)

    @property
    def is_sqlite(self) -> bool:
        """Return True for a SQLite database."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Session]:
        """Yield a session in a transaction: committed on exit, rolled back on an error.

        `durable`: the commit returns only once it is on disk (see the module docstring).
        """
        sessions = self._durable_sessions if durable else self._sessions
        with sessions.begin() as session:
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session for reading; nothing is committed."""
        with self._sessions() as session:
            yield session

    def is_reachable(self) -> bool:
        """Return True when a trivial query succeeds within the configured timeout."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection (the database stays usable: it reconnects)."""
        if self.autocommit_connections is not None:
            self.autocommit_connections.close()  # back into the pool, then closed with it
        self.engine.dispose()
        self._durable_engine.dispose()
        if self.thread_connections is not None:
            self.thread_connections.close()

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
