"""Database fixtures: each storage test runs on SQLite and, when configured, on PostgreSQL.

`database_url` is parametrized: `sqlite` (a fresh file in tmp_path) always, `postgresql` when
MIPOMERSEN_CDS_TEST_DATABASE_URL points at a PostgreSQL server (skipped otherwise);
`postgresql_url` is the second alone. Each
PostgreSQL test gets its own schema (through `search_path`), dropped afterwards, so tests and
concurrent runs never see each other's rows. The URL is empty of tables: `database` migrates.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cds_service import create_app
from cds_service.records.storage import Database, upgrade
from cds_service.web.state import EXTENSION_NAME, ServiceState
from tests.conftest import AUTH_OFF

TEST_DATABASE_VARIABLE = "MIPOMERSEN_CDS_TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
    else:
        with _postgresql_schema() as url:
            yield url


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """Return the URL of a fresh PostgreSQL schema (skip without a test server)."""
    with _postgresql_schema() as url:
        yield url


@contextmanager
def _postgresql_schema() -> Iterator[str]:
    server = os.environ.get(TEST_DATABASE_VARIABLE)
    if not server:
        pytest.skip(f"{TEST_DATABASE_VARIABLE} is not set")
    server_url = make_url(server).set(drivername="postgresql+psycopg")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = server_url.update_query_dict({"options": f"-c search_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """Return the test database, migrated to the current schema."""
    upgrade(database_url)
    with Database(database_url, timeout_seconds=5) as opened:
        yield opened


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(database_url: str) -> Iterator[AppFactory]:
    """Return a factory of apps on the test database (migrated); every app is closed after."""
    apps: list[Flask] = []
    upgrade(database_url)

    def make(
        overrides: dict[str, str] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> Flask:
        settings = {**AUTH_OFF, "DATABASE_URL": database_url, **(overrides or {})}
        app = create_app(settings, environ={}, clock=clock, new_id=new_id)
        apps.append(app)
        return app

    yield make
    for app in apps:
        state(app).database.close()


def state(app: Flask) -> ServiceState:
    """Return the app's ServiceState (database, audit trail, settings)."""
    service_state: ServiceState = app.extensions[EXTENSION_NAME]
    return service_state


def dump(database: Database) -> str:
    """Return every row of every table in the database's schema as text (a whole-database dump)."""
    lines: list[str] = []
    with database.session() as session:
        if database.is_sqlite:
            connection = session.connection().connection.driver_connection
            assert connection is not None
            lines.extend(connection.iterdump())
        else:
            tables = session.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() ORDER BY table_name"
                )
            ).all()
            for table in tables:
                rows = session.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))
                lines.extend(f"{table}: {row}" for (row,) in rows)
    return "\n".join(lines)
