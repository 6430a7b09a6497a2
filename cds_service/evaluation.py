"""Run one CDS Hooks call through the domain: which orders are in scope, then the rules.

Pure: no Flask, no HTTP. Decides whether mipomersen is involved at all (no card otherwise,
policy 11) and whether the prefetch holds the data the rules need (412 otherwise, CDS Hooks
2.0.1 § Prefetch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from fhir_mappings import FhirItem, read_patient_record
from fhir_mappings.values import MedicationCodes, MedicationOrder, PatientRecord

from .cards import CardContext, render_cards
from .config import Settings
from .discovery import (
    CONDITIONS_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    ServiceDefinition,
    prefetch_templates,
)
from .errors import PreconditionFailed
from .hook_request import HookRequest, parse_hook_request
from .rules import Evaluation, Occasion, RuleConfig, evaluate

# Statuses of a MedicationRequest that no longer stand for a prescription.
_VOID_STATUSES = frozenset({"entered-in-error", "cancelled"})
# patient-view acts on a patient whose mipomersen is current, even if a dose is on hold.
_CURRENT_STATUSES = frozenset({"active", "on-hold"})


def evaluate_hook(
    request: HookRequest,
    *,
    rules: RuleConfig,
    medication_codes: MedicationCodes,
    now: datetime,
) -> Evaluation | None:
    """Evaluate a hook call; return None when mipomersen is not involved (no card)."""
    available = {
        key: items for key, items in request.prefetch.items() if not _is_error_outcome(items)
    }
    items = [item for value in available.values() if value for item in value]
    record = read_patient_record(
        items, draft_orders=request.draft_orders, medication_codes=medication_codes
    )
    if request.is_order_hook:
        orders = _orders_in_scope(request, record)
        required: tuple[str, ...] = (LIVER_LABS_KEY, MEDICATIONS_KEY, CONDITIONS_KEY)
    else:
        _require(available, (MEDICATIONS_KEY,))
        orders = tuple(
            order
            for order in record.medication_orders
            if not order.is_draft_order and order.status in _CURRENT_STATUSES
        )
        required = (LIVER_LABS_KEY, CONDITIONS_KEY)
    if not orders:
        return None
    _require(available, required)
    occasion = Occasion.ORDERING if request.is_order_hook else Occasion.CHART_REVIEW
    return evaluate(record, orders=orders, occasion=occasion, config=rules, now=now)


def _orders_in_scope(request: HookRequest, record: PatientRecord) -> tuple[MedicationOrder, ...]:
    """Return the mipomersen draft orders the hook asks about (order-select: the selected ones)."""
    drafts = tuple(order for order in record.draft_orders if order.status not in _VOID_STATUSES)
    if request.hook != "order-select":
        return drafts
    selected = set(request.selections)
    return tuple(order for order in drafts if order.source.reference in selected)


def _require(available: dict[str, tuple[FhirItem, ...] | None], keys: tuple[str, ...]) -> None:
    missing = tuple(key for key in keys if key not in available)
    if missing:
        raise PreconditionFailed(
            "required FHIR data was not prefetched and this service cannot fetch it",
            missing_keys=missing,
        )


def _is_error_outcome(items: tuple[FhirItem, ...] | None) -> bool:
    """Return True when a prefetch key holds only OperationOutcomes: the client's fetch failed."""
    if not items:
        return False
    return all(item.resource.get("resourceType") == "OperationOutcome" for item in items)


class DataSource(StrEnum):
    """Where the data of one prefetch key came from (for the audit trail)."""

    PREFETCH = "prefetch"  # sent by the EHR in the request
    NULL = "null"  # the EHR said there is no data
    FHIR_SERVER = "fhir-server"  # fetched by this service from fhirServer
    ABSENT = "absent"  # neither sent nor fetched


@dataclass(frozen=True, slots=True)
class HookAnswer:
    """The outcome of one hook call: the evaluation (None: mipomersen not involved) and body."""

    request: HookRequest
    evaluation: Evaluation | None
    body: dict[str, Any]
    data_sources: dict[str, DataSource] = field(default_factory=dict)  # prefetch key -> source


def answer_hook(
    body: Any,
    *,
    service: ServiceDefinition,
    settings: Settings,
    now: datetime,
    new_id: Callable[[], str],
) -> HookAnswer:
    """Parse a decoded request for `service`, evaluate it and render the response body."""
    request = parse_hook_request(body, expected_hook=service.hook)
    evaluation = evaluate_hook(
        request, rules=settings.rules, medication_codes=settings.medication_codes, now=now
    )
    context = CardContext(
        is_order_hook=request.is_order_hook,
        patient_reference=request.patient_reference,
        user_reference=request.user_id,
        new_id=new_id,
    )
    sources = {key: _data_source(request, key) for key in prefetch_templates()}
    return HookAnswer(
        request, evaluation, {"cards": render_cards(evaluation, context)}, data_sources=sources
    )


def _data_source(request: HookRequest, key: str) -> DataSource:
    if key not in request.prefetch or _is_error_outcome(request.prefetch[key]):
        return DataSource.ABSENT
    return DataSource.NULL if request.prefetch[key] is None else DataSource.PREFETCH
