"""The queries the service and the CLI run; each takes a session inside the caller's transaction."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from cds_service.records.storage.database import Database, ThreadAutocommitConnections
from cds_service.records.storage.models import AuditRecord, CardStatus, FeedbackRecord

_STREAM_BATCH = 500
# Built once: constructing the statement cost a hook call more than executing it from the cache.
_INSERT_AUDIT_RECORD = insert(AuditRecord).returning(AuditRecord.id)


def insert_audit_record(connection: Connection, values: Mapping[str, Any]) -> int:
    """Insert one audit record (column name -> value) with a single Core INSERT; return its id.

    It runs on every hook call, so it skips the ORM's unit of work (a third of the cost).
    """
    inserted = connection.execute(_INSERT_AUDIT_RECORD, dict(values))
    return int(inserted.scalar_one())


class AuditRecordWriter:
    """Writes one audit record in its own transaction, committed on return; returns its id.

    PostgreSQL: `insert_audit_record` on this thread's held connection in autocommit mode
    (`ThreadAutocommitConnections`), so the INSERT is its own transaction and one round trip.
    One found closed (the server restarted since it was last used) is replaced and the record
    written on the new one, as a ping before use would. Any other database but a SQLite file:
    `insert_audit_record` in `engine.begin()`.
    A SQLite file: the same INSERT without `RETURNING`, compiled once by SQLAlchemy for the
    dialect, its values converted by the columns' own bind processors (so every column holds
    what SQLAlchemy would store), run on this thread's own connection as one autocommitted
    statement; the id is the connection's last rowid (`id` is the table's INTEGER PRIMARY KEY,
    an alias of the rowid). A failure is rolled back and raised as the `SQLAlchemyError` the
    engine would raise.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._connections = database.thread_connections
        self._autocommit = database.autocommit_connections
        dialect = database.engine.dialect
        columns = [column for column in AuditRecord.__table__.columns if not column.primary_key]
        # No RETURNING: SQLite would keep the statement, and so its transaction and the
        # database's write lock, open until the row was fetched, after the thread had waited
        # to get the GIL back (up to the switch interval under load). Every other writer, in
        # this worker or another, slept in the busy handler meanwhile: 15 % of 2 cores sat
        # idle at 16 clients. A plain INSERT commits within the one call that runs without
        # the GIL, so the lock is held only while SQLite works.
        compiled = insert(AuditRecord).compile(
            dialect=dialect, column_keys=[column.key for column in columns]
        )
        processors = {
            column.key: column.type.dialect_impl(dialect).bind_processor(dialect)
            for column in columns
        }
        self._sql = compiled.string
        self._parameters = [(key, processors[key]) for key in compiled.positiontup or ()]

    def insert(self, values: Mapping[str, Any]) -> int:
        """Insert the record (every column but `id`, by name) and commit; return its id."""
        if self._autocommit is not None:
            return _insert_autocommitted(self._autocommit, values)
        if self._connections is None:
            with self._database.engine.begin() as connection:
                return insert_audit_record(connection, values)
        parameters = tuple(
            values[key] if process is None else process(values[key])
            for key, process in self._parameters
        )
        own = self._connections.connection()
        try:
            # The connection is in autocommit mode: the INSERT is its own transaction, committed
            # before `execute` returns. One statement, not BEGIN, INSERT and COMMIT: each gives
            # up the GIL, and under load a thread waits for it again each time (up to the
            # switch interval, `cds_service.cli.serve`) while holding a request.
            row_id = own.execute(self._sql, parameters).lastrowid
        except sqlite3.Error as error:
            if own.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                    own.execute("ROLLBACK")
            raise DBAPIError.instance(
                self._sql,
                parameters,
                error,
                sqlite3.Error,
                hide_parameters=True,
                dialect=self._connections.dialect,
            ) from error
        assert row_id is not None, "sqlite3 sets lastrowid on every INSERT that succeeds"
        return row_id


def _insert_autocommitted(
    connections: ThreadAutocommitConnections, values: Mapping[str, Any]
) -> int:
    """`insert_audit_record` on this thread's held connection in autocommit mode."""
    connection = connections.connection()
    try:
        row_id = _insert_reconnecting(connection, values)
    except BaseException:
        with contextlib.suppress(SQLAlchemyError):  # the first error is the one to tell
            connection.rollback()  # SQLAlchemy's own transaction state: the next starts clean
        raise
    connection.commit()  # ends SQLAlchemy's own transaction: the server has committed already
    return row_id


def _insert_reconnecting(connection: Connection, values: Mapping[str, Any]) -> int:
    try:
        return insert_audit_record(connection, values)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    # The server closed the connection since its last use (a restart, an idle timeout), so
    # the INSERT reached no live session: it is written again, on a new connection. (Were the
    # connection lost between the commit and its answer, the record would be written twice:
    # twice rather than never.)
    connection.rollback()  # after which the held connection connects anew
    return insert_audit_record(connection, values)


def card_issuers(session: Session, card_uuids: Collection[str]) -> dict[str, set[str]]:
    """Return, for each card uuid this server issued, the ids of the services that issued it."""
    issuers: dict[str, set[str]] = {}
    if not card_uuids:
        return issuers
    query = select(AuditRecord.card_uuid, AuditRecord.service_id).where(
        AuditRecord.card_uuid.in_(sorted(card_uuids))
    )
    for card_uuid, service_id in session.execute(query):
        issuers.setdefault(cast(str, card_uuid), set()).add(service_id)
    return issuers


def insert_feedback(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert feedback rows, skipping fingerprints already stored; return those inserted.

    `INSERT ... ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint`, so two clients
    repeating the same item at the same moment still store it once; SQLAlchemy sends the rows
    in batches that stay within each database's limit on parameters.
    """
    if not rows:
        return set()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(FeedbackRecord)
        .on_conflict_do_nothing(index_elements=[FeedbackRecord.fingerprint])
        .returning(FeedbackRecord.fingerprint)
    )
    return set(session.scalars(statement, [dict(row) for row in rows]))


def audit_records(session: Session, *, since: datetime | None = None) -> Iterator[AuditRecord]:
    """Yield audit records oldest first, from `since` on when given."""
    query = select(AuditRecord).order_by(AuditRecord.recorded_at, AuditRecord.id)
    if since is not None:
        query = query.where(AuditRecord.recorded_at >= since)
    yield from session.scalars(query.execution_options(yield_per=_STREAM_BATCH))


def feedback_records(
    session: Session, *, since: datetime | None = None
) -> Iterator[FeedbackRecord]:
    """Yield feedback in the order it was received, from `since` (time received) on."""
    query = select(FeedbackRecord).order_by(FeedbackRecord.received_at, FeedbackRecord.id)
    if since is not None:
        query = query.where(FeedbackRecord.received_at >= since)
    yield from session.scalars(query.execution_options(yield_per=_STREAM_BATCH))


@dataclass(frozen=True, slots=True)
class CardFeedback:
    """A card the service issued and one feedback item about it (None: no feedback)."""

    card_uuid: str
    decision: str | None
    rule: str | None
    feedback: FeedbackRecord | None


def issued_cards_with_feedback(
    session: Session, *, since: datetime | None = None
) -> Iterator[CardFeedback]:
    """Yield each card issued (from `since` on) once per feedback item about it, or once alone."""
    query = (
        select(AuditRecord.card_uuid, AuditRecord.decision, AuditRecord.rule, FeedbackRecord)
        .outerjoin(FeedbackRecord, FeedbackRecord.card_uuid == AuditRecord.card_uuid)
        .where(AuditRecord.card_uuid.is_not(None))
        .order_by(AuditRecord.id, FeedbackRecord.outcome_timestamp, FeedbackRecord.id)
    )
    if since is not None:
        query = query.where(AuditRecord.recorded_at >= since)
    for card_uuid, decision, rule, feedback in session.execute(
        query.execution_options(yield_per=_STREAM_BATCH)
    ):
        yield CardFeedback(cast(str, card_uuid), decision, rule, feedback)


def count_feedback_on_unknown_cards(session: Session, *, since: datetime | None = None) -> int:
    """Return how many feedback items name a card no audit record holds."""
    query = (
        select(func.count())
        .select_from(FeedbackRecord)
        .where(FeedbackRecord.card_status == CardStatus.UNKNOWN)
    )
    if since is not None:
        query = query.where(FeedbackRecord.received_at >= since)
    return session.scalar(query) or 0


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows a purge removed."""

    audit_records: int
    feedback: int


def purge_before(session: Session, cutoff: datetime) -> Purged:
    """Delete audit records made, and feedback received, before `cutoff`."""
    audit = session.execute(delete(AuditRecord).where(AuditRecord.recorded_at < cutoff))
    feedback = session.execute(delete(FeedbackRecord).where(FeedbackRecord.received_at < cutoff))
    return Purged(audit_records=audit.rowcount, feedback=feedback.rowcount)  # type: ignore[attr-defined]
