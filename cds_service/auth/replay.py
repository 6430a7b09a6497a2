"""The short-term store of JWT ids already used (CDS Hooks best practices § JWT, point 6).

A `jti` is remembered until its token expires (plus the clock leeway), so a replayed JWT is
refused while it would otherwise still be valid. The store must be shared by every gunicorn
worker: SQLite in the data directory (the default, nothing to run) or Redis (several hosts).
Keys are SHA-256 digests of issuer and jti, so their size is bounded whatever a client sends.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis

from cds_service.disk import free_space_problem
from cds_service.errors import ConfigurationError, ServiceUnavailable
from cds_service.settings import Settings

__all__ = ["RedisReplayStore", "ReplayStore", "SqliteReplayStore", "open_replay_store", "token_key"]

SQLITE_FILE_NAME = "jwt-replay.sqlite3"
REDIS_KEY_PREFIX = "mipomersen-cds:jti:"
_TIMEOUT_SECONDS = 2.0
# Expired keys are purged by the first call a second: a purge on every call would be one more
# write, and one more wait for the GIL, per hook call.
_PURGE_EVERY_SECONDS = 1.0
_UNAVAILABLE = "the JWT replay store is unavailable; retry later"


class ReplayStore(Protocol):
    """Remembers token keys until they expire."""

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record `key` until `expires_at` (epoch seconds); return False if it was recorded."""
        ...


def token_key(issuer: str, jti: str) -> str:
    """Return the store key of one token: jti values are unique per issuer only."""
    unambiguous = json.dumps([issuer, jti])  # ASCII even for lone surrogates
    return hashlib.sha256(unambiguous.encode()).hexdigest()


class SqliteReplayStore:
    """A replay store in one SQLite file (WAL), shared by the processes of one host."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._purged_at = -math.inf  # when this process last purged expired keys
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS used_jti"
                " (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID"
            )
            connection.execute(
                "CREATE INDEX IF NOT EXISTS used_jti_expiry ON used_jti (expires_at)"
            )

    def first_use(self, key: str, expires_at: float) -> bool:
        """Store `key`; a key already there and unexpired is a replay (expired keys are purged
        by the first call each second).

        Each statement is its own transaction, run whole while the thread has let go of the
        GIL: a transaction around purge and insert held the database's write lock while the
        thread waited to get the GIL back between them (up to the switch interval under load),
        and every other worker's write slept in SQLite's busy handler meanwhile. The purge only
        keeps the table small: the insert itself tells an expired key from a replay, so a key
        is judged alike whether a purge removed it yet or not.
        """
        now = self._clock()
        try:
            with self._connect() as connection:
                if now - self._purged_at >= _PURGE_EVERY_SECONDS or now < self._purged_at:
                    self._purged_at = now
                    connection.execute("DELETE FROM used_jti WHERE expires_at <= ?", (now,))
                cursor = connection.execute(
                    "INSERT INTO used_jti (key, expires_at) VALUES (?, ?) ON CONFLICT (key)"
                    " DO UPDATE SET expires_at = excluded.expires_at"
                    " WHERE used_jti.expires_at <= ?",  # only an expired key is used anew
                    (key, expires_at, now),
                )
                return cursor.rowcount == 1
        except sqlite3.Error as error:
            raise ServiceUnavailable(_UNAVAILABLE) from error

    def problem(self) -> str | None:
        """Return why the store cannot take writes now (for /readyz), or None."""
        try:
            with self._connect() as connection:
                connection.execute("BEGIN IMMEDIATE")  # rolled back on exit
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                connection.execute(f"PRAGMA user_version = {int(version)}")  # a write
        except sqlite3.Error as error:
            return "read-only" if "readonly" in str(error).replace("-", "") else "unreachable"
        return free_space_problem(self._path.resolve().parent)

    def count(self) -> int:
        """Return how many keys are stored (for tests and operators)."""
        with self._connect() as connection:
            (number,) = connection.execute("SELECT count(*) FROM used_jti").fetchone()
            return int(number)

    def _connect(self) -> _Connection:
        # One short-lived connection per call: safe with threads and forked workers alike.
        return _Connection(self._path)


class _Connection:
    """An autocommit SQLite connection that is closed (not just committed) on exit."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, timeout=_TIMEOUT_SECONDS, isolation_level=None)

    def __enter__(self) -> sqlite3.Connection:
        return self._connection

    def __exit__(self, *exc_info: object) -> None:
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")
        self._connection.close()


class RedisReplayStore:
    """A replay store in Redis (`SET key NX PX ttl`); Redis drops keys when they expire."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = REDIS_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    def first_use(self, key: str, expires_at: float) -> bool:
        """Set the key only if absent, with a time to live relative to now."""
        ttl_ms = max(1000, math.ceil((expires_at - self._clock()) * 1000))
        try:
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=ttl_ms))
        except redis.RedisError as error:
            raise ServiceUnavailable(_UNAVAILABLE) from error

    def problem(self) -> str | None:
        """Return why Redis cannot take writes now (for /readyz), or None."""
        try:
            self._client.set(self._prefix + "readiness-probe", b"1", px=1000)
        except redis.ReadOnlyError:
            return "read-only"
        except redis.RedisError:
            return "unreachable"
        return None


def open_replay_store(setting: str, data_dir: Path) -> ReplayStore:
    """Open the store `MIPOMERSEN_CDS_REPLAY_STORE` names: `sqlite`, or a Redis URL."""
    if setting == "sqlite":
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            return SqliteReplayStore(data_dir / SQLITE_FILE_NAME)
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(
                f"{Settings.variable('data_dir')}={str(data_dir)!r}: cannot keep the JWT replay "
                f"store there ({error})"
            ) from None
    try:
        client = redis.Redis.from_url(
            setting, socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
        )
    except ValueError:
        # The URL may hold a password: never quote it.
        raise ConfigurationError(
            f"{Settings.variable('replay_store')} is not a valid Redis URL"
        ) from None
    return RedisReplayStore(client)
