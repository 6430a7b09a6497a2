"""Prometheus metrics: hook latency, decisions, FHIR fetches, authentication failures, 412s.

Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set by
`cds_service.cli.serve` before the workers start) and `/metrics` aggregates them all, so any
worker answers for the whole instance. In a single process (tests, `flask run`) each app keeps
its own registry. `/metrics` is served only when MIPOMERSEN_CDS_METRICS_TOKEN is set, and only
to a request carrying that token (Prometheus `authorization` / `bearer_token` config).
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from cds_service.hooks.discovery import SERVICES
from cds_service.web.request_facts import request_facts

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
SERVICE_IDS = frozenset(service.id for service in SERVICES)
_LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's metrics, registered on one registry per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.hook_duration = Histogram(
            "mipomersen_cds_hook_duration_seconds",
            "Time to answer a hook call, FHIR fetches included, by service.",
            ["service"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "mipomersen_cds_decisions",
            "Hook calls answered, by service and decision (none: no card).",
            ["service", "decision"],
            registry=self.registry,
        )
        self.precondition_failed = Counter(
            "mipomersen_cds_precondition_failed",
            "Hook calls answered 412: required FHIR data could not be obtained.",
            ["service"],
            registry=self.registry,
        )
        self.fhir_fetch_duration = Histogram(
            "mipomersen_cds_fhir_fetch_duration_seconds",
            "Time to fetch one prefetch key from the EHR FHIR server, pages and retries included.",
            ["key"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fhir_fetch_failures = Counter(
            "mipomersen_cds_fhir_fetch_failures",
            "Prefetch keys that could not be fetched from the EHR's FHIR server.",
            ["key"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "mipomersen_cds_auth_failures",
            "Requests refused 401: no valid CDS Hooks JWT.",
            registry=self.registry,
        )
        self.audit_write_failures = Counter(
            "mipomersen_cds_audit_write_failures",
            "Audit records that could not be written (the card was still returned).",
            registry=self.registry,
        )
        # Each hook call's labelled samples, found without `labels()` (validation and a lock);
        # a child appears here, and in the exposition, only once it has been used.
        self._hook_durations: dict[str, Histogram] = {}
        self._decisions: dict[tuple[str, str], Counter] = {}

    def hook_duration_of(self, service: str) -> Histogram:
        """Return the hook latency histogram of `service`."""
        child = self._hook_durations.get(service)
        if child is None:
            child = self._hook_durations[service] = self.hook_duration.labels(service)
        return child

    def decisions_of(self, service: str, decision: str) -> Counter:
        """Return the counter of `service`'s calls answered with `decision`."""
        child = self._decisions.get((service, decision))
        if child is None:
            child = self._decisions[service, decision] = self.decisions.labels(service, decision)
        return child

    def observe_fetch(self, key: str, seconds: float, failed: bool) -> None:
        """Record one prefetch key fetched from a FHIR server."""
        self.fhir_fetch_duration.labels(key).observe(seconds)
        if failed:
            self.fhir_fetch_failures.labels(key).inc()

    def count_audit_failure(self) -> None:
        """Record an audit record that could not be written."""
        self.audit_write_failures.inc()

    def exposition(self) -> bytes:
        """Return the metrics in the Prometheus text format (every worker's, under gunicorn)."""
        if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def install_metrics(app: Flask, metrics: Metrics) -> None:
    """Record every hook call's latency, decision and status, and every 401, for `app`."""

    def record(response: Response) -> Response:
        status = response.status_code
        if status == 401:
            metrics.auth_failures.inc()
        service = (request.view_args or {}).get("service_id")
        # Only the services that exist become label values: any path must not grow the registry.
        if request.endpoint == "cds_services.call_service" and service in SERVICE_IDS:
            facts = request_facts()
            elapsed = time.perf_counter() - facts.started
            metrics.hook_duration_of(service).observe(elapsed)
            if status == 200:
                metrics.decisions_of(service, facts.decision).inc()
            elif status == 412:
                metrics.precondition_failed.labels(service).inc()
        return response

    app.after_request(record)
