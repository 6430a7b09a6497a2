"""Endpoints for the platform, not for EHRs: liveness, readiness and Prometheus metrics.

`/healthz` and `/readyz` are reachable without a CDS Hooks JWT (load balancers and
orchestrators have none). `/metrics` is served only when MIPOMERSEN_CDS_METRICS_TOKEN is set,
and only to a request bearing that token; it never needs a CDS Hooks JWT either.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from flask import Blueprint, Response, request

from cds_service.auth.authenticator import public_endpoint
from cds_service.errors import NotFound, Unauthorized
from cds_service.settings import Settings
from cds_service.web.draining import is_draining
from cds_service.web.metrics import Metrics
from cds_service.web.readiness import FINE, database_check, metrics_check, replay_check
from cds_service.web.responses import json_response
from cds_service.web.state import service_state

bp = Blueprint("operations", __name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@bp.get("/healthz")
@public_endpoint
def liveness() -> Response:
    """Answer 200 while the process can serve requests at all."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
@public_endpoint
def readiness() -> Response:
    """Answer 200 when every dependency can take writes, else 503 naming the failing checks."""
    state = service_state()
    # The configuration was validated when the app was built; a bad one never gets this far.
    checks = {
        "configuration": "ok",
        "database": database_check(state.database),
        "replay_store": replay_check(state.replay_store),
        "metrics_directory": metrics_check(os.environ),
    }
    if is_draining():  # SIGTERM received: out of rotation while requests in flight finish
        checks["shutdown"] = "draining"
    failed = [name for name, result in checks.items() if result not in FINE]
    body: dict[str, Any] = {"status": "not ready" if failed else "ready", "checks": checks}
    if failed:
        body["failed"] = failed
    return json_response(body, status=503 if failed else 200)


@bp.get("/metrics")
@public_endpoint
def metrics() -> Response:
    """Return the Prometheus metrics to a scraper bearing MIPOMERSEN_CDS_METRICS_TOKEN."""
    state = service_state()
    secret = state.settings.metrics_token
    if secret is None:
        raise NotFound(f"metrics are not enabled (set {Settings.variable('metrics_token')})")
    token = secret.get_secret_value()
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.encode(), token.encode()):
        raise Unauthorized("metrics token missing or wrong", token_sent=bool(sent))
    collector: Metrics = state.metrics
    return Response(collector.exposition(), mimetype=None, content_type=PROMETHEUS_TEXT)
