"""Add a mipomersen draft order to a patient Bundle: "what if this patient started today?".

The order is what an EHR would send on order-sign for a new prescription (FHIR R4
MedicationRequest): status `draft`, intent `order`, coded ATC C10AX11 (policy 6),
its subject the Bundle's Patient and `authoredOn` the evaluation instant. The Bundle itself is
never modified; a shallow copy gets one more entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fhir_mappings import FhirMappingError

WHAT_IF_ORDER_ID = "what-if-mipomersen"
_ATC_SYSTEM = "http://www.whocc.no/atc"  # FHIR R4 §4.3 terminologies-systems
_ATC_MIPOMERSEN = "C10AX11"  # WHO ATC: mipomersen (clinical reference §2, status V)


def with_mipomersen_order(bundle: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Return a copy of `bundle` with a mipomersen draft order for its Patient, authored at `now`.

    Raises FhirMappingError when the Bundle has no Patient with an id to order for.
    """
    patient_id = _patient_id(bundle)
    order = {
        "resourceType": "MedicationRequest",
        "id": WHAT_IF_ORDER_ID,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": _ATC_SYSTEM, "code": _ATC_MIPOMERSEN, "display": "mipomersen"}],
            "text": "mipomersen (what-if order)",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    entries = bundle.get("entry")
    kept = list(entries) if isinstance(entries, list) else []
    entry = {"fullUrl": f"urn:uuid:{WHAT_IF_ORDER_ID}", "resource": order}
    return {**bundle, "entry": [*kept, entry]}


def _patient_id(bundle: Mapping[str, Any]) -> str:
    """Return the id of the Bundle's first Patient (a light scan; the Bundle is read later)."""
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and resource.get("resourceType") == "Patient":
            resource_id = resource.get("id")
            if isinstance(resource_id, str) and resource_id:
                return resource_id
    raise FhirMappingError("bundle", "no Patient with an id to add the what-if order for")
