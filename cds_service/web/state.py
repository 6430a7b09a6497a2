"""What the routes need per app, set up once by the factory (`cds_service.app.create_app`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app

from cds_service.auth.authenticator import Authenticator
from cds_service.auth.replay import ReplayStore
from cds_service.hooks.evaluation import PrefetchFetcher
from cds_service.records.audit import AuditTrail
from cds_service.records.storage import Database
from cds_service.settings import Settings
from cds_service.web.metrics import Metrics

# The one key of this service in `Flask.extensions`.
EXTENSION_NAME = "mipomersen_cds"


@dataclass(frozen=True, slots=True)
class ServiceState:
    """Settings, the clock, the UUID factory, the FHIR client, the database and its users."""

    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    fetcher: PrefetchFetcher
    database: Database
    audit: AuditTrail  # audit.failures counts audit records that could not be written
    metrics: Metrics
    authenticator: Authenticator | None = None  # None with authentication off

    @property
    def replay_store(self) -> ReplayStore | None:
        """Return the JWT replay store in use (None with authentication off)."""
        return self.authenticator.replay_store if self.authenticator is not None else None


def install_state(app: Flask, state: ServiceState) -> None:
    """Make `state` what `service_state()` returns for requests to `app`."""
    app.extensions[EXTENSION_NAME] = state


def state_of(app: Flask) -> ServiceState:
    """Return the state of `app` (outside a request: tests, the benchmark)."""
    state: ServiceState = app.extensions[EXTENSION_NAME]
    return state


def service_state() -> ServiceState:
    """Return the state of the app handling the current request."""
    return state_of(current_app)
