"""Decide what the prefetch lacks and how to get it (CDS Hooks 2.0.1 § Prefetch); no I/O here.

A key needs the FHIR server when it is absent, holds only OperationOutcomes (the client's fetch
failed), or holds a search Bundle with a `next` link (a first page only). `null` means "no data"
and is never fetched; what came in the prefetch is never fetched again: a paged key continues
from its `next` link. Templates are rendered exactly as the spec defines its tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlsplit

from cds_service.hooks.request import HookRequest
from fhir_mappings import FhirItem

_TOKEN = re.compile(r"\{\{(.*?)\}\}")
# The user tokens of CDS Hooks 2.0.1 § Prefetch tokens, by the resource type of context.userId.
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class KeyState(StrEnum):
    """What the request holds under one prefetch key."""

    COMPLETE = "complete"  # data sent, nothing more to fetch
    NULL = "null"  # the client says there is no data
    MISSING = "missing"  # absent, or an OperationOutcome in place of the data
    PARTIAL = "partial"  # a first page with a `next` link


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """How to complete one prefetch key: the items sent, and the URL to fetch (if any)."""

    key: str
    state: KeyState
    items: tuple[FhirItem, ...] = ()
    url: str | None = None  # the rendered template, or the `next` link to continue from
    unresolved: str | None = None  # why the template could not be rendered


@dataclass(frozen=True, slots=True)
class FetchedKey:
    """What the FHIR server gave for one key: the resources, or why it could not."""

    items: tuple[FhirItem, ...] = ()
    failure: str | None = None  # plain-language cause, never containing a token
    notes: tuple[str, ...] = ()  # e.g. a paging limit reached
    seconds: float = 0.0  # how long fetching took, pages and retries included


def plan_key(request: HookRequest, key: str, template: str) -> KeyPlan:
    """Return how to complete `key` of `request` from its `template`."""
    if key in request.prefetch:
        items = request.prefetch[key]
        if items is None:
            return KeyPlan(key, KeyState.NULL)
        if items and all(item.resource_type == "OperationOutcome" for item in items):
            return _missing(request, key, template)
        next_url = request.prefetch_next.get(key)
        if next_url:
            return KeyPlan(key, KeyState.PARTIAL, items=items, url=next_url)
        return KeyPlan(key, KeyState.COMPLETE, items=items)
    return _missing(request, key, template)


def _missing(request: HookRequest, key: str, template: str) -> KeyPlan:
    try:
        url = render_template(template, request)
    except ValueError as error:
        return KeyPlan(key, KeyState.MISSING, unresolved=str(error))
    return KeyPlan(key, KeyState.MISSING, url=url)


def render_template(template: str, request: HookRequest) -> str:
    """Substitute the prefetch tokens of `template`; raise ValueError for an unresolvable one."""

    def replace(match: re.Match[str]) -> str:
        value = _token_value(match.group(1).strip(), request)
        # Ids are [A-Za-z0-9-.]; quoting keeps any other character from changing the query.
        return quote(value, safe="-._~/")

    return _TOKEN.sub(replace, template)


def _token_value(token: str, request: HookRequest) -> str:
    if token.startswith("context."):
        field = token.removeprefix("context.")
        value = request.context.get(field)
        if "." in field or not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"token {{{{{token}}}}} is not a primitive context field")
        return str(value)
    expected_type = _USER_TOKENS.get(token)
    if expected_type is None:
        raise ValueError(f"unknown prefetch token {{{{{token}}}}}")
    resource_type, _, user_id = (request.user_id or "").partition("/")
    if resource_type != expected_type or not user_id:
        raise ValueError(f"token {{{{{token}}}}} needs a {expected_type} user")
    return user_id


def origin(url: str) -> tuple[str, str | None, int | None] | None:
    """Return (scheme, host, port) of `url`, defaulting the port; None when it is malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if port is None:
        port = {"https": 443, "http": 80}.get(scheme)
    return scheme, parts.hostname, port


def same_origin(url: str, base: str) -> bool:
    """Return True when `url` has the scheme, host and port of `base` (RFC 6454 origin)."""
    first = origin(url)
    return first is not None and first[1] is not None and first == origin(base)
