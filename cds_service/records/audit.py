"""The audit trail: what the service advised on each hook call, when, and on which data.

One record per hook call, written by the view once the answer is known, in one INSERT and one
transaction: time, service, hook, hookInstance, the patient reference as sent, profile,
decision, reason, rule, card and suggestion uuids, the type/id/version of every resource the
decision used, where each prefetch key's data came from, the status and the duration. Never a
token, a FHIR resource or a value from one.

The write is synchronous, so an answered hook call has its audit record committed: it survives
a crash or SIGKILL of the service (`storage.database` says why there is no fsync per record,
and what a power loss may cost); `bench/audit_cost.py` measures what the write adds to a call.
A failed write never changes or withholds the answer: it is logged without data and counted in
`AuditTrail.failures`; the wait for a stuck database is bounded by
`MIPOMERSEN_CDS_DATABASE_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from cds_service.errors import HttpError
from cds_service.hooks.evaluation import HookAnswer
from cds_service.records.storage import Database, describe_database_error
from cds_service.records.storage.repository import AuditRecordWriter
from cds_service.rules import Evaluation, Profile
from fhir_mappings.values import ResourceRef, SkippedResource

logger = logging.getLogger(__name__)

# Longer strings from the request are cut: a record stays small whatever the client sends.
MAX_SENT_TEXT = 256


@dataclass(slots=True)
class HookCall:
    """What the view learns about one hook call as it goes: the body sent, then the answer."""

    service_id: str
    now: datetime
    body: Any = None
    answer: HookAnswer | None = None
    record_id: int | None = None  # the audit record's id, once written


class AuditTrail:
    """Writes one `AuditRecord` per hook call and counts the writes that failed."""

    def __init__(
        self,
        database: Database,
        *,
        profile: Profile,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._writer = AuditRecordWriter(database)
        self._profile = profile
        self._lock = threading.Lock()
        self._failures = 0
        self._on_failure = on_failure  # e.g. a metrics counter

    @property
    def failures(self) -> int:
        """Return how many audit records could not be written since start-up."""
        return self._failures

    @contextmanager
    def hook_call(self, service_id: str, *, now: datetime) -> Iterator[HookCall]:
        """Time a hook call and record it on the way out, whether answered or failed."""
        call = HookCall(service_id=service_id, now=now)
        started = time.perf_counter()
        status, issues = 500, []
        try:
            yield call
            status = 200
        except HttpError as error:
            status, issues = error.status, _issue_locations(error)
            raise
        except HTTPException as error:  # e.g. werkzeug's 413 for a body over the limit
            status = error.code or status
            raise
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            self._record(call, status, issues, duration_ms)

    def _record(
        self, call: HookCall, status: int, issues: list[dict[str, Any]], duration_ms: float
    ) -> None:
        """Write the record; never raise, whatever happens."""
        try:
            record = audit_record(
                call, status=status, issues=issues, duration_ms=duration_ms, profile=self._profile
            )
            call.record_id = self._writer.insert(record)
        except SQLAlchemyError as error:
            failures = self._count_failure()
            logger.error(
                "audit record of a %s call not written (%s); %d failed since start-up",
                call.service_id,
                describe_database_error(error),
                failures,
            )
        except Exception:
            failures = self._count_failure()
            logger.exception("audit record not written; %d failed since start-up", failures)

    def _count_failure(self) -> int:
        if self._on_failure is not None:
            self._on_failure()
        with self._lock:
            self._failures += 1
            return self._failures


def audit_record(
    call: HookCall,
    *,
    status: int,
    issues: list[dict[str, Any]],
    duration_ms: float,
    profile: Profile,
) -> dict[str, Any]:
    """Return the columns of the hook call's `AuditRecord` (not yet written)."""
    body = call.body if isinstance(call.body, dict) else {}
    context = body.get("context")
    patient_id = _sent_text(context.get("patientId")) if isinstance(context, dict) else None
    answer = call.answer
    evaluation = answer.evaluation if answer else None
    finding = evaluation.decision if evaluation else None
    cards: list[dict[str, Any]] = answer.body["cards"] if answer else []
    card = cards[0] if cards else None  # cards.render_cards issues one card at most
    return {
        "recorded_at": call.now,
        "service_id": call.service_id,
        "status": status,
        "hook": _sent_text(body.get("hook")),
        "hook_instance": _sent_text(body.get("hookInstance")),
        "patient_reference": f"Patient/{patient_id}" if patient_id else None,
        "profile": profile.value,
        "decision": evaluation.kind.value if evaluation else None,
        "reason": finding.reason.code if finding else None,
        "rule": finding.rule if finding else None,
        "card_uuid": card.get("uuid") if card else None,
        "suggestion_uuids": [s["uuid"] for s in (card or {}).get("suggestions", []) if "uuid" in s],
        "resources": used_resources(evaluation) if evaluation else [],
        "data_sources": {key: source.value for key, source in answer.data_sources.items()}
        if answer
        else {},
        "issues": issues,
        "duration_ms": round(duration_ms, 3),
    }


def used_resources(evaluation: Evaluation) -> list[dict[str, str]]:
    """Return type, id and version of each resource the decision used, with its role.

    Roles: `deciding` (the number the card quotes), `supporting` (e.g. the confirming result),
    `condition`, `unusable` (the result the card could not use), `skipped` (unreadable),
    `result` (every result considered when all was well), `order` (mipomersen orders) and
    `excluded` (resources left out because they name no patient, policy 15).
    """
    used: list[tuple[str, ResourceRef | SkippedResource]] = []
    finding = evaluation.decision
    if finding is None:
        used += [("result", assessed.result.source) for assessed in evaluation.results]
    else:
        if finding.deciding:
            used.append(("deciding", finding.deciding.result.source))
        used += [("supporting", assessed.result.source) for assessed in finding.supporting]
        if finding.condition:
            used.append(("condition", finding.condition.source))
        if finding.unusable:
            used.append(("unusable", finding.unusable.source))
        used += [("skipped", skipped) for skipped in finding.skipped]
    used += [("order", order.source) for order in evaluation.orders]
    used += [("excluded", excluded) for excluded in evaluation.excluded]
    return [_resource(role, source) for role, source in used]


def _resource(role: str, source: ResourceRef | SkippedResource) -> dict[str, str]:
    resource = {"role": role, "type": source.resource_type}
    if source.id:
        resource["id"] = source.id
    version = source.version if isinstance(source, ResourceRef) else None
    if version:
        resource["version"] = version
    return resource


def _issue_locations(error: HttpError) -> list[dict[str, Any]]:
    """Return each issue's code and path, without the diagnostics (they may quote the client)."""
    return [
        {key: issue[key] for key in ("code", "expression") if key in issue}
        for issue in error.issues()
    ]


def _sent_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    # PostgreSQL text cannot hold NUL, which JSON allows, and no UTF-8 column can hold a lone
    # surrogate (refused at decode, escaped here too): never lose a record over either.
    text = value[:MAX_SENT_TEXT].replace("\x00", "\N{REPLACEMENT CHARACTER}")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
