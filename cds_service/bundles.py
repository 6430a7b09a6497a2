"""Turn a patient's FHIR Bundle (e.g. a Synthea patient) into a CDS Hooks request.

Shared by `mipomersen-cds evaluate` and the playground: draft MedicationRequests become
`context.draftOrders`, every other Observation, MedicationRequest, Medication and Condition the
prefetch, and the first Patient the patient in context. Optionally a mipomersen draft order is
added, to ask "what would the service say if this patient were prescribed mipomersen now?".
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

from fhir_mappings import read_resources

from .discovery import (
    CONDITIONS_KEY,
    LIVER_LABS_KEY,
    MEDICATIONS_KEY,
    PATIENT_KEY,
    SERVICES,
    ServiceDefinition,
)
from .errors import CdsServiceError

HOOK_SERVICES = {service.hook: service for service in SERVICES}
_PREFETCH_KEYS = {
    "Observation": LIVER_LABS_KEY,
    "MedicationRequest": MEDICATIONS_KEY,
    "Medication": MEDICATIONS_KEY,
    "Condition": CONDITIONS_KEY,
}
# ATC C10AX11 is mipomersen (REFERENCE.md codes, verified); the text is the examples' product.
_MIPOMERSEN_CONCEPT = {
    "coding": [{"system": "http://www.whocc.no/atc", "code": "C10AX11", "display": "mipomersen"}],
    "text": "Kynamro (mipomersen sodium) 200 mg/mL solution for subcutaneous injection",
}
DRAFT_ORDER_ID = "mipomersen-draft-order"


class BundleError(CdsServiceError):
    """The Bundle cannot be turned into a hook request (e.g. it has no Patient)."""


def bundle_to_hook_request(
    bundle: dict[str, Any],
    hook: str | None,
    *,
    draft_order_at: datetime | None = None,
) -> tuple[ServiceDefinition, Any]:
    """Turn a patient Bundle into a CDS Hooks request: drafts to draftOrders, the rest prefetch.

    With `draft_order_at`, a mipomersen draft order authored that day is added to the drafts.
    """
    patient_id: str | None = None
    patient_urls: set[str] = set()
    drafts: list[dict[str, Any]] = []
    prefetch: dict[str, list[dict[str, Any]]] = {
        key: [] for key in dict.fromkeys(_PREFETCH_KEYS.values())
    }
    patient_resource: dict[str, Any] | None = None
    for item in read_resources(bundle, "bundle"):
        resource = dict(item.resource)
        kind = resource.get("resourceType")
        if kind == "Patient" and patient_resource is None:
            patient_resource = resource
            patient_id = resource.get("id") if isinstance(resource.get("id"), str) else None
            if item.full_url:
                patient_urls.add(item.full_url)
        elif kind == "MedicationRequest" and resource.get("status") == "draft":
            drafts.append(resource)
        elif kind in _PREFETCH_KEYS:
            prefetch[_PREFETCH_KEYS[kind]].append(resource)
    if patient_id is None:
        raise BundleError("the Bundle has no Patient with an id, so there is no patient in context")
    drafts = [_local_subject(draft, patient_id, patient_urls) for draft in drafts]
    if draft_order_at is not None:
        drafts.append(mipomersen_draft_order(patient_id, draft_order_at))
    hook = hook or ("order-sign" if drafts else "patient-view")
    context: dict[str, Any] = {"userId": "Practitioner/cli", "patientId": patient_id}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = _collection(drafts)
        if hook == "order-select":
            context["selections"] = [
                f"MedicationRequest/{draft['id']}" for draft in drafts if draft.get("id")
            ]
    request_prefetch: dict[str, Any] = {key: _collection(items) for key, items in prefetch.items()}
    if patient_resource is not None:
        request_prefetch[PATIENT_KEY] = patient_resource
    request = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": request_prefetch,
    }
    return HOOK_SERVICES[hook], request


def mipomersen_draft_order(patient_id: str, authored: datetime) -> dict[str, Any]:
    """Return a draft MedicationRequest for mipomersen 200 mg weekly, as an EHR would send it."""
    return {
        "resourceType": "MedicationRequest",
        "id": DRAFT_ORDER_ID,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": copy.deepcopy(_MIPOMERSEN_CONCEPT),
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored.date().isoformat(),
        "dosageInstruction": [{"text": "200 mg subcutaneously once weekly"}],
    }


def _local_subject(
    draft: dict[str, Any], patient_id: str, patient_urls: set[str]
) -> dict[str, Any]:
    """Rewrite a Bundle-local subject (`urn:uuid:...`) to `Patient/<id>` as an EHR would send it."""
    subject = draft.get("subject")
    if isinstance(subject, dict) and subject.get("reference") in patient_urls:
        draft = copy.deepcopy(draft)
        draft["subject"]["reference"] = f"Patient/{patient_id}"
    return draft


def _collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": resource} for resource in resources],
    }
