"""The one set of builders of FHIR R4 JSON and CDS Hooks requests, so test rows stay one line each.

Every resource builder takes the few clinical facts a row varies as parameters and any other
element as a keyword override named as in FHIR (`status=`, `id=`, `meta=`); an override replaces
the element, and `DROP` removes it. `record_of` and `items` read built resources the way the
service does, for the `fhir_mappings` tests.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fhir_mappings import FhirItem, read_patient_record, read_resources
from fhir_mappings.values import MedicationCodes, PatientRecord

DATA = Path(__file__).resolve().parent / "data" / "fhir"
PATIENT_ID = "p1"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD_10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC_CODES = {"ALT": "1742-6", "AST": "1920-8", "TBIL": "1975-2", "ALP": "6768-6", "INR": "6301-6"}
DEFAULT_UNITS = {"ALT": "U/L", "AST": "U/L", "TBIL": "mg/dL", "ALP": "U/L", "INR": "{INR}"}
MIPOMERSEN = {
    "coding": [{"system": ATC, "code": "C10AX11", "display": "mipomersen"}],
    "text": "Kynamro 200 mg/mL",
}
DROP = object()  # an override value that removes the element
_ids = itertools.count(1)


def _apply(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` with `overrides` set, and elements whose override is DROP removed."""
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


def observation(
    test: str = "ALT",
    value: Any = 50,
    when: str = "2026-11-01T08:30:00Z",
    *,
    loinc: str | None = None,
    unit: str | None = None,
    high: float | None = None,
    comparator: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Return a final laboratory Observation of `test` (ALT, AST, TBIL, ALP, INR) taken `when`.

    `loinc` codes it with another LOINC code than the test's usual one; `unit` (UCUM, the test's
    usual unit by default), `high` (the reference range's upper limit) and `comparator` shape the
    value. The id is `obs-<n>`, unique within a test run, unless `id=` says otherwise.
    """
    unit = unit or DEFAULT_UNITS[test]
    value_quantity = quantity(value, unit, **({"comparator": comparator} if comparator else {}))
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{next(_ids)}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc or LOINC_CODES[test]}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
        "valueQuantity": value_quantity,
    }
    if high is not None:
        base["referenceRange"] = [{"high": quantity(high, unit)}]
    return _apply(base, overrides)


def medication_request(
    id_: str = "mr-1",
    *,
    medication: Mapping[str, Any] | None = MIPOMERSEN,
    **overrides: Any,
) -> dict[str, Any]:
    """Return a draft order of `medication` (mipomersen) authored on 2026-11-23.

    With `medication=None` it has no medicationCodeableConcept (give `medicationReference=`).
    """
    base: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": "draft",
        "intent": "order",
    }
    if medication is not None:
        base["medicationCodeableConcept"] = medication
    base |= {"subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": "2026-11-23"}
    return _apply(base, overrides)


def medication(concept: Mapping[str, Any], id_: str = "med-1", **overrides: Any) -> dict[str, Any]:
    """Return a Medication resource whose code is `concept`."""
    return _apply({"resourceType": "Medication", "id": id_, "code": concept}, overrides)


def condition(code: str, system: str = SNOMED, /, **overrides: Any) -> dict[str, Any]:
    """Return an active, confirmed Condition recorded on 2026-10-20."""
    base = {
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
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "recordedDate": "2026-10-20",
    }
    return _apply(base, overrides)


def bundle(
    *resources: Mapping[str, Any], type_: str = "searchset", full_urls: Iterable[str | None] = ()
) -> dict[str, Any]:
    """Return a Bundle of `resources`, with the given entry fullUrls if any."""
    urls = list(full_urls) + [None] * len(resources)
    entries = []
    for resource, url in zip(resources, urls, strict=False):
        entry: dict[str, Any] = {"resource": resource}
        if url is not None:
            entry["fullUrl"] = url
        entries.append(entry)
    return {"resourceType": "Bundle", "type": type_, "entry": entries}


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


def load(name: str) -> dict[str, Any]:
    """Return a public example from tests/data/fhir."""
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


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
