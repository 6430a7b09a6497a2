"""Policy 15: a mipomersen order invalid elsewhere still counts; the card names what was unread.

Each row breaks one element of a draft order coded ATC C10AX11 (the cases that once gave
`{"cards": []}`). With ALT at 5.9× ULN the answer is still withhold; with normal labs it is never
"no card", because the order could not be read in full.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.fhir_builders import hook_request, medication_request, observation

DRAFT = medication_request("draft-1")
NORMAL = (
    observation("ALT", 20, "2026-11-20"),
    observation("AST", 20, "2026-11-20"),
    observation("ALP", 80, "2026-11-20"),
    observation("TBIL", 0.5, "2026-11-20"),
)
ALT_5_9X = observation("ALT", 236, "2026-11-20", high=40)
BROKEN = "context.draftOrders.entry[0].resource"


def without(resource: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != key}


@pytest.mark.parametrize(
    ("draft", "element"),
    [
        pytest.param(without(DRAFT, "intent"), f"{BROKEN}.intent", id="no-intent"),
        pytest.param({**DRAFT, "authoredOn": "not-a-date"}, f"{BROKEN}.authoredOn", id="bad-date"),
        pytest.param({**DRAFT, "note": "call me"}, f"{BROKEN}.note", id="note-as-string"),
        pytest.param({**DRAFT, "colour": "blue"}, f"{BROKEN}.colour", id="unknown-element"),
        pytest.param({**DRAFT, "id": "draft 1"}, f"{BROKEN}.id", id="id-with-spaces"),
    ],
)
class TestAnInvalidMipomersenOrder:
    def test_is_still_withheld_at_5x_uln_and_the_card_names_the_element(
        self, client: FlaskClient, draft: dict[str, Any], element: str
    ) -> None:
        body = hook_request(drafts=(draft,), labs=(ALT_5_9X, *NORMAL[1:]))

        (card,) = post(client, body)["cards"]

        assert card["extension"]["io.github.mipomersen-cds"]["decision"] == "withhold"
        assert card["summary"].startswith("Withhold mipomersen: ALT 236 U/L = 5.9× ULN")
        assert f"`{element}`" in card["detail"]
        assert "read in part" in card["detail"]

    def test_never_gets_no_card_when_the_labs_are_normal(
        self, client: FlaskClient, draft: dict[str, Any], element: str
    ) -> None:
        body = hook_request(drafts=(draft,), labs=NORMAL)

        (card,) = post(client, body)["cards"]

        assert card["extension"]["io.github.mipomersen-cds"]["reason"] == "record-unreadable"
        assert f"`{element}`" in card["detail"]


def test_an_invalid_active_course_still_puts_the_patient_on_therapy(client: FlaskClient) -> None:
    course = {**medication_request("mr-1", status="active", authored="2026-06-01"), "note": "x"}
    body = hook_request("patient-view", labs=(ALT_5_9X, *NORMAL[1:]), medications=(course,))

    (card,) = post(client, body, "/cds-services/mipomersen-patient-view")["cards"]

    assert card["extension"]["io.github.mipomersen-cds"]["decision"] == "withhold"
    assert "`prefetch.medications.entry[0].resource.note`" in card["detail"]


def test_an_invalid_selected_order_is_still_the_selection(client: FlaskClient) -> None:
    draft = without(DRAFT, "intent")
    body = hook_request("order-select", drafts=(draft,), labs=(ALT_5_9X, *NORMAL[1:]))

    (card,) = post(client, body, "/cds-services/mipomersen-order-select")["cards"]

    assert card["extension"]["io.github.mipomersen-cds"]["decision"] == "withhold"


def post(client: FlaskClient, body: Any, path: str = "/cds-services/mipomersen-order-sign") -> Any:
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    return response.get_json()
