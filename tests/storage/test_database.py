"""Engines: SQLite in WAL mode with fsync on commit; bounded waits; instants kept in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from cds_service.storage import AuditRecord, Database, describe_database_error


def test_sqlite_connections_use_wal_fsync_on_commit_and_wait_for_locks(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'cds.sqlite3'}", timeout_seconds=5)
    with database, database.session() as session:
        pragmas = {
            name: session.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000}  # 2: FULL


@pytest.mark.postgres
def test_postgresql_statements_time_out_and_name_the_application(postgresql_url: str) -> None:
    database = Database(postgresql_url, timeout_seconds=5)
    with database, database.session() as session:
        timeout = session.execute(text("SHOW statement_timeout")).scalar()
        application = session.execute(text("SHOW application_name")).scalar()
    assert (timeout, application) == ("5s", "mipomersen-cds")


def audit_record(**fields: object) -> AuditRecord:
    values: dict[str, object] = {
        "recorded_at": datetime(2026, 11, 23, 12, tzinfo=UTC),
        "service_id": "mipomersen-order-sign",
        "status": 200,
        "profile": "label",
        "duration_ms": 1.5,
    }
    values.update(fields)
    return AuditRecord(**values)


def test_instants_come_back_in_utc_whatever_zone_they_were_given_in(database: Database) -> None:
    eastern = datetime(2026, 11, 23, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    with database.transaction() as session:
        session.add(audit_record(recorded_at=eastern))
    with database.session() as session:
        stored = session.scalars(select(AuditRecord.recorded_at)).one()
    assert stored == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert stored.tzinfo is UTC


def test_a_naive_instant_is_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), database.transaction() as session:
        session.add(audit_record(recorded_at=datetime(2026, 11, 23, 12)))


def test_empty_lists_are_the_defaults(database: Database) -> None:
    with database.transaction() as session:
        session.add(audit_record())
    with database.session() as session:
        record = session.scalars(select(AuditRecord)).one()
    assert (record.suggestion_uuids, record.resources, record.issues) == ([], [], [])
    assert record.data_sources == {}


def test_repr_hides_the_password() -> None:
    with Database("postgresql+psycopg://cds:hunter2@db.example.org/cds", timeout_seconds=1) as db:
        assert "hunter2" not in repr(db)
        assert "db.example.org" in repr(db)


@pytest.mark.parametrize(
    ("error", "described"),
    [
        pytest.param(
            OperationalError(
                "INSERT ...", {"patient": "Patient/p1"}, Exception("database is locked")
            ),
            "OperationalError: database is locked",
            id="lock-keeps-the-driver-message",
        ),
        pytest.param(
            IntegrityError(
                "INSERT ...",
                {"patient": "Patient/p1"},
                Exception("duplicate key\nDETAIL: Key (patient)=(Patient/p1) already exists"),
            ),
            "IntegrityError",
            id="row-values-never",
        ),
        pytest.param(RuntimeError("Patient/p1"), "RuntimeError", id="other-errors-by-class"),
    ],
)
def test_database_errors_are_described_without_data(error: Exception, described: str) -> None:
    assert describe_database_error(error) == described
