"""CORS for browser-based CDS clients, request limits and protective headers on every response."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from cds_service import create_app
from cds_service.errors import BadRequest
from cds_service.hooks.json_limits import nesting_depth
from cds_service.hooks.request import decode_json_body
from tests.conftest import AUTH_OFF
from tests.fhir_builders import hook_request, medication_request
from tests.openapi_contract import assert_response_matches_openapi
from tests.tokens import auth_settings, bearer, sandbox_token

SIGN = "/cds-services/mipomersen-order-sign"
EHR = "https://ehr.example.org"
PREFLIGHT = {"Origin": EHR, "Access-Control-Request-Method": "POST"}


def nested(depth: int) -> bytes:
    """Return a JSON body whose arrays nest `depth` levels inside the top-level object."""
    return (
        json.dumps({**hook_request(), "extension": {"x": None}})
        .replace("null", "[" * (depth - 2) + "]" * (depth - 2))
        .encode()
    )


def _post(body: bytes, content_type: str = "application/json") -> Callable[[FlaskClient], Any]:
    return lambda client: client.post(SIGN, data=body, content_type=content_type)


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom")


# Every kind of answer the service gives, errors included.
ANSWERS: list[tuple[str, int, Callable[[FlaskClient], TestResponse]]] = [
    ("discovery", 200, lambda c: c.get("/cds-services")),
    ("head-discovery", 200, lambda c: c.head("/cds-services")),
    ("hook-call", 200, _post(json.dumps(hook_request()).encode())),
    ("preflight", 204, lambda c: c.options(SIGN, headers=PREFLIGHT)),
    ("bad-json", 400, _post(b"{")),
    ("not-utf8", 400, _post(b'{"hook": "\xff"}')),
    ("too-deep", 400, _post(nested(65))),
    ("unknown-path", 404, lambda c: c.get("/nowhere")),
    ("wrong-method", 405, lambda c: c.get(SIGN)),
    (
        "missing-prefetch",
        412,
        _post(json.dumps(hook_request(drafts=(medication_request("d"),), prefetch={})).encode()),
    ),
    ("too-large", 413, _post(b"[" + b"0," * 600 + b"0]")),
    ("not-json", 415, _post(b"{}", "text/plain")),
]


@pytest.mark.parametrize(
    ("status", "send"), [pytest.param(status, send, id=name) for name, status, send in ANSWERS]
)
def test_every_answer_is_uncacheable_and_unsniffable(
    status: int, send: Callable[[FlaskClient], TestResponse]
) -> None:
    client = create_app({**AUTH_OFF, "MAX_BODY_BYTES": "1000"}, environ={}).test_client()
    response = send(client)
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unauthorized_and_internal_errors_carry_the_headers_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = create_app(auth_settings(tmp_path), environ={}).test_client()
    refused = client.get("/cds-services", headers={"Origin": EHR})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # a browser may read the 401
    monkeypatch.setattr("cds_service.web.routes.answer_hook", _explode)
    failed = client.post(
        SIGN, json=hook_request(), headers=bearer(sandbox_token()), content_type="application/json"
    )
    assert failed.status_code == 500
    for response in (refused, failed):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- CORS ---------------------------------------------------------------------------------------


def test_preflight_allows_authorization_and_content_type(client: FlaskClient) -> None:
    response = client.options(
        SIGN, headers={**PREFLIGHT, "Access-Control-Request-Headers": "authorization,content-type"}
    )
    assert response.status_code == 204
    assert response.get_data() == b"" and "Content-Type" not in response.headers
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" not in response.vary
    assert_response_matches_openapi(response, method="OPTIONS", path=SIGN)


def test_preflight_on_discovery(client: FlaskClient) -> None:
    response = client.options(
        "/cds-services", headers={**PREFLIGHT, "Access-Control-Request-Method": "GET"}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert_response_matches_openapi(response, method="OPTIONS", path="/cds-services")


def test_preflight_on_an_unknown_path_is_404(client: FlaskClient) -> None:
    response = client.options("/nowhere", headers=PREFLIGHT)
    assert response.status_code == 404
    assert "Access-Control-Allow-Methods" not in response.headers


def test_any_origin_by_default(client: FlaskClient) -> None:
    response = client.get("/cds-services", headers={"Origin": "https://anywhere.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Expose-Headers"] == "WWW-Authenticate"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers  # not a preflight


def test_no_cors_headers_without_an_origin(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.fixture
def listed_origins() -> FlaskClient:
    settings = {**AUTH_OFF, "CORS_ORIGINS": "https://EHR.example.org, http://localhost:3000"}
    return create_app(settings, environ={}).test_client()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://ehr.example.org", True),
        ("http://localhost:3000", True),
        ("https://evil.example.org", False),
        ("http://ehr.example.org", False),  # another scheme is another origin
        ("null", False),
    ],
)
def test_listed_origins_only(listed_origins: FlaskClient, origin: str, allowed: bool) -> None:
    for response in (
        listed_origins.get("/cds-services", headers={"Origin": origin}),
        listed_origins.options(SIGN, headers={**PREFLIGHT, "Origin": origin}),
    ):
        assert "Origin" in response.vary  # caches must key on the origin
        if allowed:
            assert response.headers["Access-Control-Allow-Origin"] == origin
        else:
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "Access-Control-Allow-Methods" not in response.headers


# --- JSON limits --------------------------------------------------------------------------------


def test_nesting_deeper_than_the_limit_is_400(client: FlaskClient) -> None:
    response = client.post(SIGN, data=nested(65), content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["diagnostics"] == (
        "request body is nested too deeply (more than 64 levels)"
    )
    at_limit = client.post(SIGN, data=nested(64), content_type="application/json")
    assert "nested" not in at_limit.get_data(as_text=True)


def test_the_depth_limit_is_configurable(tmp_path: Path) -> None:
    example = (Path(__file__).parents[1] / "examples" / "withhold-alt-5x-uln.json").read_bytes()
    strict = create_app({**AUTH_OFF, "MAX_JSON_DEPTH": "11"}, environ={}).test_client()
    assert strict.post(SIGN, data=example, content_type="application/json").status_code == 200
    stricter = create_app({**AUTH_OFF, "MAX_JSON_DEPTH": "10"}, environ={}).test_client()
    assert stricter.post(SIGN, data=example, content_type="application/json").status_code == 400


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ([], 1), ({"a": [1]}, 2), ([[[]], []], 3), ({"a": {"b": {"c": {}}}}, 4)],
)
def test_depth_counts_nested_arrays_and_objects(value: Any, depth: int) -> None:
    assert not exceeds_depth(value, depth)
    assert exceeds_depth(value, depth - 1) == (depth > 0)


def test_decoding_never_recurses_out_of_stack() -> None:
    with pytest.raises(BadRequest, match="nested too deeply"):
        decode_json_body(b"[" * 200_000 + b"]" * 200_000)


@pytest.mark.slow  # hypothesis, 200 requests
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    content_type=st.sampled_from(["application/json", "application/fhir+json", "text/plain", ""]),
)
def test_no_body_or_content_type_gives_a_500(app: Flask, body: bytes, content_type: str) -> None:
    response = app.test_client().post(SIGN, data=body, content_type=content_type)
    assert response.status_code in (400, 415), response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "OperationOutcome"


_json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\aé\n', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\kü', max_size=4), children, max_size=3)
    ),
    max_leaves=25,
)


@pytest.mark.slow  # hypothesis, 300 documents
@settings(max_examples=300, deadline=None)
@given(value=_json_documents)
def test_depth_measured_on_the_text_equals_the_depth_of_the_value(value: object) -> None:
    depth = nesting_depth(json.dumps(value, ensure_ascii=False).encode())
    assert not exceeds_depth(value, depth)
    assert exceeds_depth(value, depth - 1) == (depth > 0)


# The plain reading of the depth limit, the oracle the fast check on raw bytes is held to.
def exceeds_depth(value: Any, limit: int) -> bool:
    """Return whether arrays and objects in `value` nest deeper than `limit` levels.

    `{"a": [1]}` is two levels deep. Iterative, so any depth the JSON parser accepted is safe.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
