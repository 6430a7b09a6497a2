"""Small builders of FHIR R4 JSON and CDS Hooks requests, so test rows stay one line each."""

from __future__ import annotations

import itertools
from typing import Any

PATIENT_ID = "p1"
UCUM = "http://unitsofmeasure.org"
LOINC_CODES = {"ALT": "1742-6", "AST": "1920-8", "TBIL": "1975-2", "ALP": "6768-6", "INR": "6301-6"}
DEFAULT_UNITS = {"ALT": "U/L", "AST": "U/L", "TBIL": "mg/dL", "ALP": "U/L", "INR": "{INR}"}
MIPOMERSEN = {
    "coding": [{"system": "http://www.whocc.no/atc", "code": "C10AX11", "display": "mipomersen"}],
    "text": "Kynamro 200 mg/mL",
}
_ids = itertools.count(1)


def observation(
    test: str,
    value: float,
    when: str,
    *,
    unit: str | None = None,
    high: float | None = None,
    status: str = "final",
    comparator: str | None = None,
) -> dict[str, Any]:
    """Return a laboratory Observation for `test` (ALT, AST, TBIL, ALP, INR)."""
    unit = unit or DEFAULT_UNITS[test]
    quantity: dict[str, Any] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if comparator:
        quantity["comparator"] = comparator
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{next(_ids)}",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": LOINC_CODES[test]}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
        "valueQuantity": quantity,
    }
    if high is not None:
        resource["referenceRange"] = [
            {"high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}
        ]
    return resource


def medication_request(
    id_: str, *, status: str = "draft", authored: str = "2026-11-23", medication: Any = None
) -> dict[str, Any]:
    """Return a MedicationRequest, mipomersen unless `medication` says otherwise."""
    return {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": medication or MIPOMERSEN,
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": authored,
    }


def condition(
    code: str, *, system: str = "http://snomed.info/sct", recorded: str = "2026-01-01"
) -> dict[str, Any]:
    """Return an active, confirmed Condition."""
    return {
        "resourceType": "Condition",
        "id": f"cond-{next(_ids)}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "recordedDate": recorded,
    }


def bundle(*resources: dict[str, Any], type_: str = "searchset") -> dict[str, Any]:
    """Return a Bundle holding `resources`."""
    return {"resourceType": "Bundle", "type": type_, "entry": [{"resource": r} for r in resources]}


def hook_request(
    hook: str = "order-sign",
    *,
    drafts: tuple[dict[str, Any], ...] = (),
    labs: tuple[dict[str, Any], ...] = (),
    medications: tuple[dict[str, Any], ...] = (),
    conditions: tuple[dict[str, Any], ...] = (),
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a CDS Hooks request with every prefetch key filled (override with `prefetch`)."""
    context: dict[str, Any] = {"userId": "Practitioner/u1", "patientId": PATIENT_ID}
    if hook in ("order-sign", "order-select"):
        context["draftOrders"] = bundle(*drafts, type_="collection")
    if hook == "order-select":
        context["selections"] = (
            selections
            if selections is not None
            else [f"MedicationRequest/{d['id']}" for d in drafts]
        )
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": context,
        "prefetch": {
            "liverLabs": bundle(*labs),
            "medications": bundle(*medications),
            "conditions": bundle(*conditions),
        },
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body
