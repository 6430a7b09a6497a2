"""The Flask application factory (no module-level app, settings or sessions)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import requests
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from cds_service.auth.authenticator import install_authentication
from cds_service.errors import HttpError, InternalError, from_werkzeug
from cds_service.hooks.fhir_client import FhirClient, build_session
from cds_service.records.audit import AuditTrail
from cds_service.records.storage import open_database
from cds_service.settings import load_settings, require_serving_settings
from cds_service.web.hardening import install_http_hardening
from cds_service.web.metrics import Metrics, install_metrics
from cds_service.web.operations import bp as operations_bp
from cds_service.web.request_log import install_request_log
from cds_service.web.responses import json_response
from cds_service.web.routes import bp as routes_bp
from cds_service.web.startup import log_startup_notes_once
from cds_service.web.state import ServiceState, install_state

logger = logging.getLogger(__name__)


def create_app(
    overrides: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    new_id: Callable[[], str] | None = None,
    fhir_session: requests.Session | None = None,
) -> Flask:
    """Build the app: defaults, then `MIPOMERSEN_CDS_*` from `environ`, then `overrides`.

    `overrides` use unprefixed names (`{"PROFILE": "conservative"}`). A bad value raises
    `ConfigurationError` naming the variable, and so does authentication left on (the default)
    without trusted issuers or a public URL. `clock` and `new_id` are the seams that make
    responses reproducible in tests; `fhir_session` replaces the pooled session used to reach
    EHR FHIR servers. The database is opened here (a SQLite database is migrated to the current
    schema); `ServiceState.database.close()` releases it.
    """
    settings = load_settings(os.environ if environ is None else environ, overrides)
    require_serving_settings(settings)  # refuse before anything touches the disk
    database = open_database(
        settings.database_url,
        timeout_seconds=settings.database_timeout_seconds,
        tolerate_outage=True,
    )
    log_startup_notes_once(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    metrics = Metrics()
    # Order matters: the request log times everything; preflights are answered before auth.
    install_request_log(app)
    install_metrics(app, metrics)
    install_http_hardening(app, settings)
    authenticator = install_authentication(app, settings)
    install_state(
        app,
        ServiceState(
            settings=settings,
            clock=clock or _utc_now,
            new_id=new_id or _random_uuid,
            fetcher=FhirClient(
                fhir_session or build_session(settings),
                settings,
                observe=metrics.observe_fetch,
            ),
            database=database,
            audit=AuditTrail(
                database, profile=settings.rules.profile, on_failure=metrics.count_audit_failure
            ),
            metrics=metrics,
            authenticator=authenticator,
        ),
    )
    app.register_blueprint(routes_bp)
    app.register_blueprint(operations_bp)
    if settings.playground:  # only ever with authentication off (config refuses otherwise)
        from cds_service.web.playground import install_playground

        install_playground(app)
    app.register_error_handler(HttpError, _render_http_error)
    app.register_error_handler(HTTPException, _render_werkzeug_error)
    app.register_error_handler(Exception, _render_unexpected_error)
    return app


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _random_uuid() -> str:
    return str(uuid.uuid4())


def _render_http_error(error: HttpError) -> Response:
    return json_response(error.to_operation_outcome(), status=error.status, headers=error.headers())


def _render_werkzeug_error(error: HTTPException) -> Response:
    return _render_http_error(from_werkzeug(error))


def _render_unexpected_error(error: Exception) -> Response:
    # The stack trace goes to the log only; the client learns nothing about internals.
    logger.exception("unexpected error while handling a request")
    return _render_http_error(InternalError())
