"""Structured logs: one JSON object per line on stderr, and one line per HTTP request.

The request line says what an operator needs (method, path without the query string, service,
hookInstance, status, the card's decision, duration, the client's `iss` and `tenant`) and
nothing a CDS Hooks service must keep to itself: never the JWT, never the EHR's FHIR access
token, never resource contents (CDS Hooks best practices § JWT; 2.0.1 § fhirAuthorization).
Extra data travels in a record's `fields` mapping: `logger.info("...", extra={"fields": {...}})`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from cds_service.auth.authenticator import current_client
from cds_service.web.request_facts import request_facts

__all__ = ["JsonFormatter", "install_request_log", "logging_config"]

REQUEST_LOGGER = "cds_service.requests"
_CORE_KEYS = frozenset({"time", "level", "logger", "message", "exception"})
_MAX_TEXT = 200
# json.dumps(entry, default=str), without building an encoder per line.
_ENCODER = json.JSONEncoder(default=str)

request_logger = logging.getLogger(REQUEST_LOGGER)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, then its `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update((key, value) for key, value in fields.items() if key not in _CORE_KEYS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ASCII: a lone surrogate sent by a client must not break the log stream.
        return _ENCODER.encode(entry)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """Return a `logging.config.dictConfig` sending every logger to stderr as JSON lines.

    gunicorn applies it (`logconfig_dict`) in the master before forking, so workers inherit it;
    its own access log is off, since `install_request_log` writes a richer line per request.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def install_request_log(app: Flask) -> None:
    """Log one line per request of `app`; install it first so the duration covers the rest."""
    app.before_request(_start_clock)
    app.after_request(_log_request)


def _start_clock() -> None:
    request_facts()  # the clock starts when the facts are first asked for


def _log_request(response: Response) -> Response:
    facts = request_facts()
    service = (request.view_args or {}).get("service_id")
    client = current_client()
    fields: dict[str, Any] = {
        "method": request.method,
        "path": request.path[:_MAX_TEXT],
        "service": service[:_MAX_TEXT] if isinstance(service, str) else None,
        "hookInstance": facts.hook_instance,
        "status": response.status_code,
        "decision": facts.decision,
        "duration_ms": round((time.perf_counter() - facts.started) * 1000, 1),
    }
    if client is not None:
        fields["iss"] = client.issuer
        fields["tenant"] = client.tenant
    request_logger.info("request", extra={"fields": fields})
    return response
