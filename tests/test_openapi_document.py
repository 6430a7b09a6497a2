"""openapi.yaml: a valid OpenAPI 3.1 document saying what CDS Hooks 2.0.1 and the service require.

Checks the document itself (OpenAPI validity, every example against its schema, the Card
invariants cds-resp-1/2/3/4/6 of the HL7 CDSHooksResponse model, the decision → indicator rule,
the service ids and prefetch keys) and `tests.openapi_contract`, the helper the HTTP tests use,
against a throwaway Flask app.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, jsonify
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from tests.openapi_contract import (
    assert_response_matches_openapi,
    load_document,
    resolve,
    schema_validator,
)

SERVICE_HOOKS = {
    "mipomersen-order-select": "order-select",
    "mipomersen-order-sign": "order-sign",
    "mipomersen-patient-view": "patient-view",
}
PREFETCH_KEYS = {"patient", "liverLabs", "medications", "conditions"}
REQUIRED_PREFETCH_KEYS = {"liverLabs", "medications", "conditions"}
CALL_SERVICE_STATUSES = {"200", "400", "401", "404", "412", "413", "415", "500", "503"}
DISCOVERY_STATUSES = {"200", "401", "500", "503"}
BEARER = {"Authorization": "Bearer eyJhbGciOiJFUzM4NCJ9.e30.c2ln"}  # shape only; not verified
FEEDBACK_STATUSES = {"200", "400", "401", "404", "413", "415", "500", "503"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _example(name: str) -> Any:
    return copy.deepcopy(load_document()["components"]["examples"][name]["value"])


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in load_document()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


# --- the document -------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    document = load_document()
    assert document["openapi"] == "3.1.0"
    validate(document, cls=OpenAPIV31SpecValidator)


def test_info_names_the_package_version_and_the_spec() -> None:
    info = load_document()["info"]
    with PYPROJECT.open("rb") as stream:
        version = tomllib.load(stream)["project"]["version"]
    assert info["version"] == version == "0.1.0"
    assert "CDS Hooks 2.0.1" in info["description"]
    assert "io.github.mipomersen-cds" in info["description"]
    assert "OperationOutcome" in info["description"]
    assert [server["url"] for server in load_document()["servers"]] == ["http://127.0.0.1:8080"]


def test_operations_and_their_responses() -> None:
    operations = {(path, method): op for path, method, op in _operations()}
    assert {(path, method, op["operationId"]) for (path, method), op in operations.items()} == {
        ("/cds-services", "get", "discoverServices"),
        ("/cds-services", "options", "preflightDiscovery"),
        ("/cds-services/{service_id}", "post", "callService"),
        ("/cds-services/{service_id}", "options", "preflightService"),
        ("/cds-services/{service_id}/feedback", "post", "receiveFeedback"),
        ("/cds-services/{service_id}/feedback", "options", "preflightFeedback"),
        ("/healthz", "get", "liveness"),
        ("/readyz", "get", "readiness"),
        ("/metrics", "get", "metrics"),
    }
    assert set(operations["/cds-services", "get"]["responses"]) == DISCOVERY_STATUSES
    assert set(operations["/cds-services/{service_id}", "post"]["responses"]) == (
        CALL_SERVICE_STATUSES
    )
    assert set(operations["/cds-services/{service_id}/feedback", "post"]["responses"]) == (
        FEEDBACK_STATUSES
    )
    feedback = "/cds-services/{service_id}/feedback"
    for path in ("/cds-services", "/cds-services/{service_id}", feedback):
        assert set(operations[path, "options"]["responses"]) == {"204"}


def test_every_operation_but_the_preflight_requires_the_jwt() -> None:
    document = load_document()
    assert document["security"] == [{"cdsHooksJwt": []}]
    scheme = document["components"]["securitySchemes"]["cdsHooksJwt"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    for claim in ("iss", "aud", "exp", "iat", "jti", "kid", "typ", "ES384", "RS384"):
        assert claim in scheme["description"]
    for path, method, operation in _operations():
        if method == "options" or path in ("/healthz", "/readyz"):
            assert operation["security"] == [], path  # preflight, platform health checks
        elif path == "/metrics":
            assert operation["security"] == [{"metricsToken": []}]
        else:
            assert "security" not in operation, path
            assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}


def _responses() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            yield f"{method.upper()} {path} {status}", response
    for name, response in load_document()["components"]["responses"].items():
        yield f"components/responses/{name}", response


@pytest.mark.parametrize(
    ("where", "response"),
    [pytest.param(where, response, id=where) for where, response in _responses()],
)
def test_every_response_has_json_content_with_an_example(
    where: str, response: dict[str, Any]
) -> None:
    response = resolve(response["$ref"]) if "$ref" in response else response
    if response is resolve("#/components/responses/Preflight"):
        assert "content" not in response  # 204 No Content
        return
    if where == "GET /metrics 200":  # the Prometheus text format, not JSON
        assert set(response["content"]) == {"text/plain"}
        return
    assert "application/json" in response["content"], where
    assert response["content"]["application/json"].get("examples"), where


ERROR_RESPONSES = sorted(set(load_document()["components"]["responses"]) - {"Preflight"})


@pytest.mark.parametrize("name", ERROR_RESPONSES)
def test_every_error_response_is_an_operation_outcome(name: str) -> None:
    response = load_document()["components"]["responses"][name]
    assert set(response["content"]) == {"application/json", "application/fhir+json"}
    for media_type in response["content"].values():
        assert media_type["schema"] == {"$ref": "#/components/schemas/OperationOutcome"}


@pytest.mark.parametrize("name", sorted(load_document()["components"]["responses"]))
def test_every_response_says_it_is_neither_cached_nor_sniffed(name: str) -> None:
    headers = load_document()["components"]["responses"][name]["headers"]
    assert headers["Cache-Control"] == {"$ref": "#/components/headers/CacheControl"}
    assert headers["X-Content-Type-Options"] == {"$ref": "#/components/headers/XContentTypeOptions"}


def test_method_not_allowed_requires_an_allow_header() -> None:
    headers = load_document()["components"]["responses"]["MethodNotAllowed"]["headers"]
    assert resolve(headers["Allow"]["$ref"])["required"] is True


# --- every example against its schema ------------------------------------------------------------


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _examples_beside_schemas(
    node: Any, segments: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """Yield (id, schema path, value) for each example of a media type, parameter or header."""
    if not isinstance(node, dict):
        return
    if "schema" in node:
        where = "/".join(segments)
        if "example" in node:
            yield where, (*segments, "schema"), node["example"]
        for name, example in node.get("examples", {}).items():
            example = resolve(example["$ref"]) if "$ref" in example else example
            yield f"{where}:{name}", (*segments, "schema"), example["value"]
    for key, child in node.items():
        if key not in ("schema", "schemas", "example", "examples"):
            yield from _examples_beside_schemas(child, (*segments, key))


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMAS = (
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)


def _examples_in_schemas(
    schema: Any, segments: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """Yield (id, schema path, value) for each value of a JSON Schema `examples` keyword."""
    if not isinstance(schema, dict):
        return
    for index, value in enumerate(schema.get("examples", [])):
        yield f"{'/'.join(segments)}[{index}]", segments, value
    for keyword in _SUBSCHEMA_MAPS:
        for name, child in schema.get(keyword, {}).items():
            yield from _examples_in_schemas(child, (*segments, keyword, name))
    for keyword in _SUBSCHEMA_LISTS:
        for index, child in enumerate(schema.get(keyword, [])):
            yield from _examples_in_schemas(child, (*segments, keyword, str(index)))
    for keyword in _SUBSCHEMAS:
        yield from _examples_in_schemas(schema.get(keyword), (*segments, keyword))


def _all_examples() -> list[tuple[str, tuple[str, ...], Any]]:
    document = load_document()
    found = list(_examples_beside_schemas(document))
    for name, schema in document["components"]["schemas"].items():
        found += _examples_in_schemas(schema, ("components", "schemas", name))
    return found


def test_examples_are_found_everywhere() -> None:
    where = [example_id for example_id, _, _ in _all_examples()]
    assert any(w.startswith("paths//cds-services/get/responses/200/content/") for w in where)
    assert any(w.startswith("paths//cds-services/{service_id}/post/requestBody/") for w in where)
    assert any(w.startswith("components/parameters/ServiceId:") for w in where)
    assert any(w.startswith("components/headers/Allow") for w in where)
    assert any(w.startswith("components/schemas/") for w in where)
    error_examples = [w for w in where if w.startswith("components/responses/")]
    assert len(error_examples) >= len(load_document()["components"]["responses"])


@pytest.mark.parametrize(
    ("schema_path", "value"),
    [pytest.param(path, value, id=example_id) for example_id, path, value in _all_examples()],
)
def test_example_matches_its_schema(schema_path: tuple[str, ...], value: Any) -> None:
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in schema_validator(*schema_path).iter_errors(value)
    ]
    assert errors == []


# --- Card: what CDS Hooks 2.0.1 and the HL7 invariants forbid -------------------------------------


def _card() -> dict[str, Any]:
    card: dict[str, Any] = _example("WithholdResponse")["cards"][0]
    return card


def _failed_keywords(errors: list[ValidationError]) -> set[str]:
    """Return the JSON Schema keywords that failed, including those inside allOf/anyOf/if."""
    keywords: set[str] = set()
    pending = list(errors)
    while pending:
        error = pending.pop()
        keywords.add(str(error.validator))
        pending.extend(error.context)
    return keywords


def _card_errors(card: dict[str, Any]) -> list[ValidationError]:
    return list(schema_validator("components", "schemas", "Card").iter_errors(card))


def test_withhold_card_is_valid() -> None:
    assert _card_errors(_card()) == []


def test_summary_of_139_characters_is_valid() -> None:
    card = _card()
    card["summary"] = "x" * 139
    assert _card_errors(card) == []


def _without_selection_behavior(card: dict[str, Any]) -> None:
    del card["selectionBehavior"]


def _override_reason_without_display(card: dict[str, Any]) -> None:
    del card["overrideReasons"][0]["display"]


def _summary_of_140_characters(card: dict[str, Any]) -> None:
    card["summary"] = "x" * 140


def _delete_action_with_resource(card: dict[str, Any]) -> None:
    card["suggestions"][0]["actions"][0]["resource"] = {
        "resourceType": "MedicationRequest",
        "id": "mipo-draft-1",
    }


def _delete_action_without_resource_id(card: dict[str, Any]) -> None:
    del card["suggestions"][0]["actions"][0]["resourceId"]


def _create_action_without_resource(card: dict[str, Any]) -> None:
    del card["suggestions"][1]["actions"][0]["resource"]


def _two_recommended_with_at_most_one(card: dict[str, Any]) -> None:
    card["selectionBehavior"] = "at-most-one"
    card["suggestions"][1]["isRecommended"] = True


def _app_context_on_absolute_link(card: dict[str, Any]) -> None:
    card["links"] = [
        {"label": "Label", "url": "https://example.org/", "type": "absolute", "appContext": "x"}
    ]


def _warning_for_withhold(card: dict[str, Any]) -> None:
    card["indicator"] = "warning"


def _critical_for_monitor_closely(card: dict[str, Any]) -> None:
    card["extension"]["io.github.mipomersen-cds"]["decision"] = "monitor-closely"


def _null_detail(card: dict[str, Any]) -> None:
    card["detail"] = None


def _empty_suggestions(card: dict[str, Any]) -> None:
    card["suggestions"] = []


def _without_extension(card: dict[str, Any]) -> None:
    del card["extension"]


def _decision_without_profile(card: dict[str, Any]) -> None:
    del card["extension"]["io.github.mipomersen-cds"]["profile"]


def _unknown_field(card: dict[str, Any]) -> None:
    card["selectionBehaviour"] = "any"


def _topic_without_system(card: dict[str, Any]) -> None:
    card["source"]["topic"] = {"code": "liver-safety"}


def _card_uuid_not_a_uuid(card: dict[str, Any]) -> None:
    card["uuid"] = "card-1"


@pytest.mark.parametrize(
    ("change", "keyword"),
    [
        pytest.param(_without_selection_behavior, "dependentRequired", id="cds-resp-6"),
        pytest.param(_override_reason_without_display, "required", id="cds-resp-4"),
        pytest.param(_summary_of_140_characters, "maxLength", id="summary-140"),
        pytest.param(_delete_action_with_resource, "not", id="cds-resp-2-resource"),
        pytest.param(_delete_action_without_resource_id, "required", id="cds-resp-2-resourceId"),
        pytest.param(_create_action_without_resource, "required", id="create-needs-resource"),
        pytest.param(_two_recommended_with_at_most_one, "maxContains", id="cds-resp-1"),
        pytest.param(_app_context_on_absolute_link, "not", id="cds-resp-3"),
        pytest.param(_warning_for_withhold, "const", id="withhold-is-critical"),
        pytest.param(_critical_for_monitor_closely, "const", id="monitor-closely-is-info"),
        pytest.param(_null_detail, "type", id="no-null"),
        pytest.param(_empty_suggestions, "minItems", id="no-empty-array"),
        pytest.param(_without_extension, "required", id="extension-required"),
        pytest.param(_decision_without_profile, "required", id="profile-required"),
        pytest.param(_unknown_field, "additionalProperties", id="closed-card"),
        pytest.param(_topic_without_system, "required", id="coding-system-required"),
        pytest.param(_card_uuid_not_a_uuid, "format", id="uuid-format"),
    ],
)
def test_card_schema_rejects(change: Callable[[dict[str, Any]], None], keyword: str) -> None:
    card = _card()
    change(card)
    errors = _card_errors(card)
    assert errors, "the changed card was accepted"
    assert keyword in _failed_keywords(errors)


def test_response_holds_at_most_one_card() -> None:
    body = _example("WithholdResponse")
    body["cards"].append(copy.deepcopy(body["cards"][0]))
    validator = schema_validator("components", "schemas", "CdsServiceResponse")
    assert "maxItems" in _failed_keywords(list(validator.iter_errors(body)))


def test_fhir_authorization_requires_fhir_server() -> None:
    request = _example("PatientViewRequest")
    del request["fhirServer"]
    validator = schema_validator("components", "schemas", "CdsServiceRequest")
    assert "dependentRequired" in _failed_keywords(list(validator.iter_errors(request)))


def test_request_context_follows_its_hook() -> None:
    request = _example("OrderSelectRequest")
    del request["context"]["selections"]
    validator = schema_validator("components", "schemas", "CdsServiceRequest")
    assert "required" in _failed_keywords(list(validator.iter_errors(request)))
    request["hook"] = "order-sign"
    assert list(validator.iter_errors(request)) == []


# --- services and prefetch keys ------------------------------------------------------------------


def test_documented_service_ids_and_hooks() -> None:
    document = load_document()
    schemas = document["components"]["schemas"]
    discovery = _example("Discovery")
    assert {service["id"]: service["hook"] for service in discovery["services"]} == SERVICE_HOOKS
    assert len(discovery["services"]) == len(SERVICE_HOOKS)
    service_id = document["components"]["parameters"]["ServiceId"]
    assert set(service_id["schema"]["enum"]) == set(SERVICE_HOOKS)
    assert {example["value"] for example in service_id["examples"].values()} == set(SERVICE_HOOKS)
    assert set(schemas["CdsService"]["properties"]["id"]["enum"]) == set(SERVICE_HOOKS)
    assert set(schemas["CdsService"]["properties"]["hook"]["enum"]) == set(SERVICE_HOOKS.values())
    assert set(schemas["CdsServiceRequest"]["properties"]["hook"]["enum"]) == set(
        SERVICE_HOOKS.values()
    )


def test_discovery_schema_ties_each_id_to_its_hook() -> None:
    discovery = _example("Discovery")
    discovery["services"][0]["hook"] = "order-sign"
    validator = schema_validator("components", "schemas", "Discovery")
    assert "const" in _failed_keywords(list(validator.iter_errors(discovery)))


def test_documented_prefetch_keys() -> None:
    schemas = load_document()["components"]["schemas"]
    templates = schemas["PrefetchTemplates"]
    assert set(templates["properties"]) == set(templates["required"]) == PREFETCH_KEYS
    assert set(schemas["Prefetch"]["properties"]) == PREFETCH_KEYS
    for service in _example("Discovery")["services"]:
        assert set(service["prefetch"]) == PREFETCH_KEYS
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "412" in service["usageRequirements"]
    for key in REQUIRED_PREFETCH_KEYS:
        assert (
            key in load_document()["components"]["responses"]["PreconditionFailed"]["description"]
        )


# --- the contract helper, against a throwaway app -------------------------------------------------


def _operation_outcome(code: str, message: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }


def _tiny_app(discovery: dict[str, Any], *, allow_header: bool = True) -> Flask:
    """Return an app with the two documented routes; errors are OperationOutcomes."""
    app = Flask(__name__)

    @app.after_request
    def protective_headers(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/cds-services")
    def discover() -> Response:
        return jsonify(discovery)

    @app.post("/cds-services/<service_id>")
    def call(service_id: str) -> tuple[Response, int]:
        if service_id not in SERVICE_HOOKS:
            return jsonify(_operation_outcome("not-found", "No such service")), 404
        return jsonify({"cards": []}), 200

    @app.errorhandler(HTTPException)
    def error(exc: HTTPException) -> tuple[Response, int]:
        response = jsonify(_operation_outcome("not-supported", exc.name))
        if allow_header and isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
        return response, exc.code or 500

    return app


def test_helper_accepts_a_valid_discovery_response() -> None:
    response = _tiny_app(_example("Discovery")).test_client().get("/cds-services")
    assert_response_matches_openapi(response, method="GET", path="/cds-services")


def test_helper_rejects_an_invalid_discovery_response() -> None:
    discovery = _example("Discovery")
    del discovery["services"][1]["description"]
    discovery["services"][2]["prefetch"]["conditions"] = None
    response = _tiny_app(discovery).test_client().get("/cds-services")
    with pytest.raises(AssertionError) as raised:
        assert_response_matches_openapi(response, method="GET", path="/cds-services")
    message = str(raised.value)
    assert message.startswith("GET /cds-services -> 200 OK (application/json)")
    assert "services/1: 'description' is a required property" in message
    assert "services/2/prefetch/conditions: None is not of type 'string'" in message


def test_helper_checks_the_call_and_optionally_the_request() -> None:
    client = _tiny_app(_example("Discovery")).test_client()
    path = "/cds-services/mipomersen-order-select"
    good = json.dumps(_example("OrderSelectRequest")).encode()
    response = client.post(path, data=good, content_type="application/json")
    assert_response_matches_openapi(
        response,
        method="POST",
        path=path,
        request_body=good,
        validate_request=True,
        headers=BEARER,
    )
    bad_request = _example("OrderSelectRequest")
    bad_request["hookInstance"] = "not-a-uuid"
    bad = json.dumps(bad_request).encode()
    response = client.post(path, data=bad, content_type="application/json")
    assert_response_matches_openapi(response, method="POST", path=path, request_body=bad)
    with pytest.raises(AssertionError, match="request: body at hookInstance"):
        assert_response_matches_openapi(
            response,
            method="POST",
            path=path,
            request_body=bad,
            validate_request=True,
            headers=BEARER,
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/cds-services/mipomersen-liver"),  # documented 404: unknown service id
        ("GET", "/cds-services/mipomersen-order-sign"),  # 405, Allow: OPTIONS, POST
        ("POST", "/cds-services"),  # 405, Allow: GET, HEAD, OPTIONS
        ("DELETE", "/cds-services"),
        ("POST", "/cds-services/mipomersen-order-sign/history"),  # undocumented path: 404
        ("GET", "/health"),
    ],
)
def test_helper_accepts_documented_errors(method: str, path: str) -> None:
    client = _tiny_app(_example("Discovery")).test_client()
    response = client.open(path, method=method, json={})
    assert response.status_code in (404, 405)
    assert_response_matches_openapi(response, method=method, path=path, request_body=b"{}")


def test_helper_requires_the_allow_header_on_405() -> None:
    client = _tiny_app(_example("Discovery"), allow_header=False).test_client()
    response = client.get("/cds-services/mipomersen-order-sign")
    with pytest.raises(AssertionError, match="missing required header Allow"):
        assert_response_matches_openapi(
            response, method="GET", path="/cds-services/mipomersen-order-sign"
        )


def test_helper_rejects_an_html_404() -> None:
    response = Flask(__name__).test_client().get("/cds-services/x/history")
    assert response.status_code == 404
    with pytest.raises(AssertionError, match="media type 'text/html' is not one of"):
        assert_response_matches_openapi(response, method="GET", path="/cds-services/x/history")


def test_helper_rejects_a_status_the_document_does_not_list() -> None:
    app = Flask(__name__)
    app.add_url_rule(
        "/cds-services",
        "teapot",
        lambda: (jsonify(_operation_outcome("exception", "I am a teapot")), 418),
    )
    response = app.test_client().get("/cds-services")
    with pytest.raises(AssertionError, match="418"):
        assert_response_matches_openapi(response, method="GET", path="/cds-services")


def test_helper_rejects_an_unexpected_status_on_an_undocumented_path() -> None:
    app = Flask(__name__)
    app.add_url_rule("/health", "health", lambda: jsonify({"status": "ok"}))
    response = app.test_client().get("/health")
    with pytest.raises(AssertionError, match="the answer must be 404"):
        assert_response_matches_openapi(response, method="GET", path="/health")


# --- Feedback: what CDS Hooks 2.0.1, the HL7 invariants and this service refuse -------------------


def _feedback_errors(item: dict[str, Any]) -> list[ValidationError]:
    validator = schema_validator("components", "schemas", "FeedbackRequest")
    return list(validator.iter_errors({"feedback": [item]}))


_ACCEPTED = _example("FeedbackAccepted")["feedback"][0]
_OVERRIDDEN = _example("FeedbackOverriddenWithReason")["feedback"][0]


@pytest.mark.parametrize(
    ("item", "keyword"),
    [
        pytest.param(
            {k: v for k, v in _ACCEPTED.items() if k != "acceptedSuggestions"},
            "required",
            id="cds-fb-2",
        ),
        pytest.param({**_ACCEPTED, "acceptedSuggestions": []}, "minItems", id="cds-fb-2-empty"),
        pytest.param({**_OVERRIDDEN, "overrideReason": {}}, "anyOf", id="cds-fb-3"),
        pytest.param(
            {**_OVERRIDDEN, "acceptedSuggestions": _ACCEPTED["acceptedSuggestions"]},
            "maxItems",
            id="overridden-with-suggestions",
        ),
        pytest.param(
            {**_ACCEPTED, "overrideReason": _OVERRIDDEN["overrideReason"]},
            "not",
            id="accepted-with-reason",
        ),
        pytest.param(
            {**_ACCEPTED, "outcomeTimestamp": "2021-12-11T10:05:31"}, "pattern", id="no-zone"
        ),
        pytest.param({**_ACCEPTED, "card": "card-1"}, "format", id="card-uuid"),
        pytest.param(
            {**_OVERRIDDEN, "overrideReason": {"reason": {"code": "x"}}},
            "required",
            id="coding-system-required",
        ),
    ],
)
def test_feedback_schema_rejects(item: dict[str, Any], keyword: str) -> None:
    errors = _feedback_errors(item)
    assert errors, "the changed item was accepted"
    assert keyword in _failed_keywords(errors)


def test_feedback_schema_accepts_a_reason_without_display_as_the_sandbox_sends_it() -> None:
    reason = {"reason": {"system": "urn:example", "code": "d7ecf885"}}
    assert _feedback_errors({**_OVERRIDDEN, "overrideReason": reason}) == []
