"""What `/readyz` checks: the database (writable), the JWT replay store and the metrics directory.

Each check returns `ok`, `not used`, or a short reason (`unreachable`, `read-only`,
`disk full`, `not writable`); the answer is 503 when any check gives a reason, and `failed`
names the checks that did. A full disk is a reason before the first write fails: below
`disk.MIN_FREE_BYTES` an audit record or a metrics page may no longer fit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cds_service.auth.replay import ReplayStore
from cds_service.disk import free_space_problem
from cds_service.records.storage import Database

__all__ = [
    "FINE",
    "database_check",
    "metrics_check",
    "replay_check",
]

OK = "ok"
NOT_USED = "not used"
FINE = frozenset({OK, NOT_USED})


def database_check(database: Database) -> str:
    """Return whether the database takes writes: a rolled-back write (SQLite), read-write mode."""
    try:
        if database.is_sqlite:
            _try_sqlite_write(database)
        else:
            with database.engine.connect() as connection:
                read_only = connection.exec_driver_sql(
                    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
                ).scalar()
            if read_only:
                return "read-only"
    except (SQLAlchemyError, sqlite3.Error) as error:
        return "read-only" if "readonly" in str(error).replace("-", "").lower() else "unreachable"
    if database.is_sqlite and database.engine.url.database:
        problem = free_space_problem(Path(database.engine.url.database).resolve().parent)
        if problem:
            return problem
    return OK


def _try_sqlite_write(database: Database) -> None:
    """Take the write lock and rewrite the header's user_version unchanged, then roll back."""
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        (version,) = cursor.execute("PRAGMA user_version").fetchone()
        cursor.execute(f"PRAGMA user_version = {int(version)}")  # fails on a read-only file
    finally:
        connection.rollback()
        connection.close()


def replay_check(store: ReplayStore | None) -> str:
    """Return whether the JWT replay store takes writes (`not used` with authentication off)."""
    if store is None:
        return NOT_USED
    problem = getattr(store, "problem", None)
    if problem is None:
        return OK
    found: str | None = problem()
    return found or OK


def metrics_check(environ: Mapping[str, str]) -> str:
    """Return whether the workers' metrics directory is there, writable and not full."""
    configured = environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not configured:
        return NOT_USED  # a single process keeps its metrics in memory
    directory = Path(configured)
    if not directory.is_dir():
        return "missing"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "not writable"
    return free_space_problem(directory) or OK
