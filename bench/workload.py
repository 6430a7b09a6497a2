"""Realistic benchmark inputs: order-sign requests with years of liver-test history.

A patient on mipomersen for several years with panels (ALT, AST, ALP, total bilirubin, now and
then INR and GGT) drawn weekly to monthly, values wandering around normal with an occasional
elevation, some labs reporting in SI units, every result with its reference range. The newest
panel is recent and normal, so the rules walk the whole history and answer with no card: the
most common and the most expensive path.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PATIENT = "bench-patient"
_TESTS = (
    # analyte LOINC, display, unit, typical value, ULN
    (
        "1742-6",
        "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        24,
        40,
    ),
    (
        "1920-8",
        "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        22,
        40,
    ),
    (
        "6768-6",
        "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        80,
        120,
    ),
    ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2),
)
_OCCASIONAL = (
    ("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 1.0, None),
    (
        "2324-2",
        "Gamma glutamyl transferase [Enzymatic activity/volume] in Serum or Plasma",
        "U/L",
        30,
        60,
    ),
)
MIPOMERSEN = {
    "coding": [{"system": "http://www.whocc.no/atc", "code": "C10AX11", "display": "mipomersen"}],
    "text": "Kynamro (mipomersen sodium) 200 mg/mL",
}


def _observation(
    index: int, test: tuple[Any, ...], when: datetime, rng: random.Random, tag: str = ""
) -> dict[str, Any]:
    code, display, unit, typical, uln = test
    value = round(typical * rng.uniform(0.6, 1.4) * (2.5 if rng.random() < 0.02 else 1.0), 2)
    quantity: dict[str, Any] = {
        "value": value,
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": unit,
    }
    high: dict[str, Any] | None = None
    if uln is not None:
        high = {"value": uln, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if unit == "U/L" and index % 5 == 0:  # a European lab reporting µkat/L
        quantity.update(value=round(value / 60, 3), unit="ukat/L", code="ukat/L")
        if high:
            high.update(value=round(uln / 60, 3), unit="ukat/L", code="ukat/L")
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{tag}{index}",
        "meta": {"versionId": "1", "lastUpdated": when.isoformat()},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": code, "display": display}],
            "text": display.split(" [")[0],
        },
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": when.isoformat(),
        "issued": (when + timedelta(hours=3)).isoformat(),
        "valueQuantity": quantity,
    }
    if high:
        resource["referenceRange"] = [{"high": high}]
    return resource


def liver_history(count: int, *, seed: int = 7, tag: str = "") -> list[dict[str, Any]]:
    """Return `count` liver Observations, newest first, ending with a normal panel two days ago."""
    rng = random.Random(seed)
    observations: list[dict[str, Any]] = []
    when = NOW - timedelta(days=2)
    while len(observations) < count:
        panel = list(_TESTS) + [t for t in _OCCASIONAL if rng.random() < 0.2]
        for test in panel:
            if len(observations) == count:
                break
            observations.append(_observation(len(observations), test, when, rng, tag))
        when -= timedelta(days=rng.choice((7, 14, 28, 30)))
    if count >= 2:  # the newest ALT and AST are normal, so the answer is "no card"
        for observation in observations[:2]:
            observation["valueQuantity"]["value"] = 20
            observation["valueQuantity"]["unit"] = observation["valueQuantity"]["code"] = "U/L"
            observation["referenceRange"][0]["high"].update(value=40, unit="U/L", code="U/L")
    return observations


def order_sign_request(
    observation_count: int, *, with_prefetch: bool = True, seed: int = 7, tag: str = ""
) -> dict[str, Any]:
    """Return an order-sign request for a patient on mipomersen since 2022.

    `seed` varies the values and `tag` goes into every resource id, `fullUrl` and the
    `hookInstance`, so requests made with different ones share no resource (a cold call).
    """
    draft = {
        "resourceType": "MedicationRequest",
        "id": f"draft-{tag}1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": MIPOMERSEN,
        "subject": {"reference": f"Patient/{PATIENT}"},
        "authoredOn": NOW.date().isoformat(),
    }
    first = {**draft, "id": f"rx-{tag}2022", "status": "active", "authoredOn": "2022-03-01"}
    body: dict[str, Any] = {
        "hook": "order-sign",
        "hookInstance": f"3c1b1d84-5c5b-4c19-9bd8-{tag}6d1f0b9ef0a1",
        "context": {
            "userId": "Practitioner/bench",
            "patientId": PATIENT,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": draft}],
            },
        },
    }
    if with_prefetch:
        body["prefetch"] = {
            "patient": {"resourceType": "Patient", "id": PATIENT},
            "liverLabs": _searchset(liver_history(observation_count, seed=seed, tag=tag), tag),
            "medications": _searchset([first], tag),
            "conditions": _searchset([], tag),
        }
    return body


def _searchset(resources: list[dict[str, Any]], tag: str = "") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{tag}{i}", "resource": r} for i, r in enumerate(resources)
        ],
    }


# Replaced in each HTTP request by that request's number (same width), so every request the
# load generator sends has distinct resource ids and hookInstance (bench/loadgen.py).
REQUEST_MARKER = b"@@@@@@@@"


def distinct_bodies(observation_count: int, count: int) -> list[bytes]:
    """Return `count` encoded requests with different values and resource ids."""
    return [
        encoded(order_sign_request(observation_count, seed=1000 + n, tag=f"r{n}-"))
        for n in range(count)
    ]


def templated_body(observation_count: int) -> bytes:
    """Return one encoded request whose ids hold `REQUEST_MARKER`, for the load generator."""
    return encoded(order_sign_request(observation_count, tag=REQUEST_MARKER.decode() + "-"))


def encoded(body: dict[str, Any]) -> bytes:
    """Return the request as the EHR would send it."""
    return json.dumps(body, separators=(",", ":")).encode()
