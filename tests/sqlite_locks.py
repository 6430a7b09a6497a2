"""Whether a SQLite write holds the database's lock past the statement that made it.

Back in Python after a statement, a thread may wait for the GIL for the whole switch interval
under load: a write lock still held then keeps every other writer, in any worker, sleeping in
SQLite's busy handler that long. `LockWatchingConnection` stands in for a connection and notes,
as each statement returns, whether another connection could take the write lock at once.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class LockWatchingConnection:
    """A sqlite3 connection that records, after each `execute`, whether the lock was free."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._connection = connection
        self._other = sqlite3.connect(path, isolation_level=None, timeout=0)
        self.lock_free_after: list[bool] = []

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        cursor = self._connection.execute(sql, parameters)
        try:
            self._other.execute("BEGIN IMMEDIATE")  # the write lock, or "database is locked"
            self._other.execute("ROLLBACK")
            self.lock_free_after.append(True)
        except sqlite3.OperationalError:
            self.lock_free_after.append(False)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def close_watcher(self) -> None:
        self._other.close()
