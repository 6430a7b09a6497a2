"""The Alembic migrations build exactly the models' schema, on every supported database."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from cds_service.errors import ConfigurationError
from cds_service.records.storage import head_revision, open_database, upgrade
from cds_service.records.storage.models import Base
from cds_service.records.storage.schema import check_current, current_revision, downgrade


def schema_differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def test_migrations_build_the_schema_of_the_models(database_url: str) -> None:
    upgrade(database_url)
    assert schema_differences(database_url) == []
    assert revision(database_url) == head_revision()
    assert tables(database_url) == {"alembic_version", "audit_record", "feedback"}


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    database_url: str,
) -> None:
    upgrade(database_url)
    downgrade(database_url, "base")
    assert tables(database_url) == {"alembic_version"}
    assert revision(database_url) is None
    upgrade(database_url)
    assert schema_differences(database_url) == []


def test_upgrade_twice_changes_nothing(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    assert revision(database_url) == head_revision()


@pytest.mark.slow  # spawned processes
def test_workers_starting_together_migrate_one_after_the_other(database_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")  # like gunicorn workers: separate processes
    with ProcessPoolExecutor(max_workers=3, mp_context=spawn) as workers:
        list(workers.map(upgrade, [database_url] * 3))
    assert schema_differences(database_url) == []
    assert revision(database_url) == head_revision()


def test_sqlite_database_and_its_directory_are_created_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'cds.sqlite3'}"
    with open_database(url, timeout_seconds=1):
        pass
    assert (tmp_path / "new" / "dir" / "cds.sqlite3").is_file()
    assert revision(url) == head_revision()


def test_unusable_sqlite_location_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigurationError, match="MIPOMERSEN_CDS_DATA_DIR"):
        open_database(f"sqlite:///{tmp_path / 'file' / 'cds.sqlite3'}", timeout_seconds=1)


@pytest.mark.postgres
def test_postgresql_is_never_migrated_implicitly(postgresql_url: str) -> None:
    with pytest.raises(ConfigurationError, match="mipomersen-cds db upgrade"):
        open_database(postgresql_url, timeout_seconds=2)
    assert "audit_record" not in tables(postgresql_url)
    upgrade(postgresql_url)
    check_current(postgresql_url, timeout_seconds=2)
    with open_database(postgresql_url, timeout_seconds=2):
        pass


def test_database_of_a_newer_version_stops_start_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="0099"):
        open_database(url, timeout_seconds=1)


def test_unreachable_postgresql_stops_a_command() -> None:
    with pytest.raises(OperationalError):
        open_database("postgresql+psycopg://cds:hunter2@127.0.0.1:1/cds", timeout_seconds=1)


def test_unreachable_postgresql_does_not_stop_the_service(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql+psycopg://cds:hunter2@127.0.0.1:1/cds"
    with open_database(url, timeout_seconds=1, tolerate_outage=True) as database:
        assert not database.is_sqlite
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.startswith("database unreachable at start-up (OperationalError: ")
    assert "hunter2" not in message
