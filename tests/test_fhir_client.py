"""FhirClient retry timing with an injected clock: backoff, Retry-After, and the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import responses

from cds_service.hooks.fhir_client import FhirClient, _retry_after, build_session
from cds_service.hooks.prefetch import KeyPlan, KeyState
from cds_service.settings import Settings

URL = "https://ehr.example.org/fhir/Condition"
PLAN = KeyPlan("conditions", KeyState.MISSING, url="Condition?patient=p1")
EMPTY = {"resourceType": "Bundle", "type": "searchset"}


class FakeClock:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(clock: FakeClock, **limits: float) -> FhirClient:
    settings = Settings.model_validate(limits)
    return FhirClient(
        build_session(settings), settings, monotonic=clock.monotonic, sleep=clock.sleep
    )


@responses.activate
def test_backoff_doubles_between_retries() -> None:
    for _ in range(2):
        responses.get(URL, status=502)
    responses.get(URL, json=EMPTY)
    clock = FakeClock()
    result = client(clock, fhir_backoff_seconds=0.1).fetch(
        [PLAN], base_url="https://ehr.example.org/fhir", token=None
    )
    assert result["conditions"].failure is None
    assert clock.sleeps == [0.1, 0.2]


@responses.activate
def test_retry_after_seconds_is_honoured_within_the_deadline() -> None:
    responses.get(URL, status=503, headers={"Retry-After": "1"})
    responses.get(URL, json=EMPTY)
    clock = FakeClock()
    result = client(clock, fhir_deadline_seconds=2.0).fetch(
        [PLAN], base_url="https://ehr.example.org/fhir", token=None
    )
    assert result["conditions"].failure is None
    assert clock.sleeps == [1.0]


@responses.activate
def test_retries_stop_at_the_retry_limit() -> None:
    responses.get(URL, status=504)
    clock = FakeClock()
    result = client(clock, fhir_max_retries=1, fhir_backoff_seconds=0.01).fetch(
        [PLAN], base_url="https://ehr.example.org/fhir", token=None
    )
    assert result["conditions"].failure == "the FHIR server failed (504)"
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param("7", 7.0, id="delay-seconds"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(
            format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True), 0.0, id="past"
        ),
    ],
)
def test_retry_after_header_forms(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds


def test_retry_after_http_date_in_the_future() -> None:
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    delay = _retry_after(header)
    assert delay is not None and 100 < delay <= 120
