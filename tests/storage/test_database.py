"""Engines: SQLite in WAL mode with fsync on commit; bounded waits; instants kept in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from cds_service.records.storage import AuditRecord, Database, describe_database_error


def sqlite_pragmas(session: Session) -> dict[str, object]:
    names = ("journal_mode", "synchronous", "busy_timeout")
    return {name: session.execute(text(f"PRAGMA {name}")).scalar() for name in names}


def test_sqlite_uses_wal_waits_for_locks_and_fsyncs_only_durable_commits(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'cds.sqlite3'}", timeout_seconds=5)
    with database:
        with database.transaction() as session:
            ordinary = sqlite_pragmas(session)
        with database.transaction(durable=True) as session:
            durable = sqlite_pragmas(session)
    assert ordinary == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000}  # NORMAL
    assert durable == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 5000}  # FULL


def postgresql_settings(session: Session) -> tuple[object, ...]:
    names = ("statement_timeout", "application_name", "synchronous_commit")
    return tuple(session.execute(text(f"SHOW {name}")).scalar() for name in names)


@pytest.mark.postgres
def test_postgresql_times_out_names_itself_and_waits_only_for_durable_commits(
    postgresql_url: str,
) -> None:
    database = Database(postgresql_url, timeout_seconds=5)
    with database:
        with database.transaction() as session:
            ordinary = postgresql_settings(session)
        with database.transaction(durable=True) as session:
            durable = postgresql_settings(session)
    assert ordinary == ("5s", "mipomersen-cds", "off")
    assert durable == ("5s", "mipomersen-cds", "on")


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
