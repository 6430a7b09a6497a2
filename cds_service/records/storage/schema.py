"""Bring a database to the schema this version needs, with the Alembic migrations it ships.

SQLite (the embedded default) is upgraded automatically by `mipomersen-cds serve` and by
`create_app`: the migration runs in a `BEGIN IMMEDIATE` transaction, so gunicorn workers that
start together upgrade one after the other. PostgreSQL is upgraded explicitly, once per release,
with `mipomersen-cds db upgrade` (an advisory lock serialises concurrent runs); the service
checks at start-up that the schema is current and refuses to start otherwise, so no instance
writes to a schema it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cds_service.errors import ConfigurationError
from cds_service.records.storage.database import (
    Database,
    create_database_engine,
    describe_database_error,
    is_sqlite,
)
from cds_service.settings import Settings

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Long enough for another process's migration to finish; migrations take milliseconds.
MIGRATION_LOCK_TIMEOUT_SECONDS = 60.0
# Any constant works; it only has to be the same for every instance of the service.
POSTGRESQL_MIGRATION_LOCK = 0x6D69706F  # "mipo"


def open_database(url: str, *, timeout_seconds: float, tolerate_outage: bool = False) -> Database:
    """Return the database at `url`, its schema current: SQLite upgraded, PostgreSQL checked.

    A SQLite file that cannot be created or migrated raises `ConfigurationError`, and so does a
    PostgreSQL schema that is not current. An unreachable PostgreSQL raises the driver's error,
    unless `tolerate_outage` (the web service): it must answer hook calls during a database
    outage, so the problem is logged and every write fails, and is counted, until it is back.
    """
    if is_sqlite(url):
        try:
            upgrade(url)
        except CommandError as error:  # e.g. a revision of a newer version of the service
            raise ConfigurationError(f"cannot migrate the SQLite database: {error}") from None
        except (OSError, SQLAlchemyError) as error:
            raise ConfigurationError(
                "cannot create or migrate the SQLite database "
                f"({Settings.variable('data_dir')}, {Settings.variable('database_url')}): "
                f"{describe_database_error(error)}"
            ) from None
    else:
        try:
            check_current(url, timeout_seconds=timeout_seconds)
        except SQLAlchemyError as error:
            if not tolerate_outage:
                raise
            logger.error(
                "database unreachable at start-up (%s); cards are still returned, audit records "
                "and feedback fail until it is back",
                describe_database_error(error),
            )
    return Database(url, timeout_seconds=timeout_seconds)


def alembic_config() -> Config:
    """Return an Alembic configuration for the shipped migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@cache
def head_revision() -> str:
    """Return the revision this version of the service needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migration"
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the database's revision, None for a database without the service's tables."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (creating a SQLite file's directory)."""
    with _migration_connection(url) as connection:
        if revision == "head" and current_revision(connection) == head_revision():
            return  # the usual start-up: nothing to do, no migration script loaded
        command.upgrade(_config_for(connection), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` (`base` removes every table)."""
    with _migration_connection(url) as connection:
        command.downgrade(_config_for(connection), revision)


def check_current(url: str, *, timeout_seconds: float) -> None:
    """Raise `ConfigurationError` unless the database at `url` is at `head_revision()`."""
    engine = create_database_engine(url, timeout_seconds=timeout_seconds)
    try:
        with engine.connect() as connection:
            found = current_revision(connection)
    finally:
        engine.dispose()
    if found != head_revision():
        raise ConfigurationError(
            f"the database schema is at revision {found or '(none)'}, this version needs "
            f"{head_revision()}: run `mipomersen-cds db upgrade` once, then start the service"
        )


@contextmanager
def _migration_connection(url: str) -> Iterator[Connection]:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_database_engine(
        parsed,
        timeout_seconds=MIGRATION_LOCK_TIMEOUT_SECONDS,
        durable=True,
        immediate_transactions=True,
    )
    try:
        with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE takes the write lock
            if connection.dialect.name == "postgresql":
                # Instances upgrading at once: the others wait here, then find it current.
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": POSTGRESQL_MIGRATION_LOCK})
            yield connection
    finally:
        engine.dispose()


def _config_for(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection  # env.py migrates on this connection
    return config
