"""The playground: a page at /playground that shows cards the way an EHR does, for developers.

Served only when MIPOMERSEN_CDS_PLAYGROUND is on, which `config` allows only with
authentication off (`make run`); a deployed service (authentication on) has none of these
routes, so the evaluation time a developer may pin here never reaches production. The page
and its script and style are files in this package: the browser fetches nothing from
elsewhere, and a Content-Security-Policy of `'self'` only says so to the browser too.

`POST /playground/api/evaluate` runs the same hook call as `POST /cds-services/{id}` (same
parser, rules, cards and audit record) and returns beside the answer what a developer needs to
understand it: the request as sent, the audit record's id, the rule and values that decided,
each card's detail rendered as HTML that cannot run script, and the liver-test timeline.
Feedback goes to the real `POST /cds-services/{id}/feedback`.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request

from cds_service.errors import BadRequest, HttpError, NotFound
from cds_service.hooks.bundles import HOOK_SERVICES, BundleError, bundle_to_hook_request
from cds_service.hooks.discovery import ServiceDefinition, find_service
from cds_service.hooks.evaluation import HookAnswer, answer_hook
from cds_service.hooks.limits import HTTP_LIMITS, bounded_work
from cds_service.hooks.request import decode_json_body
from cds_service.hooks.what_if import with_mipomersen_order
from cds_service.rules import AssessedResult, Evaluation
from cds_service.web.card_html import markdown_to_html
from cds_service.web.responses import json_response
from cds_service.web.state import service_state
from cds_service.web.timeline import timeline_points, timeline_svg
from fhir_mappings import FhirMappingError, parse_fhir_datetime

bp = Blueprint("playground", __name__)

STATIC_DIR = Path(__file__).parent / "playground_static"
# The examples of a source checkout (and of the container image, which copies them).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
_ASSETS = {
    "index.html": "text/html",
    "playground.js": "text/javascript",
    "playground.css": "text/css",
}
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def install_playground(app: Flask) -> None:
    """Serve the playground on `app` (only call this when the playground is on)."""
    app.register_blueprint(bp)


@bp.after_request
def _page_policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/playground")
def page() -> Response:
    """Return the playground page."""
    return _file("index.html")


@bp.get("/playground/static/<name>")
def asset(name: str) -> Response:
    """Return the page's script or style sheet."""
    return _file(name)


@bp.get("/playground/api/examples")
def examples() -> Response:
    """List the example files a developer can pick, with the service each is for."""
    return json_response({"examples": [_describe_example(path) for path in _example_files()]})


@bp.get("/playground/api/examples/<name>")
def example(name: str) -> Response:
    """Return one example file's JSON."""
    for path in _example_files():
        if path.stem == name:
            return Response(path.read_bytes(), mimetype="application/json")
    raise NotFound(f"no example named '{name[:80]}'", path="name")


@bp.post("/playground/api/evaluate")
def evaluate() -> Response:
    """Evaluate a hook request or a Bundle as the service would, and explain the answer."""
    state = service_state()
    # The input sits one level down in the form, so it may nest as deep as the API allows.
    max_depth = state.settings.max_json_depth + 1
    form = decode_json_body(request.get_data(cache=False), max_depth=max_depth)
    if not isinstance(form, dict):
        raise BadRequest("the playground sends a JSON object")
    sent = form.get("input")
    is_bundle = isinstance(sent, dict) and sent.get("resourceType") == "Bundle"
    pinned = _pinned_now(form.get("now"))
    try:
        service, body = _hook_request(form, pinned or state.clock())
    except BundleError as error:
        raise BadRequest(str(error), path="input") from None
    except FhirMappingError as error:
        raise BadRequest(str(error), path=error.path) from None
    try:
        # A hook request meets the HTTP API's limits, so the page decides as the API does; a
        # Bundle (a Synthea patient may hold thousands of resources) is read as `evaluate` does.
        limits = None if is_bundle else HTTP_LIMITS
        bounded = bounded_work(HTTP_LIMITS) if limits else contextlib.nullcontext()
        with state.audit.hook_call(service.id, now=state.clock()) as call, bounded:
            call.body = body
            call.answer = answer = answer_hook(
                body,
                service=service,
                settings=state.settings,
                now=pinned or call.now,
                new_id=state.new_id,
                fetcher=state.fetcher,
                limits=limits,
            )
    except HttpError as error:  # the service's refusal is what the developer came to see
        refused = {"service": service.id, "request": body, "status": error.status}
        return json_response({**refused, "response": error.to_operation_outcome()})
    return json_response(_explain(service, body, answer, call.record_id, pinned or call.now))


def _pinned_now(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "T" not in value:
        raise BadRequest("now must be an ISO 8601 date-time with offset", path="now")
    try:
        moment, _ = parse_fhir_datetime(value, "now")
    except FhirMappingError:
        raise BadRequest(
            "now must be an ISO 8601 date-time with offset, e.g. 2026-11-23T12:00:00Z", path="now"
        ) from None
    return moment


def _hook_request(form: dict[str, Any], now: datetime) -> tuple[ServiceDefinition, Any]:
    """Return the service to call and the request body, building one from a Bundle."""
    sent = form.get("input")
    if not isinstance(sent, dict):
        raise BadRequest(
            "input must be a JSON object: a hook request or a FHIR Bundle", path="input"
        )
    chosen = form.get("service")
    service = find_service(chosen) if isinstance(chosen, str) and chosen else None
    if chosen and service is None:
        raise BadRequest(f"no CDS Service with id '{str(chosen)[:80]}'", path="service")
    if sent.get("resourceType") == "Bundle":
        hook = service.hook if service else None
        if form.get("addDraftOrder") is True:
            sent = with_mipomersen_order(sent, now)  # as `evaluate --add-mipomersen-order`
        return bundle_to_hook_request(sent, hook)
    if service is None:
        hook = sent.get("hook")
        service = HOOK_SERVICES.get(hook) if isinstance(hook, str) else None
    if service is None:
        raise BadRequest(
            "choose a service: the input has no hook this service answers", path="service"
        )
    return service, sent


def _explain(
    service: ServiceDefinition,
    body: Any,
    answer: HookAnswer,
    record_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    settings = service_state().settings
    evaluation = answer.evaluation
    items = [
        item for items in answer.request.prefetch.values() if items is not None for item in items
    ]
    points = timeline_points(
        [*items, *answer.request.draft_orders],
        rules=settings.rules,
        evaluation=evaluation,
        medication_codes=settings.medication_codes,
    )
    return {
        "service": service.id,
        "request": body,
        "status": 200,
        "response": answer.body,
        "now": now.isoformat().replace("+00:00", "Z"),
        "auditRecordId": record_id,
        "decision": _decision(evaluation),
        "cards": [
            {"uuid": card["uuid"], "detailHtml": markdown_to_html(card.get("detail", ""))}
            for card in answer.body["cards"]
        ],
        "timeline": {
            "svg": timeline_svg(
                points,
                elevation=settings.rules.elevation_multiple,
                severe=settings.rules.severe_elevation_multiple,
            ),
            "points": [point.to_json() for point in points],
        },
    }


def _decision(evaluation: Evaluation | None) -> dict[str, Any]:
    if evaluation is None:
        return {"kind": None, "explanation": "mipomersen is not involved in this request"}
    finding = evaluation.decision
    decided: dict[str, Any] = {"kind": evaluation.kind.value, "profile": evaluation.profile.value}
    if finding is None:
        decided["explanation"] = "every required liver test is current and within normal limits"
        return decided
    decided.update(reason=finding.reason.code, rule=finding.rule, source=finding.source)
    values = [finding.deciding, *finding.supporting] if finding.deciding else finding.supporting
    decided["values"] = [
        _value("deciding" if index == 0 and finding.deciding else "supporting", assessed)
        for index, assessed in enumerate(values)
        if assessed is not None
    ]
    return decided


def _value(role: str, assessed: AssessedResult) -> dict[str, Any]:
    """Return one value that decided, in its canonical unit as the card quotes it."""
    result = assessed.result
    unit = result.analyte.canonical_unit
    return {
        "role": role,
        "analyte": result.analyte.value,
        "reported": result.reported,
        "result": f"{round(result.value, 2):g} {unit}",
        "value": result.value,
        "unit": unit,
        "uln": assessed.uln,
        "multiple": None if assessed.multiple is None else round(assessed.multiple, 2),
        "date": result.effective.date().isoformat(),
    }


def _file(name: str) -> Response:
    mimetype = _ASSETS.get(name)
    if mimetype is None:
        raise NotFound(f"no playground file named '{name[:80]}'", path="name")
    return Response((STATIC_DIR / name).read_bytes(), mimetype=mimetype)


def _example_files() -> list[Path]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(EXAMPLES_DIR.glob("*.json"))


def _describe_example(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError):
        content = {}
    is_bundle = isinstance(content, dict) and content.get("resourceType") == "Bundle"
    hook = content.get("hook") if isinstance(content, dict) else None
    service = HOOK_SERVICES.get(hook) if isinstance(hook, str) else None
    return {
        "name": path.stem,
        "kind": "bundle" if is_bundle else "hook request",
        "service": service.id if service else None,
    }
