"""Tell a new mipomersen prescription from ongoing therapy, and find when therapy started.

Implements project policy 7 ("therapy start = the earliest mipomersen
MedicationRequest (authoredOn) seen for the patient") for the monitoring rules.

When the patient's history holds a mipomersen order that is not a draft order and not
entered-in-error, cancelled or draft
Then it is a prior order and the patient is on (or has had) therapy.

When a mipomersen order is being placed and there is no prior order
Then this is new therapy: baseline tests apply instead of the monitoring cadence.

When any prior order or order in scope has an authoredOn
Then therapy started at the earliest of them; otherwise the start is unknown (None), and the
monitoring rules read an unknown start as the shorter, first-year cadence.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cds_service.rules.decision import Occasion
from fhir_mappings.values import MedicationOrder

# MedicationRequest.status values (FHIR R4 medicationrequest-status), compared case-insensitively.
# Never show that the patient received the drug:
NOT_PRIOR_STATUSES: frozenset[str] = frozenset({"entered-in-error", "cancelled", "draft"})
# No longer stand for a prescription, so a draft order with them is not being placed:
VOID_STATUSES: frozenset[str] = frozenset({"entered-in-error", "cancelled"})
# A course that patient-view acts on, even while a dose is on hold:
CURRENT_STATUSES: frozenset[str] = frozenset({"active", "on-hold"})


def _status(order: MedicationOrder) -> str:
    return order.status.strip().lower()


def is_prior_order(order: MedicationOrder) -> bool:
    """Return True for a history order that shows earlier mipomersen therapy."""
    return not order.is_draft_order and _status(order) not in NOT_PRIOR_STATUSES


def orders_in_scope(
    orders: Iterable[MedicationOrder],
    *,
    occasion: Occasion,
    selections: Iterable[str] | None = None,
) -> tuple[MedicationOrder, ...]:
    """Return the mipomersen orders a hook call asks about.

    Ordering: the draft orders that are not void (order-select: only the `selections`, by
    `MedicationRequest/<id>`); chart review: the patient's current (active or on-hold) courses.
    """
    if occasion is Occasion.CHART_REVIEW:
        return tuple(
            order
            for order in orders
            if not order.is_draft_order and _status(order) in CURRENT_STATUSES
        )
    drafts = [o for o in orders if o.is_draft_order and _status(o) not in VOID_STATUSES]
    if selections is None:
        return tuple(drafts)
    selected = set(selections)
    return tuple(order for order in drafts if order.source.reference in selected)


def prior_orders(history: Iterable[MedicationOrder]) -> tuple[MedicationOrder, ...]:
    """Return the prior mipomersen orders in the patient's history."""
    return tuple(order for order in history if is_prior_order(order))


def is_new_therapy(occasion: Occasion, prior: Iterable[MedicationOrder]) -> bool:
    """Return True when a mipomersen order is placed for a patient without prior orders."""
    return occasion is Occasion.ORDERING and not any(True for _ in prior)


def therapy_start(
    prior: Iterable[MedicationOrder], orders: Iterable[MedicationOrder]
) -> datetime | None:
    """Return the earliest authoredOn among prior orders and orders in scope, or None."""
    authored = [
        order.authored_on
        for group in (prior, orders)
        for order in group
        if order.authored_on is not None
    ]
    return min(authored, default=None)
