"""Feedback on cards (CDS Hooks 2.0.1 § Feedback): check every item, store each one once.

A CDS client POSTs `{"feedback": [...]}` to `/cds-services/{id}/feedback` when a clinician
accepts a card's suggestions or overrides the card. Each item is checked against the spec and
the HL7 CDSHooksFeedback logical model (cds-fb-2: `acceptedSuggestions` when accepted; cds-fb-3:
an `overrideReason` has a `reason`, a `userComment` or both). Two choices the spec leaves open:

- an `overridden` item must not list accepted suggestions, and an `accepted` one must not carry
  an override reason: the spec describes them as exclusive ("an entire card is either ignored
  or overridden");
- `outcomeTimestamp` may carry any RFC 3339 offset, not only `Z`; it is stored in UTC.

Every problem in the body is reported at once, each with its dotted path. Feedback about a
card this server did not issue is stored and flagged, never refused: the card's audit record
may be missing because of a database outage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cds_service.errors import BadRequest, InvalidFields, ServiceUnavailable
from cds_service.records.storage import CardStatus, Database, describe_database_error
from cds_service.records.storage.repository import card_issuers, insert_feedback

logger = logging.getLogger(__name__)

# RFC 3339 § 5.6 date-time: full date, full time, an offset (Z or ±hh:mm) and nothing else.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


class Outcome(StrEnum):
    """What the clinician did with a card."""

    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"


@dataclass(frozen=True, slots=True)
class OverrideReason:
    """Why a card was overridden: a Coding chosen from the card's list, a comment, or both."""

    system: str | None = None
    code: str | None = None
    display: str | None = None
    user_comment: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """One valid feedback item."""

    card: str
    outcome: Outcome
    outcome_timestamp: datetime  # UTC
    accepted_suggestions: tuple[str, ...] = ()
    override_reason: OverrideReason | None = None

    def fingerprint(self, service_id: str) -> str:
        """Return a digest of what the item says, so that the same item is stored once."""
        reason = self.override_reason or OverrideReason()
        content = [
            service_id,
            self.card,
            self.outcome.value,
            self.outcome_timestamp.isoformat(),
            sorted(set(self.accepted_suggestions)),
            [reason.system, reason.code, reason.display, reason.user_comment],
        ]
        canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """What became of one item: newly stored or a repeat, and whether the card is known."""

    card: str
    stored: bool  # False: the same item had been stored before
    card_status: CardStatus

    def to_json(self) -> dict[str, str]:
        """Return the item's entry in the feedback response."""
        return {
            "card": self.card,
            "result": "stored" if self.stored else "duplicate",
            "cardStatus": self.card_status.value,
        }


def parse_feedback(body: Any) -> tuple[FeedbackItem, ...]:
    """Return the feedback items of a decoded request body, or raise naming every problem."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with a feedback array")
    problems: list[tuple[str, str]] = []
    items = body.get("feedback")
    parsed: list[FeedbackItem | None] = []
    if items is None:
        problems.append(("feedback", "feedback is required"))
    elif not isinstance(items, list):
        problems.append(("feedback", "feedback must be an array of feedback items"))
    else:
        parsed = [_item(value, f"feedback[{index}]", problems) for index, value in enumerate(items)]
    if problems:
        raise InvalidFields(problems)
    return tuple(item for item in parsed if item is not None)


def _item(value: Any, path: str, problems: list[tuple[str, str]]) -> FeedbackItem | None:
    if not isinstance(value, dict):
        problems.append((path, f"{path} must be a JSON object"))
        return None
    found = len(problems)
    card = _uuid(value, "card", f"{path}.card", "the card's uuid", problems)
    outcome = _outcome(value.get("outcome"), f"{path}.outcome", problems)
    suggestions = _accepted_suggestions(value, outcome, f"{path}.acceptedSuggestions", problems)
    reason = _override_reason(value, outcome, f"{path}.overrideReason", problems)
    timestamp = _timestamp(value.get("outcomeTimestamp"), f"{path}.outcomeTimestamp", problems)
    if len(problems) > found or card is None or outcome is None or timestamp is None:
        return None
    return FeedbackItem(card, outcome, timestamp, suggestions, reason)


def _uuid(
    container: dict[str, Any], key: str, path: str, what: str, problems: list[tuple[str, str]]
) -> str | None:
    value = container.get(key)
    if value is None:
        problems.append((path, f"{path} is required: {what}"))
    elif not _is_uuid(value):
        problems.append((path, f"{path} must be {what}, e.g. 4e0a3a1e-3283-4575-ab82-028d55fe2719"))
    else:
        return str(value).lower()
    return None


def _is_uuid(value: Any) -> bool:
    """Return True for a UUID in its 36-character hyphenated form (any version)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _outcome(value: Any, path: str, problems: list[tuple[str, str]]) -> Outcome | None:
    if value is None:
        problems.append((path, f"{path} is required: accepted or overridden"))
        return None
    try:
        return Outcome(value)
    except ValueError:
        problems.append((path, f"{path} must be accepted or overridden"))
        return None


def _accepted_suggestions(
    item: dict[str, Any], outcome: Outcome | None, path: str, problems: list[tuple[str, str]]
) -> tuple[str, ...]:
    value = item.get("acceptedSuggestions")
    if value is None or value == []:
        if outcome is Outcome.ACCEPTED:
            problems.append((path, f"{path} is required when outcome is accepted"))
        return ()
    if not isinstance(value, list):
        problems.append((path, f'{path} must be an array of {{"id": <suggestion uuid>}}'))
        return ()
    if outcome is Outcome.OVERRIDDEN:
        problems.append((path, f"{path} must be absent when outcome is overridden"))
        return ()
    ids: list[str] = []
    for index, suggestion in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(suggestion, dict):
            problems.append((where, f"{where} must be an object with the suggestion's id"))
            continue
        accepted = _uuid(suggestion, "id", f"{where}.id", "the suggestion's uuid", problems)
        if accepted is not None:
            ids.append(accepted)
    return tuple(ids)


def _override_reason(
    item: dict[str, Any], outcome: Outcome | None, path: str, problems: list[tuple[str, str]]
) -> OverrideReason | None:
    value = item.get("overrideReason")
    if value is None:
        return None
    if outcome is Outcome.ACCEPTED:
        problems.append((path, f"{path} is only allowed when outcome is overridden"))
        return None
    if not isinstance(value, dict):
        problems.append((path, f"{path} must be an object with a reason and/or a userComment"))
        return None
    comment = _optional_text(value, "userComment", f"{path}.userComment", problems)
    coding = value.get("reason")
    if coding is None:
        if "userComment" not in value:
            problems.append((path, f"{path} must have a reason, a userComment or both"))
        return OverrideReason(user_comment=comment)
    where = f"{path}.reason"
    if not isinstance(coding, dict):
        problems.append((where, f"{where} must be a Coding with system and code"))
        return None
    return OverrideReason(
        system=_required_text(coding, "system", f"{where}.system", problems),
        code=_required_text(coding, "code", f"{where}.code", problems),
        display=_optional_text(coding, "display", f"{where}.display", problems),
        user_comment=comment,
    )


def _required_text(
    container: dict[str, Any], key: str, path: str, problems: list[tuple[str, str]]
) -> str | None:
    if container.get(key) is None:
        problems.append((path, f"{path} is required"))
        return None
    return _optional_text(container, key, path, problems)


def _optional_text(
    container: dict[str, Any], key: str, path: str, problems: list[tuple[str, str]]
) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append((path, f"{path} must be a non-empty string"))
        return None
    if "\x00" in value:  # valid JSON, but no database text type can store it
        problems.append((path, f"{path} must not contain the NUL character"))
        return None
    return value


def _timestamp(value: Any, path: str, problems: list[tuple[str, str]]) -> datetime | None:
    example = "e.g. 2021-12-11T10:05:31Z"
    if value is None:
        problems.append((path, f"{path} is required: when the clinician acted, {example}"))
        return None
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper()).astimezone(UTC)
        except ValueError:
            pass  # e.g. month 13 or a leap second: reported below
        except OverflowError:  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
            problems.append((path, f"{path} is outside years 0001-9999 once converted to UTC"))
            return None
    problems.append((path, f"{path} must be an RFC 3339 date-time with a time zone, {example}"))
    return None


def store_feedback(
    database: Database,
    service_id: str,
    items: Sequence[FeedbackItem],
    *,
    received_at: datetime,
) -> list[FeedbackReceipt]:
    """Store each item once, in one transaction; on return every item is committed.

    Raise `ServiceUnavailable` when the database fails: then nothing was stored, and the
    client may send the same body again.
    """
    fingerprints = [item.fingerprint(service_id) for item in items]
    try:
        with database.transaction(durable=True) as session:
            issuers = card_issuers(session, {item.card for item in items})
            statuses = [_card_status(issuers.get(item.card, set()), service_id) for item in items]
            rows = {
                fingerprint: _row(item, fingerprint, status, service_id, received_at)
                for item, fingerprint, status in zip(items, fingerprints, statuses, strict=True)
            }
            inserted = insert_feedback(session, list(rows.values()))
    except SQLAlchemyError as error:
        logger.error("feedback not stored: %s", describe_database_error(error))
        raise ServiceUnavailable(
            "feedback was not stored because the database is unavailable; send it again"
        ) from None
    receipts = []
    for item, fingerprint, status in zip(items, fingerprints, statuses, strict=True):
        receipts.append(FeedbackReceipt(item.card, fingerprint in inserted, status))
        inserted.discard(fingerprint)  # the same item twice in one body: the second is a repeat
    return receipts


def _card_status(issuers: set[str], service_id: str) -> CardStatus:
    if service_id in issuers:
        return CardStatus.ISSUED
    return CardStatus.OTHER_SERVICE if issuers else CardStatus.UNKNOWN


def _row(
    item: FeedbackItem,
    fingerprint: str,
    status: CardStatus,
    service_id: str,
    received_at: datetime,
) -> dict[str, Any]:
    reason = item.override_reason or OverrideReason()
    return {
        "fingerprint": fingerprint,
        "received_at": received_at,
        "service_id": service_id,
        "card_uuid": item.card,
        "card_status": status.value,
        "outcome": item.outcome.value,
        "outcome_timestamp": item.outcome_timestamp,
        "accepted_suggestions": list(item.accepted_suggestions),
        "override_system": reason.system,
        "override_code": reason.code,
        "override_display": reason.display,
        "user_comment": reason.user_comment,
    }


def feedback_response(receipts: Sequence[FeedbackReceipt]) -> dict[str, Any]:
    """Return the 200 body: one entry per item, in the order sent."""
    return {"feedback": [receipt.to_json() for receipt in receipts]}
