"""Turn a patient's FHIR Bundle (e.g. a Synthea patient) into a CDS Hooks request.

Shared by `mipomersen-cds evaluate` and the playground: draft MedicationRequests become
`context.draftOrders`, every other Observation, MedicationRequest, Medication and Condition the
prefetch, and the first Patient the patient in context (`what_if` adds a mipomersen draft order
to a Bundle first, when asked).
"""

from __future__ import annotations

import uuid
from typing import Any

from cds_service.errors import CdsServiceError
from cds_service.hooks.discovery import (
    CONDITIONS_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
    SERVICES,
    ServiceDefinition,
)
from fhir_mappings import FhirItem, read_resources

HOOK_SERVICES = {service.hook: service for service in SERVICES}
_PREFETCH_KEYS = {
    "Observation": LIVER_LABS_KEY,
    "MedicationRequest": MEDICATIONS_KEY,
    "Medication": MEDICATIONS_KEY,
    "Condition": CONDITIONS_KEY,
}


class BundleError(CdsServiceError):
    """The Bundle cannot be turned into a hook request (e.g. it has no Patient)."""


def bundle_to_hook_request(
    bundle: dict[str, Any], hook: str | None
) -> tuple[ServiceDefinition, Any]:
    """Turn a patient Bundle into a CDS Hooks request: drafts to draftOrders, the rest prefetch."""
    patient_id: str | None = None
    drafts: list[FhirItem] = []
    prefetch: dict[str, list[FhirItem]] = {
        key: [] for key in dict.fromkeys(_PREFETCH_KEYS.values())
    }
    patient: FhirItem | None = None
    for item in read_resources(bundle, "bundle"):
        resource = item.resource
        kind = resource.get("resourceType")
        if kind == "Patient" and patient is None:
            patient = item
            patient_id = resource.get("id") if isinstance(resource.get("id"), str) else None
        elif kind == "MedicationRequest" and resource.get("status") == "draft":
            drafts.append(item)
        elif kind in _PREFETCH_KEYS:
            prefetch[_PREFETCH_KEYS[kind]].append(item)
    if patient is None or patient_id is None:
        raise BundleError("the Bundle has no Patient with an id, so there is no patient in context")
    hook = hook or ("order-sign" if drafts else "patient-view")
    context: dict[str, Any] = {"userId": "Practitioner/cli", "patientId": patient_id}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = _collection(drafts)
        if hook == "order-select":
            context["selections"] = [
                f"MedicationRequest/{draft.resource['id']}"
                for draft in drafts
                if isinstance(draft.resource.get("id"), str)
            ]
    request_prefetch: dict[str, Any] = {key: _collection(items) for key, items in prefetch.items()}
    # A Bundle (not the bare Patient) keeps its fullUrl, which `urn:uuid:` subjects refer to.
    request_prefetch[PATIENT_KEY] = _collection([patient])
    request = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": request_prefetch,
    }
    return HOOK_SERVICES[hook], request


def _collection(items: list[FhirItem]) -> dict[str, Any]:
    """Return a collection Bundle of `items`, each entry with its original fullUrl."""
    entries: list[dict[str, Any]] = []
    for item in items:
        entry: dict[str, Any] = {"resource": item.resource}
        if item.full_url is not None:
            entry["fullUrl"] = item.full_url
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
