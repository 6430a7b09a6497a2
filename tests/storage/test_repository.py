"""The queries behind feedback, exports, the report and purging, on every database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cds_service.records.storage import AuditRecord, CardStatus, Database
from cds_service.records.storage.repository import (
    AuditRecordWriter,
    audit_records,
    card_issuers,
    count_feedback_on_unknown_cards,
    feedback_records,
    insert_audit_record,
    insert_feedback,
    issued_cards_with_feedback,
    purge_before,
)
from tests.sqlite_locks import LockWatchingConnection

DAY = datetime(2026, 11, 23, 12, tzinfo=UTC)
CARD_A = "00000000-0000-4000-8000-00000000000a"
CARD_B = "00000000-0000-4000-8000-00000000000b"
CARD_C = "00000000-0000-4000-8000-00000000000c"


def issued(card: str | None, at: datetime, service: str = "mipomersen-order-sign") -> AuditRecord:
    return AuditRecord(
        recorded_at=at,
        service_id=service,
        status=200,
        profile="label",
        decision="withhold" if card else "none",
        rule="label-2.3-withhold-5x-uln" if card else None,
        card_uuid=card,
        duration_ms=2.0,
    )


def feedback(card: str, outcome: str, at: datetime, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "fingerprint": f"{card[-1]}-{outcome}-{at:%Y%m%d%H%M}",
        "received_at": at,
        "service_id": "mipomersen-order-sign",
        "card_uuid": card,
        "card_status": CardStatus.ISSUED.value,
        "outcome": outcome,
        "outcome_timestamp": at,
        "accepted_suggestions": [],
    }
    row.update(fields)
    return row


def add(database: Database, *records: AuditRecord) -> None:
    with database.transaction() as session:
        session.add_all(records)


def test_card_issuers_names_the_services_that_issued_each_card(database: Database) -> None:
    add(
        database,
        issued(CARD_A, DAY),
        issued(CARD_B, DAY, service="mipomersen-patient-view"),
        issued(None, DAY),
    )
    with database.session() as session:
        assert card_issuers(session, {CARD_A, CARD_B, CARD_C}) == {
            CARD_A: {"mipomersen-order-sign"},
            CARD_B: {"mipomersen-patient-view"},
        }
        assert card_issuers(session, set()) == {}


def test_insert_feedback_skips_fingerprints_already_stored(database: Database) -> None:
    first = feedback(CARD_A, "accepted", DAY)
    with database.transaction() as session:
        assert insert_feedback(session, [first]) == {first["fingerprint"]}
    second = feedback(CARD_A, "overridden", DAY)
    with database.transaction() as session:
        assert insert_feedback(session, [first, second]) == {second["fingerprint"]}
        assert insert_feedback(session, []) == set()
    with database.session() as session:
        assert [row.outcome for row in feedback_records(session)] == ["accepted", "overridden"]


def test_exports_run_oldest_first_from_since_on(database: Database) -> None:
    add(database, issued(CARD_B, DAY), issued(CARD_A, DAY - timedelta(days=2)))
    with database.transaction() as session:
        insert_feedback(session, [feedback(CARD_A, "accepted", DAY - timedelta(days=1))])
        insert_feedback(session, [feedback(CARD_B, "accepted", DAY)])
    with database.session() as session:
        assert [r.card_uuid for r in audit_records(session)] == [CARD_A, CARD_B]
        assert [r.card_uuid for r in audit_records(session, since=DAY)] == [CARD_B]
        assert [r.card_uuid for r in feedback_records(session)] == [CARD_A, CARD_B]
        assert [r.card_uuid for r in feedback_records(session, since=DAY)] == [CARD_B]


def test_issued_cards_come_with_each_feedback_item_or_alone(database: Database) -> None:
    add(database, issued(CARD_A, DAY), issued(CARD_B, DAY), issued(None, DAY))
    with database.transaction() as session:
        insert_feedback(
            session,
            [
                feedback(CARD_A, "overridden", DAY + timedelta(minutes=5)),
                feedback(CARD_A, "accepted", DAY + timedelta(minutes=1)),
                feedback(CARD_C, "accepted", DAY, card_status=CardStatus.UNKNOWN.value),
            ],
        )
    with database.session() as session:
        rows = [
            (row.card_uuid, row.feedback.outcome if row.feedback else None)
            for row in issued_cards_with_feedback(session)
        ]
        assert rows == [(CARD_A, "accepted"), (CARD_A, "overridden"), (CARD_B, None)]
        assert list(issued_cards_with_feedback(session, since=DAY + timedelta(days=1))) == []
        assert count_feedback_on_unknown_cards(session) == 1
        assert count_feedback_on_unknown_cards(session, since=DAY + timedelta(days=1)) == 0


def test_purge_removes_what_is_older_than_the_cutoff(database: Database) -> None:
    old, recent = DAY - timedelta(days=400), DAY - timedelta(days=1)
    add(database, issued(CARD_A, old), issued(CARD_B, recent))
    with database.transaction() as session:
        insert_feedback(session, [feedback(CARD_A, "accepted", old)])
        insert_feedback(session, [feedback(CARD_B, "accepted", recent)])
    with database.transaction() as session:
        purged = purge_before(session, DAY - timedelta(days=365))
    assert (purged.audit_records, purged.feedback) == (1, 1)
    with database.session() as session:
        assert [r.card_uuid for r in audit_records(session)] == [CARD_B]
        assert [r.card_uuid for r in feedback_records(session)] == [CARD_B]


EASTERN = timezone(-timedelta(hours=5))
AUDIT_ROWS = {
    "a card with suggestions and evidence": {
        "recorded_at": DAY,
        "service_id": "mipomersen-order-sign",
        "status": 200,
        "hook": "order-sign",
        "hook_instance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "patient_reference": "Patient/example",
        "profile": "label",
        "decision": "withhold",
        "reason": "alt-ast-5x-uln",
        "rule": "label-2.3-withhold-5x-uln",
        "card_uuid": CARD_A,
        "suggestion_uuids": [CARD_B, CARD_C],
        "resources": [{"role": "deciding", "type": "Observation", "id": "alt", "version": "2"}],
        "data_sources": {"liverLabs": "prefetch", "patient": "fhir-server"},
        "issues": [],
        "duration_ms": 12.345,
    },
    "a refused call: no decision, issues, text outside ASCII, another time zone": {
        "recorded_at": datetime(
            2026, 11, 23, 7, 30, 0, 123456, tzinfo=timezone(-timedelta(hours=5))
        ),
        "service_id": "mipomersen-patient-view",
        "status": 400,
        "hook": "patient-view \N{REPLACEMENT CHARACTER} é 漢",
        "hook_instance": None,
        "patient_reference": None,
        "profile": "conservative",
        "decision": None,
        "reason": None,
        "rule": None,
        "card_uuid": None,
        "suggestion_uuids": [],
        "resources": [],
        "data_sources": {},
        "issues": [{"code": "invalid", "expression": ["context.patientId"]}],
        "duration_ms": 0.0,
    },
}


@pytest.mark.parametrize("values", AUDIT_ROWS.values(), ids=AUDIT_ROWS.keys())
def test_the_audit_writer_stores_what_the_engines_insert_stores(
    database: Database, values: dict[str, Any]
) -> None:
    written = AuditRecordWriter(database).insert(values)
    with database.engine.begin() as connection:
        inserted = insert_audit_record(connection, values)
        rows = {
            row[0]: row[1:]
            for row in connection.exec_driver_sql("SELECT * FROM audit_record").fetchall()
        }
    assert rows.keys() == {written, inserted}
    assert rows[written] == rows[inserted]


def test_the_audit_writer_commits_from_every_thread_and_after_close(database: Database) -> None:
    writer = AuditRecordWriter(database)
    values = AUDIT_ROWS["a card with suggestions and evidence"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(lambda _: writer.insert(values), range(40)))
    database.close()
    ids.add(writer.insert(values))
    with database.session() as session:
        stored = {record.id for record in audit_records(session)}
    assert stored == ids
    assert len(ids) == 41


def test_the_audit_write_holds_no_lock_once_its_statement_returns(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections = database.thread_connections
    if connections is None:
        pytest.skip("a SQLite file only: other databases write through the engine")
    path = database.engine.url.database
    assert path is not None
    watched = LockWatchingConnection(connections.connection(), path)
    monkeypatch.setattr(connections, "connection", lambda: watched)
    written = AuditRecordWriter(database).insert(AUDIT_ROWS["a card with suggestions and evidence"])
    watched.close_watcher()
    assert watched.lock_free_after == [True]
    with database.session() as session:
        assert [record.id for record in audit_records(session)] == [written]


def test_a_held_postgresql_connection_the_server_closed_is_replaced_and_the_record_kept(
    database: Database,
) -> None:
    connections = database.autocommit_connections
    if connections is None:
        pytest.skip("PostgreSQL only: other databases are not held open between records")
    writer = AuditRecordWriter(database)
    values = AUDIT_ROWS["a card with suggestions and evidence"]
    first = writer.insert(values)
    backend = connections.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    with database.engine.begin() as admin:  # as a server restart would
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(backend)})")
    second = writer.insert(values)
    assert connections.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != (
        backend
    )
    with database.session() as session:
        assert [record.id for record in audit_records(session)] == [first, second]
