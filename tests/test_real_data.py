"""Real public FHIR data (tests/data/fhir/, origins in tests/data/README.md) end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.hooks.bundles import bundle_to_hook_request
from cds_service.hooks.evaluation import answer_hook
from cds_service.settings import Settings
from tests.conftest import NOW, sequential_ids
from tests.fhir_builders import MIPOMERSEN

DATA = Path(__file__).parent / "data" / "fhir"
JORDAN = "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"


def _with_mipomersen_draft(bundle: dict[str, Any]) -> dict[str, Any]:
    """Add a draft mipomersen order for the Bundle's patient, as an EHR session would."""
    bundle = copy.deepcopy(bundle)
    patient_url = next(
        entry["fullUrl"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Patient"
    )
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:6a0c7a51-0000-4000-8000-00000000d1a1",
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "draft-mipomersen",
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": MIPOMERSEN,
                "subject": {"reference": patient_url},
                "authoredOn": "2017-06-26",
            },
        }
    )
    return bundle


def _evaluate(bundle: dict[str, Any], now: Any) -> dict[str, Any]:
    service, request = bundle_to_hook_request(bundle, None)
    answer = answer_hook(
        request, service=service, settings=Settings(), now=now, new_id=sequential_ids()
    )
    return answer.body


@pytest.mark.parametrize(
    ("now", "decision", "summary", "history"),
    [
        pytest.param(
            "2017-06-26T12:00:00+00:00",
            "repeat-test",
            "Repeat ALT/AST by 2017-07-01 to confirm AST 163 U/L = 4.0× ULN on 2017-06-24",
            None,
            id="two-days-after-the-elevation",
        ),
        pytest.param(
            "2017-09-26T12:00:00+00:00",
            "repeat-test",
            "Get baseline liver tests before mipomersen: no recent ALT, AST, ALP and total "
            "bilirubin",
            "- AST 163 U/L = 4.0× ULN on 2017-06-24, before therapy",
            id="policy-13-three-months-later-the-old-elevation-is-history",
        ),
    ],
)
def test_synthea_patient_with_alt_142_ast_163_in_iu_per_litre(
    now: str, decision: str, summary: str, history: str | None
) -> None:
    from datetime import datetime

    bundle = _with_mipomersen_draft(json.loads((DATA / JORDAN).read_text()))
    body = _evaluate(bundle, datetime.fromisoformat(now))
    (card,) = body["cards"]
    assert card["extension"]["io.github.mipomersen-cds"]["decision"] == decision
    assert card["summary"] == summary
    assert (
        "| ALT | 142 U/L (sent as 142.3 IU/L) | 3.5× | 40 U/L | 2017-06-24 | default |"
        in (card["detail"])
    )  # IU/L taken as U/L (policy 5)
    assert "default" in card["detail"]  # Synthea sends no reference ranges
    assert (history is not None and history in card["detail"]) or "**History**" not in card[
        "detail"
    ]


def test_synthea_patient_without_a_mipomersen_order_gets_no_card() -> None:
    bundle = json.loads((DATA / JORDAN).read_text())
    assert _evaluate(bundle, NOW) == {"cards": []}


def test_us_core_bilirubin_without_unit_code_is_read() -> None:
    observation = json.loads((DATA / "serum-total-bilirubin.json").read_text())
    observation["subject"] = {"reference": "Patient/p1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": observation},
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "d1",
                    "status": "draft",
                    "intent": "order",
                    "medicationCodeableConcept": MIPOMERSEN,
                    "subject": {"reference": "Patient/p1"},
                }
            },
        ],
    }
    from datetime import datetime

    (card,) = _evaluate(bundle, datetime.fromisoformat("2005-07-20T00:00:00+00:00"))["cards"]
    # 8.6 mg/dL against the example's own (fictitious) range high of 7.0 mg/dL.
    assert (
        "| total bilirubin | 8.6 mg/dL | 1.2× | 7 mg/dL | 2005-07-07 | lab range |"
        in card["detail"]
    )
