"""HTTP endpoints (CDS Hooks 2.0.1 § Discovery and § Calling a CDS Service); thin by design."""

from __future__ import annotations

from flask import Blueprint, Request, Response, request

from .app import service_state
from .discovery import discovery_document, find_service
from .errors import NotFound, UnsupportedMediaType
from .evaluation import answer_hook
from .hook_request import decode_json_body
from .logging_setup import note_hook_call
from .responses import json_response

bp = Blueprint("cds_services", __name__)

_JSON_TYPES = frozenset({"application/json", "application/fhir+json"})


@bp.get("/cds-services")
def discover_services() -> Response:
    """List the services, their hooks and prefetch templates."""
    return json_response(discovery_document())


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Evaluate one hook call and answer with at most one card."""
    service = find_service(service_id)
    if service is None:
        raise NotFound(f"no CDS Service with id '{service_id[:80]}'", path="service_id")
    state = service_state()
    body = decode_json_body(_json_body(request), max_depth=state.settings.security.max_json_depth)
    note_hook_call(hook_instance=body.get("hookInstance") if isinstance(body, dict) else None)
    answer = answer_hook(
        body,
        service=service,
        settings=state.settings,
        now=state.clock(),
        new_id=state.new_id,
        fetcher=state.fetcher,
    )
    note_hook_call(decision=answer.evaluation.kind.value if answer.evaluation else "none")
    return json_response(answer.body)


def _json_body(incoming: Request) -> bytes:
    if incoming.mimetype not in _JSON_TYPES:
        raise UnsupportedMediaType(
            "Content-Type must be application/json (or application/fhir+json)"
        )
    return incoming.get_data(cache=False)
