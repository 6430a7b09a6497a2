"""POST /cds-services/{id}/feedback: every problem named at once; stored once; 200 = committed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text
from werkzeug.test import TestResponse

from cds_service.errors import BadRequest, InvalidFields
from cds_service.records.feedback import Outcome, OverrideReason, parse_feedback
from cds_service.records.storage import FeedbackRecord
from tests.conftest import NOW, sequential_ids
from tests.databases import AppFactory, state
from tests.fhir_builders import hook_request, medication_request, observation
from tests.openapi_contract import assert_response_matches_openapi

SIGN = "mipomersen-order-sign"
CARD = "4e0a3a1e-3283-4575-ab82-028d55fe2719"
SUGGESTION = "e56e1945-20b3-4393-8503-a1a20fd73152"
WHEN = "2026-11-23T12:05:31Z"
SEVERE = hook_request(
    drafts=(medication_request("draft-1"),),
    labs=(observation("ALT", 236, "2026-11-20", high=40),),
)

# The spec's three examples (CDS Hooks 2.0.1 § Feedback) and what the reference sandbox sends.
ACCEPTED = {
    "card": CARD,
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": SUGGESTION}],
    "outcomeTimestamp": WHEN,
}
OVERRIDDEN = {"card": CARD, "outcome": "overridden", "outcomeTimestamp": WHEN}
OVERRIDDEN_WITH_REASON = {
    **OVERRIDDEN,
    "overrideReason": {
        "reason": {"code": "d7ecf885", "system": "https://example.com/override-reason"},
        "userComment": "A comment entered by the clinician.",
    },
}


def post_feedback(
    client: FlaskClient,
    body: Any,
    service: str = SIGN,
    *,
    validate_request: bool = False,
    **kwargs: Any,
) -> TestResponse:
    path = f"/cds-services/{service}/feedback"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    kwargs.setdefault("content_type", "application/json")
    response = client.post(path, data=data, **kwargs)
    assert_response_matches_openapi(
        response,
        method="POST",
        path=path,
        request_body=data,
        content_type=kwargs["content_type"],
        validate_request=validate_request,
        # The app under test runs with auth off; the document requires a JWT's shape.
        headers={"Authorization": "Bearer eyJhbGciOiJFUzM4NCJ9.e30.c2ln"},
    )
    return response


def stored(client: FlaskClient) -> list[FeedbackRecord]:
    app = client.application
    with state(app).database.session() as session:
        return list(session.scalars(select(FeedbackRecord).order_by(FeedbackRecord.id)))


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    return make_app(clock=lambda: NOW, new_id=sequential_ids()).test_client()


# --- what is accepted ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(ACCEPTED, id="spec-accepted"),
        pytest.param(OVERRIDDEN, id="spec-overridden-without-reason"),
        pytest.param(OVERRIDDEN_WITH_REASON, id="spec-overridden-with-reason"),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"userComment": "Already discussed"}},
            id="comment-only",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"reason": {"system": "urn:x", "code": "1"}}},
            id="sandbox-coding-without-display",
        ),
        pytest.param({**OVERRIDDEN, "acceptedSuggestions": []}, id="overridden-empty-list"),
        pytest.param({**ACCEPTED, "outcomeTimestamp": "2026-11-23T07:05:31.25-05:00"}, id="offset"),
        pytest.param({**ACCEPTED, "extension": {"org.example": 1}}, id="unknown-fields-ignored"),
    ],
)
def test_valid_feedback_is_stored_and_answered_200(
    client: FlaskClient, item: dict[str, Any]
) -> None:
    response = post_feedback(client, {"feedback": [item]}, validate_request=True)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "feedback": [{"card": CARD, "result": "stored", "cardStatus": "unknown"}]
    }
    (row,) = stored(client)
    assert (row.card_uuid, row.outcome, row.service_id) == (CARD, item["outcome"], SIGN)


def test_stored_row_holds_what_the_clinician_said(client: FlaskClient) -> None:
    post_feedback(client, {"feedback": [OVERRIDDEN_WITH_REASON, ACCEPTED]})
    overridden, accepted = stored(client)
    assert (overridden.override_system, overridden.override_code) == (
        "https://example.com/override-reason",
        "d7ecf885",
    )
    assert overridden.override_display is None
    assert overridden.user_comment == "A comment entered by the clinician."
    assert overridden.outcome_timestamp.isoformat() == "2026-11-23T12:05:31+00:00"
    assert overridden.received_at == NOW
    assert accepted.accepted_suggestions == [SUGGESTION]


def test_parsed_items_are_typed_and_in_utc() -> None:
    (item,) = parse_feedback(
        {"feedback": [{**OVERRIDDEN_WITH_REASON, "outcomeTimestamp": "2026-11-23t07:05:31-05:00"}]}
    )
    assert item.outcome is Outcome.OVERRIDDEN
    assert item.outcome_timestamp.isoformat() == "2026-11-23T12:05:31+00:00"
    assert item.override_reason == OverrideReason(
        system="https://example.com/override-reason",
        code="d7ecf885",
        user_comment="A comment entered by the clinician.",
    )


def test_empty_feedback_array_stores_nothing(client: FlaskClient) -> None:
    response = post_feedback(client, {"feedback": []})
    assert (response.status_code, response.get_json()) == (200, {"feedback": []})
    assert stored(client) == []


# --- what is refused ------------------------------------------------------------------------------


def without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name != key}


@pytest.mark.parametrize(
    ("item", "path", "message"),
    [
        pytest.param(without(ACCEPTED, "card"), "card", "is required", id="card-missing"),
        pytest.param({**ACCEPTED, "card": "card-1"}, "card", "card's uuid", id="card-not-uuid"),
        pytest.param({**ACCEPTED, "card": 7}, "card", "card's uuid", id="card-not-string"),
        pytest.param({**ACCEPTED, "card": "z" * 36}, "card", "card's uuid", id="card-36-chars"),
        pytest.param(without(ACCEPTED, "outcome"), "outcome", "required", id="outcome-missing"),
        pytest.param({**ACCEPTED, "outcome": "ignored"}, "outcome", "accepted or", id="outcome"),
        pytest.param(
            without(ACCEPTED, "acceptedSuggestions"),
            "acceptedSuggestions",
            "required when outcome is accepted",
            id="cds-fb-2",
        ),
        pytest.param(
            {**ACCEPTED, "acceptedSuggestions": []},
            "acceptedSuggestions",
            "required when outcome is accepted",
            id="cds-fb-2-empty",
        ),
        pytest.param(
            {**ACCEPTED, "acceptedSuggestions": {"id": SUGGESTION}},
            "acceptedSuggestions",
            "must be an array",
            id="suggestions-not-array",
        ),
        pytest.param(
            {**ACCEPTED, "acceptedSuggestions": [SUGGESTION]},
            "acceptedSuggestions[0]",
            "must be an object",
            id="suggestion-not-object",
        ),
        pytest.param(
            {**ACCEPTED, "acceptedSuggestions": [{"id": "s-1"}]},
            "acceptedSuggestions[0].id",
            "suggestion's uuid",
            id="suggestion-id-not-uuid",
        ),
        pytest.param(
            {**ACCEPTED, "acceptedSuggestions": [{}]},
            "acceptedSuggestions[0].id",
            "is required",
            id="suggestion-id-missing",
        ),
        pytest.param(
            {**OVERRIDDEN, "acceptedSuggestions": [{"id": SUGGESTION}]},
            "acceptedSuggestions",
            "absent when outcome is overridden",
            id="overridden-with-suggestions",
        ),
        pytest.param(
            {**ACCEPTED, "overrideReason": {"userComment": "no"}},
            "overrideReason",
            "only allowed when outcome is overridden",
            id="accepted-with-reason",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": "not needed"},
            "overrideReason",
            "must be an object",
            id="reason-not-object",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {}},
            "overrideReason",
            "a reason, a userComment or both",
            id="cds-fb-3",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"reason": "d7ecf885"}},
            "overrideReason.reason",
            "Coding with system and code",
            id="reason-not-coding",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"reason": {"code": "d7ecf885"}}},
            "overrideReason.reason.system",
            "is required",
            id="coding-without-system",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"reason": {"system": "urn:x", "code": ""}}},
            "overrideReason.reason.code",
            "non-empty string",
            id="coding-empty-code",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"userComment": 42}},
            "overrideReason.userComment",
            "non-empty string",
            id="comment-not-string",
        ),
        pytest.param(
            {**OVERRIDDEN, "overrideReason": {"userComment": "a\x00b"}},
            "overrideReason.userComment",
            "NUL",
            id="comment-with-nul",
        ),
        pytest.param(
            without(ACCEPTED, "outcomeTimestamp"), "outcomeTimestamp", "required", id="no-time"
        ),
        pytest.param(
            {**ACCEPTED, "outcomeTimestamp": "2026-11-23T12:05:31"},
            "outcomeTimestamp",
            "RFC 3339",
            id="time-without-zone",
        ),
        pytest.param(
            {**ACCEPTED, "outcomeTimestamp": "2026-11-23"},
            "outcomeTimestamp",
            "RFC 3339",
            id="date",
        ),
        pytest.param(
            {**ACCEPTED, "outcomeTimestamp": "2026-13-23T12:05:31Z"},
            "outcomeTimestamp",
            "RFC 3339",
            id="month-13",
        ),
        pytest.param(
            {**ACCEPTED, "outcomeTimestamp": 1700000000},
            "outcomeTimestamp",
            "RFC 3339",
            id="epoch-number",
        ),
    ],
)
def test_invalid_item_is_refused_naming_the_field(
    item: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(InvalidFields) as raised:
        parse_feedback({"feedback": [ACCEPTED, item]})
    assert [issue["expression"] for issue in raised.value.issues()] == [[f"feedback[1].{path}"]]
    assert message in raised.value.issues()[0]["diagnostics"]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        pytest.param({}, "feedback", "feedback is required", id="no-feedback"),
        pytest.param({"feedback": ACCEPTED}, "feedback", "must be an array", id="not-an-array"),
        pytest.param({"feedback": ["x"]}, "feedback[0]", "must be a JSON object", id="item-type"),
    ],
)
def test_invalid_body_is_refused_naming_the_field(
    body: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(InvalidFields) as raised:
        parse_feedback(body)
    (issue,) = raised.value.issues()
    assert issue["expression"] == [path]
    assert message in issue["diagnostics"]


def test_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadRequest, match="JSON object with a feedback array"):
        parse_feedback([ACCEPTED])


def test_400_names_every_problem_in_one_operation_outcome(client: FlaskClient) -> None:
    body = {
        "feedback": [
            ACCEPTED,
            {"card": "card-1", "outcome": "accepted", "outcomeTimestamp": "yesterday"},
            {**OVERRIDDEN, "outcome": "dismissed"},
        ]
    }
    response = post_feedback(client, body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["expression"] for issue in outcome["issue"]] == [
        ["feedback[1].card"],
        ["feedback[1].acceptedSuggestions"],
        ["feedback[1].outcomeTimestamp"],
        ["feedback[2].outcome"],
    ]
    assert {issue["code"] for issue in outcome["issue"]} == {"invalid"}
    assert stored(client) == [], "nothing is stored when any item is invalid"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        pytest.param(b"{not json", "application/json", 400, id="bad-json"),
        pytest.param(b"[]", "application/json", 400, id="array-body"),
        pytest.param(b"{}", "text/plain", 415, id="not-json"),
    ],
)
def test_unusable_body_is_refused(
    client: FlaskClient, data: bytes, content_type: str, status: int
) -> None:
    response = post_feedback(client, data, content_type=content_type)
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_unknown_service_is_404(client: FlaskClient) -> None:
    response = post_feedback(client, {"feedback": [ACCEPTED]}, service="mipomersen-liver")
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


def test_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    client = make_app({"MAX_BODY_BYTES": "200"}).test_client()
    response = post_feedback(client, {"feedback": [ACCEPTED] * 5})
    assert response.status_code == 413


# --- known cards, repeats ------------------------------------------------------------------------


def issue_card(client: FlaskClient, service: str = SIGN) -> tuple[str, list[str]]:
    response = client.post(f"/cds-services/{service}", json=SEVERE)
    (card,) = response.get_json()["cards"]
    return card["uuid"], [suggestion["uuid"] for suggestion in card["suggestions"]]


def test_feedback_on_a_card_this_service_issued_is_known(client: FlaskClient) -> None:
    card, suggestions = issue_card(client)
    item = {**ACCEPTED, "card": card, "acceptedSuggestions": [{"id": suggestions[0]}]}
    response = post_feedback(client, {"feedback": [item]})
    assert response.get_json()["feedback"] == [
        {"card": card, "result": "stored", "cardStatus": "issued"}
    ]


def test_feedback_sent_to_another_service_is_flagged(client: FlaskClient) -> None:
    card, _ = issue_card(client)
    item = {**OVERRIDDEN, "card": card}
    response = post_feedback(client, {"feedback": [item]}, service="mipomersen-order-select")
    assert response.get_json()["feedback"][0]["cardStatus"] == "other-service"
    (row,) = stored(client)
    assert (row.card_status, row.service_id) == ("other-service", "mipomersen-order-select")


def test_unknown_card_is_stored_and_flagged(client: FlaskClient) -> None:
    response = post_feedback(client, {"feedback": [OVERRIDDEN]})
    assert response.get_json()["feedback"][0]["cardStatus"] == "unknown"
    assert [row.card_status for row in stored(client)] == ["unknown"]


def test_card_uuid_in_upper_case_is_the_same_card(client: FlaskClient) -> None:
    card, _ = issue_card(client)
    response = post_feedback(client, {"feedback": [{**OVERRIDDEN, "card": card.upper()}]})
    assert response.get_json()["feedback"][0] == {
        "card": card,
        "result": "stored",
        "cardStatus": "issued",
    }


def test_repeated_feedback_is_stored_once_and_answered_200_each_time(client: FlaskClient) -> None:
    first = post_feedback(client, {"feedback": [OVERRIDDEN_WITH_REASON]})
    again = post_feedback(client, {"feedback": [OVERRIDDEN_WITH_REASON]})
    same_instant = {**OVERRIDDEN_WITH_REASON, "outcomeTimestamp": "2026-11-23T13:05:31+01:00"}
    in_another_zone = post_feedback(client, {"feedback": [same_instant]})
    assert [r.status_code for r in (first, again, in_another_zone)] == [200, 200, 200]
    assert first.get_json()["feedback"][0]["result"] == "stored"
    assert again.get_json()["feedback"][0]["result"] == "duplicate"
    assert in_another_zone.get_json()["feedback"][0]["result"] == "duplicate"
    assert len(stored(client)) == 1


def test_same_item_twice_in_one_body_is_stored_once(client: FlaskClient) -> None:
    response = post_feedback(client, {"feedback": [ACCEPTED, ACCEPTED, OVERRIDDEN]})
    assert [entry["result"] for entry in response.get_json()["feedback"]] == [
        "stored",
        "duplicate",
        "stored",
    ]
    assert [row.outcome for row in stored(client)] == ["accepted", "overridden"]


@pytest.mark.slow  # thousands of rows
def test_thousands_of_items_in_one_body_are_stored(client: FlaskClient) -> None:
    items = [{**OVERRIDDEN, "card": str(uuid.UUID(int=n))} for n in range(3000)]
    response = post_feedback(client, {"feedback": items + items[:10]})
    results = [entry["result"] for entry in response.get_json()["feedback"]]
    assert results == ["stored"] * 3000 + ["duplicate"] * 10
    assert len(stored(client)) == 3000


def test_a_later_action_on_the_same_card_is_new_feedback(client: FlaskClient) -> None:
    later = {**OVERRIDDEN, "outcomeTimestamp": "2026-11-23T12:06:00Z"}
    post_feedback(client, {"feedback": [OVERRIDDEN]})
    response = post_feedback(client, {"feedback": [later]})
    assert response.get_json()["feedback"][0]["result"] == "stored"
    assert len(stored(client)) == 2


# --- the database fails --------------------------------------------------------------------------


def break_table(client: FlaskClient, table: str) -> None:
    with state(client.application).database.transaction() as session:
        session.execute(text(f"DROP TABLE {table}"))


def test_database_failure_is_503_and_stores_nothing(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    break_table(client, "feedback")
    response = post_feedback(client, {"feedback": [OVERRIDDEN_WITH_REASON]})
    assert response.status_code == 503
    (issue,) = response.get_json()["issue"]
    assert (issue["code"], issue["diagnostics"]) == (
        "transient",
        "feedback was not stored because the database is unavailable; send it again",
    )
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.startswith("feedback not stored: ")
    assert "clinician" not in message and CARD not in message
