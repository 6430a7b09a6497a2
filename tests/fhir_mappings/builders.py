"""Builders of FHIR R4 JSON for the `fhir_mappings` tests, so that each table row stays short."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fhir_mappings import FhirItem, read_patient_record, read_resources
from fhir_mappings.values import MedicationCodes, PatientRecord

DATA = Path(__file__).resolve().parents[1] / "data" / "fhir"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD_10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DROP = object()  # an override value that removes the key


def load(name: str) -> dict[str, Any]:
    """Return a copied public example from tests/data/fhir."""
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def _apply(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` with `overrides` set, and keys whose override is DROP removed."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is DROP:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def quantity(
    value: Any = 50, code: str | None = "U/L", *, unit: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """Return a Quantity: UCUM `code` (unit text the same unless given), or neither if None."""
    result: dict[str, Any] = {"value": value}
    if code is not None:
        result.update(unit=unit or code, system=UCUM, code=code)
    elif unit is not None:
        result["unit"] = unit
    return _apply(result, overrides)


def observation(loinc: str = "1742-6", **overrides: Any) -> dict[str, Any]:
    """Return a final liver-test Observation (ALT 50 U/L on 2026-11-01 by default)."""
    base = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-01T08:30:00Z",
        "valueQuantity": quantity(),
    }
    return _apply(base, overrides)


def medication_request(
    concept: Mapping[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """Return an active MedicationRequest with `concept` as medicationCodeableConcept."""
    base: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-10-01",
    }
    if concept is not None:
        base["medicationCodeableConcept"] = concept
    return _apply(base, overrides)


def medication(concept: Mapping[str, Any], id_: str = "med-1", **overrides: Any) -> dict[str, Any]:
    """Return a Medication resource whose code is `concept`."""
    return _apply({"resourceType": "Medication", "id": id_, "code": concept}, overrides)


def condition(code: str, system: str = SNOMED, /, **overrides: Any) -> dict[str, Any]:
    """Return an active, confirmed Condition recorded on 2026-10-20."""
    base = {
        "resourceType": "Condition",
        "id": "cond-1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "recordedDate": "2026-10-20",
    }
    return _apply(base, overrides)


def bundle(*resources: Mapping[str, Any], full_urls: Iterable[str | None] = ()) -> dict[str, Any]:
    """Return a searchset Bundle of `resources`, with the given entry fullUrls if any."""
    urls = list(full_urls) + [None] * len(resources)
    entries = []
    for resource, url in zip(resources, urls, strict=False):
        entry: dict[str, Any] = {"resource": resource}
        if url is not None:
            entry["fullUrl"] = url
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def items(*resources: Mapping[str, Any], path: str = "prefetch.p") -> list[FhirItem]:
    """Return the items of a Bundle of `resources` at `path`."""
    return list(read_resources(bundle(*resources), path))


def record_of(
    *resources: Mapping[str, Any],
    drafts: Iterable[Mapping[str, Any]] = (),
    codes: Iterable[tuple[str, str]] = (),
) -> PatientRecord:
    """Return the record of a prefetch Bundle of `resources` and draft orders `drafts`."""
    return read_patient_record(
        items(*resources),
        draft_orders=items(*drafts, path="context.draftOrders"),
        medication_codes=MedicationCodes(frozenset(codes)),
    )
