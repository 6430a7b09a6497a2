"""Check HTTP responses against `openapi.yaml`, the service's published contract (OpenAPI 3.1).

HTTP tests call `assert_response_matches_openapi` after each request made with the Flask test
client. It finds the documented operation for the method and path and lets openapi-core validate
the status code, media type, body and headers. A method or path the document does not list has no
operation to check against; such a request must be answered like the document's `NotFound` (404)
or `MethodNotAllowed` (405) component responses, or `Unauthorized` (401: authentication comes
before routing), and those are checked here with JSON Schema.

`schema_validator` gives the same JSON Schema 2020-12 validation (with `$ref`s resolved inside the
document) for tests that check examples or hand-made bodies against one schema.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest
from openapi_schema_validator import OAS31Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

__all__ = [
    "OPENAPI_PATH",
    "assert_response_matches_openapi",
    "load_document",
    "resolve",
    "schema_validator",
]

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
# Requests are matched against the document's only server; the test client's host is irrelevant.
_SERVER_URL = "http://127.0.0.1:8080"
_DOCUMENT_URI = "urn:mipomersen-cds:openapi.yaml"
_BODY_EXCERPT = 2000


def _is_uuid(value: object) -> bool:
    """Return whether a string is a UUID in its hyphenated form (RFC 9562)."""
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36 and all(value[i] == "-" for i in (8, 13, 18, 23))


def _is_absolute_uri(value: object) -> bool:
    """Return whether a string is an absolute URI (a scheme, then something, no spaces)."""
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return (
        bool(parts.scheme)
        and bool(parts.netloc or parts.path)
        and not any(character.isspace() for character in value)
    )


# Neither openapi-core nor openapi-schema-validator checks these formats by default.
_FORMAT_CHECKS: dict[str, Callable[[object], bool]] = {
    "uuid": _is_uuid,
    "uri": _is_absolute_uri,
}


@cache
def load_document() -> dict[str, Any]:
    """Return `openapi.yaml` as parsed JSON data (loaded once)."""
    with OPENAPI_PATH.open(encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.safe_load(stream)
    return document


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_file_path(
        str(OPENAPI_PATH), config=Config(extra_format_validators=_FORMAT_CHECKS)
    )


@cache
def _registry() -> Registry[Any]:
    resource = DRAFT202012.create_resource(load_document())
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    return registry


def _format_checker() -> FormatChecker:
    checker = copy.deepcopy(OAS31Validator.FORMAT_CHECKER)
    for name, check in _FORMAT_CHECKS.items():
        checker.checks(name)(check)
    return checker


def _pointer(*segments: str) -> str:
    return "".join(
        "/" + quote(segment.replace("~", "~0").replace("/", "~1"), safe="") for segment in segments
    )


def resolve(ref: str) -> Any:
    """Return the part of the document a local `$ref` (`#/components/...`) points to."""
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, not {ref!r}")
    node: Any = load_document()
    for segment in ref[2:].split("/"):
        node = node[segment.replace("~1", "/").replace("~0", "~")]
    return node


def schema_validator(*segments: str) -> Validator:
    """Return a JSON Schema 2020-12 validator for the schema at this path in the document.

    `schema_validator("components", "schemas", "Card")` validates against `Card`; `$ref`s are
    resolved inside `openapi.yaml`, and `uuid` and `uri` formats are checked.
    """
    schema = {"$ref": _DOCUMENT_URI + "#" + _pointer(*segments)}
    validator: Validator = OAS31Validator(
        schema, registry=_registry(), format_checker=_format_checker()
    )
    return validator


def _schema_problems(errors: Iterable[ValidationError], *, where: str) -> list[str]:
    problems = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        location = "/".join(str(part) for part in error.absolute_path) or "(root)"
        problems.append(f"{where} at {location}: {error.message}")
    return problems


def _describe(error: BaseException) -> list[str]:
    """Turn an openapi-core error into readable lines, with the JSON Schema errors behind it."""
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return _schema_problems(schema_errors, where="body")
    return [f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else "")]


def _check_component_response(client_response: TestResponse, name: str) -> list[str]:
    """Check a response against `components/responses/<name>`: headers, media type and body."""
    definition: Mapping[str, Any] = load_document()["components"]["responses"][name]
    problems: list[str] = []
    for header, spec in definition.get("headers", {}).items():
        spec = resolve(spec["$ref"]) if "$ref" in spec else spec
        if spec.get("required") and header not in client_response.headers:
            problems.append(f"missing required header {header} (response {name})")
    media_type = client_response.mimetype or ""
    if media_type not in definition["content"]:
        allowed = ", ".join(definition["content"])
        return [*problems, f"media type {media_type!r} is not one of {allowed} (response {name})"]
    try:
        body = json.loads(client_response.get_data())
    except ValueError as exc:
        return [*problems, f"body is not JSON: {exc}"]
    validator = schema_validator("components", "responses", name, "content", media_type, "schema")
    return problems + _schema_problems(validator.iter_errors(body), where="body")


def assert_response_matches_openapi(
    client_response: TestResponse,
    *,
    method: str,
    path: str,
    request_body: bytes | None = None,
    content_type: str = "application/json",
    validate_request: bool = False,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Raise AssertionError unless the response is one `openapi.yaml` allows for this request.

    `path` is the path the test client requested (a query string is allowed). With
    `validate_request=True` the request body, content type and `headers` (e.g. `Authorization`)
    are checked against the document too, for tests whose requests are meant to be conforming.
    """
    url = urlsplit(path)
    request = MockRequest(
        _SERVER_URL,
        method,
        url.path,
        args=dict(parse_qsl(url.query)),
        headers=dict(headers or {}),
        data=request_body,
        content_type=content_type,
    )
    errors = list(
        _openapi().iter_response_errors(request, WerkzeugOpenAPIResponse(client_response))
    )
    problems: list[str]
    if errors and isinstance(errors[0], PathNotFound | OperationNotFound):
        expected_status, component = (
            (404, "NotFound") if isinstance(errors[0], PathNotFound) else (405, "MethodNotAllowed")
        )
        if client_response.status_code == 401:
            expected_status, component = 401, "Unauthorized"
        problems = [f"{errors[0]}: the answer must be {expected_status} (response {component})"]
        if client_response.status_code == expected_status:
            problems = _check_component_response(client_response, component)
    else:
        problems = [line for error in errors for line in _describe(error)]
    if validate_request:
        problems += [
            f"request: {line}"
            for e in _openapi().iter_request_errors(request)
            for line in _describe(e)
        ]
    if problems:
        body = client_response.get_data(as_text=True)
        excerpt = body if len(body) <= _BODY_EXCERPT else body[:_BODY_EXCERPT] + "..."
        raise AssertionError(
            f"{method.upper()} {path} -> {client_response.status} ({client_response.content_type})"
            " does not match openapi.yaml:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
            + f"\nResponse body:\n{excerpt}"
        )
