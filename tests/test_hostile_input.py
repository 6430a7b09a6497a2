"""Hostile bodies get a 4xx naming the field, never a 500, and never cost an audit record.

Each row is a probe from the attack run of issue 12: a chunked body past the size limit,
numbers no double can hold, dates past year 9999 once in UTC, lone UTF-16 surrogates, and
bodies that would ask for seconds of CPU (contained resources, Bundle entries, reference
ranges, huge arrays in one resource).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import get_default_algorithms
from sqlalchemy import select

from cds_service import create_app
from cds_service.hooks.limits import HTTP_LIMITS
from cds_service.records.storage import AuditRecord
from cds_service.web.state import EXTENSION_NAME
from fhir_mappings import (
    FhirItem,
    FhirMappingError,
    WorkLimitExceeded,
    parse_fhir_datetime,
    read_patient_record,
    read_resources,
    work_limits,
)
from fhir_mappings._validation import validation_problem
from tests.conftest import AUTH_OFF, NOW, sequential_ids
from tests.fhir_builders import bundle, hook_request, medication_request, observation
from tests.tokens import SigningKey, bearer, ec_key, sandbox_claims, sandbox_headers

SIGN = "/cds-services/mipomersen-order-sign"
FEEDBACK = SIGN + "/feedback"
CARD = "4e0a3a1e-3283-4575-ab82-028d55fe2719"
SEVERE = hook_request(
    drafts=(medication_request("draft-1"),), labs=(observation("ALT", 236, "2026-11-20"),)
)


@pytest.fixture
def small_app() -> Iterator[Flask]:
    app = create_app(
        {**AUTH_OFF, "MAX_BODY_BYTES": "4096"},
        environ={},
        clock=lambda: NOW,
        new_id=sequential_ids(),
    )
    yield app
    app.extensions[EXTENSION_NAME].database.close()


def post_raw(client: FlaskClient, path: str, text: str) -> Any:
    return client.post(path, data=text.encode("utf-8"), content_type="application/json")


def records(app: Flask) -> list[AuditRecord]:
    with app.extensions[EXTENSION_NAME].database.session() as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def chunked(client: FlaskClient, body: bytes) -> Any:
    """POST `body` as a server does for chunked transfer: no Content-Length, stream terminated."""
    return client.post(
        SIGN,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_past_the_limit_is_refused_not_truncated(small_app: Flask) -> None:
    valid = json.dumps(SEVERE).encode()
    assert len(valid) < 4096
    body = valid + b" " * (4096 - len(valid)) + b"GARBAGE"
    response = chunked(small_app.test_client(), body)
    assert response.status_code == 413
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-long"
    assert response.headers["Connection"] == "close"
    assert [record.status for record in records(small_app)] == [413]


def test_a_chunked_body_of_exactly_the_limit_is_answered(small_app: Flask) -> None:
    valid = json.dumps(SEVERE).encode()
    response = chunked(small_app.test_client(), valid + b" " * (4096 - len(valid)))
    assert response.status_code == 200
    assert response.get_json()["cards"]


def test_content_length_past_the_limit_is_refused_with_an_operation_outcome(
    small_app: Flask,
) -> None:
    response = small_app.test_client().post(SIGN, data=b" " * 5000, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["resourceType"] == "OperationOutcome"


def _with_expires_in(literal: str) -> str:
    body = {
        **SEVERE,
        "fhirServer": "https://ehr.example.org/fhir",
        "fhirAuthorization": {
            "access_token": "t",
            "token_type": "Bearer",
            "scope": "patient/*.read",
            "subject": "cds",
            "expires_in": 0,
        },
    }
    return json.dumps(body).replace('"expires_in": 0', f'"expires_in": {literal}')


def _with_alt_value(literal: str) -> str:
    return json.dumps(SEVERE).replace('"value": 236', f'"value": {literal}')


def _with_alt_high(literal: str) -> str:
    ranged = copy.deepcopy(SEVERE)
    ranged["prefetch"]["liverLabs"]["entry"][0]["resource"]["referenceRange"] = [
        {"high": {"value": 40, "unit": "U/L"}}
    ]
    return json.dumps(ranged).replace('"value": 40,', f'"value": {literal},')


ALT_VALUE = "prefetch.liverLabs.entry[0].resource.valueQuantity.value"
TOP_LEVEL_INTEGER = json.dumps(SEVERE)[:-1] + ', "x": ' + "9" * 5000 + "}"
# The ALT result with a note no rule reads, whose extension holds 1e999
NOTE = '"note": [{"text": "n", "extension": [{"url": "http://x", "valueDecimal": 1e999}]}], '
NOTE_EXTENSION = json.dumps(SEVERE).replace('"valueQuantity":', NOTE + '"valueQuantity":', 1)
WITHHOLD = "Withhold mipomersen: ALT 236 U/L"
ALT_UNUSABLE = "Repeat liver tests: latest ALT is unusable"

# A number no double holds (more than 308 integer digits, an exponent past e308) is read as no
# finite number wherever it stands: a result holding it is unusable and its card names the
# field, a field that must be an integer refuses it, and one nothing reads changes nothing.
# An EHR shows nothing for a 400, so a request the service can still decide gets its cards.
# name, path, body, (status, the card's summary or the field refused, what the card or the
# refusal says)
OUT_OF_RANGE = [
    ("integer-of-5000-digits-at-top-level", SIGN, TOP_LEVEL_INTEGER, (200, WITHHOLD, "")),
    ("exponent-in-a-note-no-rule-reads", SIGN, NOTE_EXTENSION, (200, WITHHOLD, "")),
    ("value-quantity-of-4001-digits", SIGN, _with_alt_value("9" * 4001),
     (200, ALT_UNUSABLE, ALT_VALUE)),
    ("value-quantity-exponent-past-double", SIGN, _with_alt_value("1e999"),
     (200, ALT_UNUSABLE, ALT_VALUE)),
    ("negative-value-past-double", SIGN, _with_alt_value("-1" + "0" * 309),
     (200, ALT_UNUSABLE, ALT_VALUE)),
    ("reference-range-high-past-double", SIGN, _with_alt_high("1e999"),
     (200, ALT_UNUSABLE, "prefetch.liverLabs.entry[0].resource.referenceRange[0].high.value")),
    ("expires-in-ten-to-the-5000", SIGN, _with_expires_in("1" + "0" * 5000),
     (400, "fhirAuthorization.expires_in", "must be an integer")),
    ("feedback-integer-of-5000-digits", FEEDBACK, '{"feedback": [' + "1" * 5000 + "]}",
     (400, "feedback[0]", "must be a JSON object")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [pytest.param(path, text, expected, id=name) for name, path, text, expected in OUT_OF_RANGE],
)
def test_a_number_no_double_can_hold_reads_as_no_finite_number(
    app: Flask, path: str, text: str, expected: tuple[int, str, str]
) -> None:
    status, summary_or_field, said = expected
    response = post_raw(app.test_client(), path, text)
    if status == 400:
        assert_refused_naming(response, summary_or_field, said)
        return
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert card["summary"].startswith(summary_or_field)
    assert said.replace("[", "\\[").replace("]", "\\]") in card["detail"]  # as Markdown
    assert ".." not in card["detail"]


# Policy 4: a lab range whose upper limit cannot be read is no range; the default ULN decides
# and the card says so without claiming that none was sent.
@pytest.mark.parametrize(
    "high",
    [
        pytest.param(None, id="no-range-sent"),
        pytest.param({"value": 40, "unit": "furlongs"}, id="high-in-an-unknown-unit"),
        pytest.param({"value": 0, "unit": "U/L"}, id="high-of-zero"),
    ],
)
def test_a_range_that_cannot_be_read_is_said_so_and_the_default_uln_decides(
    client: FlaskClient, high: dict[str, Any] | None
) -> None:
    alt = observation("ALT", 236, "2026-11-20")
    if high is not None:
        alt["referenceRange"] = [{"high": high}]
    body = hook_request(drafts=(medication_request("draft-1"),), labs=(alt,))
    response = post_raw(client, SIGN, json.dumps(body))
    (card,) = response.get_json()["cards"]
    assert card["summary"].startswith("Withhold mipomersen: ALT 236 U/L = 5.9× ULN")
    assert "| ALT | 236 U/L | 5.9× | 40 U/L | 2026-11-20 | default |" in card["detail"]
    assert "No usable reference range was sent for ALT: the default ULN was used" in card["detail"]


def test_the_largest_numbers_a_double_holds_are_still_read(client: FlaskClient) -> None:
    response = post_raw(client, SIGN, _with_alt_value("9" * 308))
    assert response.status_code == 200


SEVERE_TEXT = json.dumps(SEVERE)
SURROGATES = [
    ("hook-instance", SIGN, SEVERE_TEXT.replace("d1577c69", "\\ud800"), "hookInstance"),
    (
        "patient-id",
        SIGN,
        SEVERE_TEXT.replace('"patientId": "p1"', '"patientId": "\\udfff"'),
        "context.patientId",
    ),
    ("an-object-key", SIGN, SEVERE_TEXT[:-1] + ', "k\\udc00": 1}', "k?"),
]


@pytest.mark.parametrize(
    ("path", "text", "field"),
    [pytest.param(path, text, field, id=name) for name, path, text, field in SURROGATES],
)
def test_a_lone_surrogate_is_refused_at_decode_and_the_call_still_audited(
    app: Flask, path: str, text: str, field: str
) -> None:
    assert_refused_naming(post_raw(app.test_client(), path, text), field, "lone UTF-16 surrogate")
    (record,) = records(app)
    assert record.status == 400
    assert record.issues == [{"code": "invalid", "expression": [field]}]


def test_a_surrogate_pair_is_ordinary_text(app: Flask) -> None:
    text = json.dumps(SEVERE).replace("d1577c69", "\\ud83d\\ude00")  # U+1F600 as JSON escapes
    response = post_raw(app.test_client(), SIGN, text)
    assert response.status_code == 200
    (record,) = records(app)
    assert record.hook_instance is not None and record.hook_instance.startswith("\U0001f600")


def _feedback(**changes: Any) -> dict[str, Any]:
    item = {
        "card": CARD,
        "outcome": "overridden",
        "overrideReason": {"userComment": "reviewed"},
        "outcomeTimestamp": "2026-11-23T12:00:00Z",
        **changes,
    }
    return {"feedback": [item]}


FEEDBACK_PROBES = [
    (
        "lone-surrogate-in-user-comment",
        json.dumps(_feedback()).replace("reviewed", "\\ud800"),
        "feedback[0].overrideReason.userComment",
    ),
    (
        "timestamp-past-9999-in-utc",
        json.dumps(_feedback(outcomeTimestamp="9999-12-31T23:59:59-14:00")),
        "feedback[0].outcomeTimestamp",
    ),
    (
        "timestamp-before-0001-in-utc",
        json.dumps(_feedback(outcomeTimestamp="0001-01-01T00:00:00+14:00")),
        "feedback[0].outcomeTimestamp",
    ),
]


@pytest.mark.parametrize(
    ("text", "field"),
    [pytest.param(text, field, id=name) for name, text, field in FEEDBACK_PROBES],
)
def test_feedback_that_cannot_be_stored_is_a_400_naming_the_field(
    client: FlaskClient, text: str, field: str
) -> None:
    response = post_raw(client, FEEDBACK, text)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [field]


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_fhir_date_outside_years_1_to_9999_in_utc_is_a_mapping_error(text: str) -> None:
    with pytest.raises(FhirMappingError, match="outside years 0001-9999"):
        parse_fhir_datetime(text, "effectiveDateTime")


def test_a_result_dated_past_9999_is_named_unusable_not_a_500(client: FlaskClient) -> None:
    late = observation("ALT", 236, "9999-12-31T23:59:59-14:00")
    body = hook_request(drafts=(medication_request("draft-1"),), labs=(late,))
    response = client.post(SIGN, json=body)
    assert response.status_code == 200


def _lab_with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    lab = observation("ALT", 236, "2026-11-20", high=40)
    parent: Any = lab
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return lab


def _draft_with_system(value: Any) -> dict[str, Any]:
    order = medication_request("draft-1")
    order["medicationCodeableConcept"]["coding"][0]["system"] = value
    return order


# JSON arrays and objects where the mappers compare a code system or a comparator against a
# set: found by probing every element of the examples with [], {} and nested values (issue 13).
UNHASHABLE = [
    ("loinc-system-as-array", (_lab_with(("code", "coding", 0, "system"), []),), ()),
    ("loinc-system-as-object", (_lab_with(("code", "coding", 0, "system"), {"a": 1}),), ()),
    ("comparator-as-array", (_lab_with(("valueQuantity", "comparator"), []),), ()),
    ("comparator-as-object", (_lab_with(("valueQuantity", "comparator"), {}),), ()),
    ("atc-system-as-array", (), (_draft_with_system([]),)),
]


@pytest.mark.parametrize(
    ("labs", "drafts"), [pytest.param(labs, drafts, id=name) for name, labs, drafts in UNHASHABLE]
)
def test_an_array_or_object_where_a_code_is_expected_is_not_a_500(
    client: FlaskClient, labs: tuple[dict[str, Any], ...], drafts: tuple[dict[str, Any], ...]
) -> None:
    body = hook_request(drafts=drafts or (medication_request("draft-1"),), labs=labs)
    response = client.post(SIGN, json=body)
    assert response.status_code == 200
    assert response.get_json()["cards"], "an unreadable result or order is never all clear"


def _order_with_contained(count: int) -> dict[str, Any]:
    order = medication_request("draft-1")
    order["contained"] = [
        {"resourceType": "Medication", "id": f"m{index}", "code": {"text": "x"}}
        for index in range(count)
    ]
    return order


def _lab_with_ranges(count: int) -> dict[str, Any]:
    lab = observation("ALT", 236, "2026-11-20")
    lab["referenceRange"] = [{"high": {"value": 40, "unit": "U/L"}}] * count
    return lab


ONE_TOO_MANY = HTTP_LIMITS.max_bundle_entries + 1
NORMAL_ALT = observation("ALT", 20, "2026-11-20")
MANY_DRAFTS = bundle(*[medication_request(f"d{index}") for index in range(ONE_TOO_MANY)])
LIMITS = [
    (
        "bundle-entries",
        hook_request(drafts=(medication_request("d"),), labs=(NORMAL_ALT,) * ONE_TOO_MANY),
        "prefetch.liverLabs.entry",
    ),
    (
        "draft-order-entries",
        {**SEVERE, "context": {**SEVERE["context"], "draftOrders": MANY_DRAFTS}},
        "context.draftOrders.entry",
    ),
    (
        "contained-resources",
        hook_request(drafts=(_order_with_contained(HTTP_LIMITS.max_contained + 1),)),
        "context.draftOrders.entry[0].resource.contained",
    ),
    (
        "reference-ranges",
        hook_request(
            drafts=(medication_request("d"),),
            labs=(_lab_with_ranges(HTTP_LIMITS.max_reference_ranges + 1),),
        ),
        "prefetch.liverLabs.entry[0].resource.referenceRange",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [pytest.param(body, field, id=name) for name, body, field in LIMITS]
)
def test_work_past_a_stated_limit_is_refused_naming_the_field(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = client.post(SIGN, json=body)
    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == [field]
    assert "at most" in issue["diagnostics"]


@pytest.mark.slow  # bodies at every limit
def test_requests_at_the_stated_limits_are_answered(client: FlaskClient) -> None:
    labs = (observation("ALT", 20, "2026-11-20"),) * HTTP_LIMITS.max_bundle_entries
    body = hook_request(drafts=(_order_with_contained(HTTP_LIMITS.max_contained),), labs=labs)
    assert client.post(SIGN, json=body).status_code == 200


@pytest.mark.slow  # a body near the size limit
def test_a_resource_larger_than_the_rules_read_is_too_costly(app: Flask) -> None:
    lab = observation("ALT", 236, "2026-11-20")
    lab["identifier"] = [{"value": "x"}] * 100_000  # 1.5 MB in one Observation
    body = hook_request(drafts=(medication_request("d"),), labs=(lab,))
    started = time.process_time()
    response = app.test_client().post(SIGN, json=body)
    assert time.process_time() - started < 1.0
    assert response.status_code == 413
    (issue,) = response.get_json()["issue"]
    assert issue["code"] == "too-costly"
    assert issue["expression"] == ["prefetch.liverLabs.entry[0].resource"]
    assert [record.status for record in records(app)] == [413]


def test_reading_stops_once_the_cpu_budget_is_spent() -> None:
    item = FhirItem("prefetch.liverLabs.entry[0].resource", observation("ALT", 1, "2026-11-20"))
    assert validation_problem(item) is None  # no limits outside work_limits
    with work_limits(cpu_seconds=0.0, max_resource_bytes=10**6):
        sum(range(10_000))  # any CPU at all spends a zero budget
        with pytest.raises(WorkLimitExceeded, match="s of CPU"):
            validation_problem(item)


def test_reading_ordinary_results_in_one_walk_also_stops_once_the_budget_is_spent() -> None:
    labs = [observation("ALT", 20, "2026-11-20") for _ in range(40)]
    items = read_resources(bundle(*labs), "prefetch.liverLabs")
    with work_limits(cpu_seconds=0.0, max_resource_bytes=10**6):
        sum(range(10_000))
        with pytest.raises(WorkLimitExceeded, match="s of CPU"):
            read_patient_record(items)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("literal", ["1" + "0" * 5000, "1e400", "-1e400"])
def test_jwt_claims_no_double_can_hold_get_401_not_500(
    auth_client: FlaskClient, claim: str, literal: str
) -> None:
    claims = {**sandbox_claims(), claim: 0}
    payload = json.dumps(claims, separators=(",", ":"))
    token = _sign_payload(ec_key(), payload.replace(f'"{claim}":0', f'"{claim}":{literal}'))
    response = auth_client.post(SIGN, json=SEVERE, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["resourceType"] == "OperationOutcome"


def _sign_payload(key: SigningKey, payload: str) -> str:
    """Sign a payload given as JSON text, so it may hold literals `json.dumps` never writes."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({**sandbox_headers(key), "alg": key.alg}, separators=(",", ":"))
    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    signature = get_default_algorithms()[key.alg].sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


def assert_refused_naming(response: Any, field: str, problem: str) -> None:
    """Assert a 400 with one issue that names `field` and says `problem`."""
    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == [field]
    assert problem in issue["diagnostics"]
