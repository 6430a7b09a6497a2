"""HTTP endpoints (CDS Hooks 2.0.1 § Discovery, § Calling a CDS Service, § Feedback); thin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, Response, request

from cds_service.errors import NotFound, UnsupportedMediaType
from cds_service.hooks.discovery import (
    SERVICES,
    ServiceDefinition,
    discovery_document,
    find_service,
)
from cds_service.hooks.evaluation import answer_hook
from cds_service.hooks.lab_lane import decode_hook_body
from cds_service.hooks.limits import HTTP_LIMITS, bounded_work
from cds_service.hooks.request import decode_json_body
from cds_service.records.feedback import feedback_response, parse_feedback, store_feedback
from cds_service.web.request_body import read_body
from cds_service.web.request_facts import note_hook_call
from cds_service.web.responses import json_response
from cds_service.web.state import service_state

bp = Blueprint("cds_services", __name__)

_JSON_TYPES = frozenset({"application/json", "application/fhir+json"})


@bp.get("/cds-services")
def discover_services() -> Response:
    """List the services, their hooks and prefetch templates."""
    return json_response(discovery_document())


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Evaluate one hook call and answer with at most one card."""
    service = _service(service_id)
    state = service_state()
    with state.audit.hook_call(service.id, now=state.clock()) as call, bounded_work(HTTP_LIMITS):
        call.body = body = decode_hook_body(
            _json_body(request), max_depth=state.settings.max_json_depth
        )
        note_hook_call(hook_instance=body.get("hookInstance") if isinstance(body, dict) else None)
        call.answer = answer = answer_hook(
            body,
            service=service,
            settings=state.settings,
            now=call.now,
            new_id=state.new_id,
            fetcher=state.fetcher,
            limits=HTTP_LIMITS,
        )
    note_hook_call(decision=answer.evaluation.kind.value if answer.evaluation else "none")
    return json_response(answer.body)


@bp.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str) -> Response:
    """Store what clinicians did with cards (CDS Hooks 2.0.1 § Feedback); 200 once committed."""
    service = _service(service_id)
    items = parse_feedback(_decode(_json_body(request)))
    state = service_state()
    receipts = store_feedback(state.database, service.id, items, received_at=state.clock())
    return json_response(feedback_response(receipts))


def _service(service_id: str) -> ServiceDefinition:
    service = find_service(service_id)
    if service is None:
        known = ", ".join(service.id for service in SERVICES)
        raise NotFound(
            f"no CDS Service with id '{service_id[:80]}'; the services are {known} "
            "(GET /cds-services describes them)",
            path="service_id",
        )
    return service


def _decode(body: bytes) -> Any:
    return decode_json_body(body, max_depth=service_state().settings.max_json_depth)


def _json_body(incoming: Request) -> bytes:
    if incoming.mimetype not in _JSON_TYPES:
        raise UnsupportedMediaType(
            "Content-Type must be application/json (or application/fhir+json)"
        )
    return read_body(incoming.environ, limit=service_state().settings.max_body_bytes)
