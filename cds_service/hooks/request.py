"""Parse a CDS Hooks 2.0.1 request body into a typed `HookRequest` (no Flask here).

Checks what the spec and the hook pages (order-select 1.0, order-sign 1.0, patient-view 1.0)
require of the fields this service reads; anything wrong raises `BadRequest` with the dotted
path of the offending field. FHIR content inside `context.draftOrders` and `prefetch` is only
checked for shape here; `fhir_mappings` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cds_service.errors import BadRequest, InvalidFields
from cds_service.hooks.json_limits import (
    DEFAULT_MAX_JSON_DEPTH,
    UnusableValue,
    load_checked,
    nesting_depth,
    printable,
)
from cds_service.hooks.limits import RequestLimits, check_bundle, check_resources
from fhir_mappings import FhirItem, FhirMappingError, read_resources

ORDER_HOOKS = frozenset({"order-select", "order-sign"})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FhirAuthorization:
    """The bearer token the EHR lends for its FHIR server; transient, never logged."""

    access_token: str = field(repr=False)
    token_type: str
    scope: str
    subject: str
    expires_in: int | None = None
    patient: str | None = None


@dataclass(frozen=True, slots=True)
class HookRequest:
    """The parts of a CDS Hooks request this service uses."""

    hook: str
    hook_instance: str
    patient_id: str
    user_id: str | None = None
    encounter_id: str | None = None
    selections: tuple[str, ...] = ()
    draft_orders: tuple[FhirItem, ...] = ()
    # key -> resources sent under it; None when the client sent null ("no data")
    prefetch: Mapping[str, tuple[FhirItem, ...] | None] = field(default_factory=dict)
    prefetch_next: Mapping[str, str] = field(default_factory=dict)  # key -> Bundle `next` link
    context: Mapping[str, Any] = field(default_factory=dict)  # as sent, for prefetch tokens
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None

    @property
    def is_order_hook(self) -> bool:
        """Return True for order-select and order-sign."""
        return self.hook in ORDER_HOOKS

    @property
    def patient_reference(self) -> str:
        """Return the patient in context as a relative reference."""
        return f"Patient/{self.patient_id}"


def decode_json_body(body: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """Decode a request body as UTF-8 JSON, raising `BadRequest` with a clear reason.

    Arrays and objects may nest `max_depth` levels (MIPOMERSEN_CDS_MAX_JSON_DEPTH). A number
    that is no finite double, or text with a lone UTF-16 surrogate, is refused naming its path.
    """
    return decode_checked_body(check_json_body(body, max_depth=max_depth), body, max_depth)


def check_json_body(body: bytes, *, max_depth: int) -> str | None:
    """Refuse a body that is not UTF-8 or nests too deeply; return its text (None: ASCII)."""
    # ASCII is valid UTF-8; other text is decoded now, so that its error is the one reported.
    text = None if body.isascii() else _utf8_text(body)
    if nesting_depth(body) > max_depth:  # refused before the parser spends anything on it
        raise _nested_too_deeply(max_depth)
    return text


def decode_checked_body(text: str | None, body: bytes, max_depth: int) -> Any:
    """Decode a body `check_json_body` passed (`text` is what it returned)."""
    try:
        return load_checked(text, body, parse_constant=_reject_constant)
    except UnusableValue as error:
        raise BadRequest(f"{error.path}: {error.problem}", path=error.path) from None
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise _nested_too_deeply(max_depth) from None


def _utf8_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"request body is not valid UTF-8 (byte {error.start})") from None


def _nested_too_deeply(max_depth: int) -> BadRequest:
    return BadRequest(f"request body is nested too deeply (more than {max_depth} levels)")


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {name} is not a JSON number")


def parse_hook_request(
    body: Any, *, expected_hook: str, limits: RequestLimits | None = None
) -> HookRequest:
    """Check a decoded request against the CDS Hooks 2.0.1 shape for `expected_hook`.

    Every field is checked before anything is refused, so one `InvalidFields` (400) lists
    every problem, each with its dotted path. With `limits` (the HTTP service's), Bundles,
    contained resources and reference ranges over them are refused naming the field; without
    (the command line), nothing is limited.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if "resourceType" in body and "hook" not in body:
        raise BadRequest(
            f"request body is a FHIR {printable(str(body['resourceType']))}, not a CDS Hooks "
            "request; send {hook, hookInstance, context, prefetch} (for a patient Bundle, "
            "`mipomersen-cds evaluate FILE` or the playground builds one)",
            path="resourceType",
        )
    problems = _Problems()
    hook = problems.check(_required_string, body, "hook", "hook")
    if hook is not None and hook != expected_hook:
        problems.add(
            "hook",
            f"hook '{printable(hook)}' does not match this service, which answers "
            f"'{expected_hook}'",
        )
    hook_instance = problems.check(_required_string, body, "hookInstance", "hookInstance")
    context = body.get("context")
    patient_id: str | None = None
    if context is None:
        problems.add("context", "context is required")
    elif not isinstance(context, dict):
        problems.add("context", "context must be a JSON object")
    else:
        patient_id = problems.check(_required_string, context, "patientId", "context.patientId")
    fhir_server = problems.check(_optional_string, body, "fhirServer", "fhirServer")
    authorization = problems.check(_parse_authorization, body.get("fhirAuthorization"))
    if authorization is not None and body.get("fhirServer") is None:
        problems.add("fhirServer", "fhirServer is required when fhirAuthorization is given")
    selections: tuple[str, ...] | None = ()
    draft_orders: tuple[FhirItem, ...] | None = ()
    contents: dict[str, Any] = context if isinstance(context, dict) else {}
    if expected_hook in ORDER_HOOKS and isinstance(context, dict):
        draft_orders = problems.check(_parse_draft_orders, contents, limits)
        if expected_hook == "order-select":
            selections = problems.check(_parse_selections, contents)
    user_id = problems.check(_optional_string, contents, "userId", "context.userId")
    encounter_id = problems.check(_optional_string, contents, "encounterId", "context.encounterId")
    prefetch = problems.check(_parse_prefetch, body.get("prefetch"), limits)
    problems.raise_any()
    assert hook is not None and hook_instance is not None and patient_id is not None
    return HookRequest(
        hook=hook,
        hook_instance=hook_instance,
        patient_id=patient_id,
        user_id=user_id,
        encounter_id=encounter_id,
        selections=selections or (),
        draft_orders=draft_orders or (),
        prefetch=prefetch or {},
        prefetch_next=_prefetch_next_links(body.get("prefetch")),
        context=contents,
        fhir_server=fhir_server,
        fhir_authorization=authorization,
    )


class _Problems:
    """Collects what is wrong with a request, so that one answer names every problem."""

    def __init__(self) -> None:
        self._found: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self._found.append((path, message))

    def check(self, parse: Callable[..., _T], *arguments: Any) -> _T | None:
        """Return what `parse` returns, or None after noting the problem it raised."""
        try:
            return parse(*arguments)
        except BadRequest as error:
            self.add(error.path or "", error.message)
            return None

    def raise_any(self) -> None:
        if self._found:
            raise InvalidFields(self._found)


def _required_string(container: Mapping[str, Any], key: str, path: str) -> str:
    value = container.get(key)
    if value is None:
        raise BadRequest(f"{path} is required", path=path)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{path} must be a non-empty string", path=path)
    return value


def _optional_string(container: Mapping[str, Any], key: str, path: str) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{path} must be a non-empty string", path=path)
    return value


def _parse_authorization(value: Any) -> FhirAuthorization | None:
    if value is None:
        return None
    path = "fhirAuthorization"
    if not isinstance(value, dict):
        raise BadRequest(f"{path} must be a JSON object", path=path)
    expires_in = value.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int)):
        raise BadRequest(f"{path}.expires_in must be an integer", path=f"{path}.expires_in")
    token_type = _required_string(value, "token_type", f"{path}.token_type")
    if token_type.lower() != "bearer":
        raise BadRequest(f"{path}.token_type must be 'Bearer'", path=f"{path}.token_type")
    return FhirAuthorization(
        access_token=_required_string(value, "access_token", f"{path}.access_token"),
        token_type=token_type,
        scope=_required_string(value, "scope", f"{path}.scope"),
        subject=_required_string(value, "subject", f"{path}.subject"),
        expires_in=expires_in,
        patient=_optional_string(value, "patient", f"{path}.patient"),
    )


def _parse_selections(context: Mapping[str, Any]) -> tuple[str, ...]:
    path = "context.selections"
    value = context.get("selections")
    if value is None:
        raise BadRequest(f"{path} is required for order-select", path=path)
    if not isinstance(value, list):
        raise BadRequest(f"{path} must be an array of references", path=path)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise BadRequest(
                f"{path}[{index}] must be a reference such as MedicationRequest/1",
                path=f"{path}[{index}]",
            )
    return tuple(value)


def _parse_draft_orders(
    context: Mapping[str, Any], limits: RequestLimits | None
) -> tuple[FhirItem, ...]:
    path = "context.draftOrders"
    value = context.get("draftOrders")
    if value is None:
        raise BadRequest(f"{path} is required for order hooks", path=path)
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise BadRequest(f"{path} must be a FHIR Bundle", path=path)
    # Whose orders they are is checked with the rest of the data (evaluation, policy 15).
    return _read(value, path, limits)


def _parse_prefetch(
    value: Any, limits: RequestLimits | None
) -> dict[str, tuple[FhirItem, ...] | None]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("prefetch must be a JSON object", path="prefetch")
    return {
        key: None if item is None else _read(item, f"prefetch.{key}", limits)
        for key, item in value.items()
    }


def _prefetch_next_links(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    links = {key: next_link(item) for key, item in value.items() if isinstance(item, dict)}
    return {key: link for key, link in links.items() if link}


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """Return the `next` link of a search Bundle, or None."""
    if bundle.get("resourceType") != "Bundle" or not isinstance(bundle.get("link"), list):
        return None
    for link in bundle["link"]:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            if isinstance(url, str) and url:
                return url
    return None


def _read(value: Any, path: str, limits: RequestLimits | None) -> tuple[FhirItem, ...]:
    if limits is not None and isinstance(value, dict) and value.get("resourceType") == "Bundle":
        check_bundle(value, path, limits)
    try:
        items = tuple(read_resources(value, path))
    except FhirMappingError as error:
        raise BadRequest(str(error), path=error.path) from None
    if limits is not None:
        check_resources(items, limits)
    return items
