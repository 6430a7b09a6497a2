"""The two tables: one audit record per hook call, one row per feedback item (SQLAlchemy 2 ORM).

The schema itself is created by the Alembic migrations in `migrations/versions/`; a test proves
that they and these models describe the same schema. Records hold identifiers, versions, codes
and timings only: never a token, never a FHIR resource, never a lab value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Float, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint and index names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def iso_instant(moment: datetime) -> str:
    """Return an instant as RFC 3339 in UTC with `Z`, as exports and reports print it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# A 64-bit key on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Identifier = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored in UTC (`timestamptz` on PostgreSQL, text on SQLite).

    SQLite has no time zone type, so the instant is stored as naive UTC and read back as UTC;
    a naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime cannot be stored; give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class CardStatus(StrEnum):
    """Whether this server issued the card a feedback item is about."""

    ISSUED = "issued"  # by the service the feedback was sent to
    OTHER_SERVICE = "other-service"  # by another of this server's services
    UNKNOWN = "unknown"  # by no service here (or its audit record was not written)


class Base(DeclarativeBase):
    """Declarative base of the service's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class AuditRecord(Base):
    """What the service advised on one hook call, when, and on which data.

    `decision` is the decision kind (`none` when every test was current and normal) or NULL
    when no decision was made: mipomersen not involved, or the call was answered with an
    error (`status` and `issues` say which). `resources` lists the FHIR resources the decision
    used as `{"role", "type", "id", "version"}`; `data_sources` maps each prefetch key to
    `prefetch`, `null`, `fhir-server` or `absent`.
    """

    __tablename__ = "audit_record"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(index=True)  # the instant of the evaluation
    service_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)  # HTTP status of the answer
    hook: Mapped[str | None] = mapped_column(Text)  # as sent (a 400 may name any hook)
    hook_instance: Mapped[str | None] = mapped_column(Text)
    patient_reference: Mapped[str | None] = mapped_column(Text)  # as sent: Patient/<id>
    profile: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(128))
    card_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    suggestion_uuids: Mapped[list[Any]] = mapped_column(default=list)
    resources: Mapped[list[Any]] = mapped_column(default=list)
    data_sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    issues: Mapped[list[Any]] = mapped_column(default=list)  # errors: [{"code", "expression"}]
    duration_ms: Mapped[float] = mapped_column(Float)

    def to_json(self) -> dict[str, Any]:
        """Return the record as one line of `mipomersen-cds audit export` (every key, always)."""
        return {
            "time": iso_instant(self.recorded_at),
            "service": self.service_id,
            "status": self.status,
            "hook": self.hook,
            "hookInstance": self.hook_instance,
            "patient": self.patient_reference,
            "profile": self.profile,
            "decision": self.decision,
            "reason": self.reason,
            "rule": self.rule,
            "card": self.card_uuid,
            "suggestions": self.suggestion_uuids,
            "resources": self.resources,
            "dataSources": self.data_sources,
            "issues": self.issues,
            "durationMs": self.duration_ms,
        }


class FeedbackRecord(Base):
    """One feedback item a CDS client sent about a card (CDS Hooks 2.0.1 § Feedback).

    `card_status` is a `CardStatus`: whether this service issued the card. `fingerprint`
    identifies the item's content, so a repeated item is stored once.
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Identifier, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    service_id: Mapped[str] = mapped_column(String(64))
    card_uuid: Mapped[str] = mapped_column(String(36), index=True)
    card_status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime] = mapped_column()
    accepted_suggestions: Mapped[list[Any]] = mapped_column(default=list)
    override_system: Mapped[str | None] = mapped_column(Text)
    override_code: Mapped[str | None] = mapped_column(Text)
    override_display: Mapped[str | None] = mapped_column(Text)
    user_comment: Mapped[str | None] = mapped_column(Text)

    def to_json(self) -> dict[str, Any]:
        """Return the item as one line of `mipomersen-cds feedback export` (every key, always)."""
        reason = {"system": self.override_system, "code": self.override_code}
        if self.override_display is not None:
            reason["display"] = self.override_display
        override: dict[str, Any] | None = None
        if self.override_code is not None or self.user_comment is not None:
            override = {
                "reason": reason if self.override_code is not None else None,
                "userComment": self.user_comment,
            }
        return {
            "receivedAt": iso_instant(self.received_at),
            "service": self.service_id,
            "card": self.card_uuid,
            "cardStatus": self.card_status,
            "outcome": self.outcome,
            "outcomeTimestamp": iso_instant(self.outcome_timestamp),
            "acceptedSuggestions": [{"id": suggestion} for suggestion in self.accepted_suggestions],
            "overrideReason": override,
        }
