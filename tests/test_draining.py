"""Draining on SIGTERM: /readyz answers 503 while every other request is still served, then stop."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.errors import ConfigurationError
from cds_service.settings import load_settings
from cds_service.web.draining import (
    DRAIN_MARKER_VARIABLE,
    install_draining,
    is_draining,
    remove_drain_marker,
)
from tests.conftest import AUTH_OFF, free_port
from tests.openapi_contract import assert_response_matches_openapi
from tests.test_server import get


def test_not_draining_without_a_marker_or_before_sigterm(tmp_path: Path) -> None:
    assert not is_draining({})
    assert not is_draining({DRAIN_MARKER_VARIABLE: str(tmp_path / "draining")})
    (tmp_path / "draining").touch()
    assert is_draining({DRAIN_MARKER_VARIABLE: str(tmp_path / "draining")})


def test_a_draining_instance_is_not_ready_but_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "draining"
    marker.touch()
    monkeypatch.setenv(DRAIN_MARKER_VARIABLE, str(marker))
    client = create_app(AUTH_OFF, environ={}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "not ready",
        "checks": {
            "configuration": "ok",
            "database": "ok",
            "replay_store": "not used",
            "metrics_directory": "not used",
            "shutdown": "draining",
        },
        "failed": ["shutdown"],
    }
    assert_response_matches_openapi(response, method="GET", path="/readyz")
    assert client.get("/cds-services").status_code == 200


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0), ("15", 15)], ids=["off (the default)", "fifteen seconds"]
)
def test_drain_seconds_are_read_from_the_environment(text: str, expected: int) -> None:
    settings = load_settings({"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_DRAIN_SECONDS": text})
    assert settings.drain_seconds == expected


@pytest.mark.parametrize("text", ["-1", "2.5", "soon"])
def test_a_bad_drain_time_stops_start_up_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigurationError, match="MIPOMERSEN_CDS_DRAIN_SECONDS"):
        load_settings({"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_DRAIN_SECONDS": text})


class _Arbiter:
    """The part of gunicorn's Arbiter that draining touches."""

    def __init__(self) -> None:
        self.stops = 0
        self.log = logging.getLogger("test.arbiter")

    def handle_term(self) -> None:
        self.stops += 1


@pytest.mark.parametrize(
    ("seconds", "stops_at_first_sigterm"), [(0, True), (5, False)], ids=["no drain", "drain 5 s"]
)
def test_the_first_sigterm_drains_and_the_second_stops(
    seconds: int, stops_at_first_sigterm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DRAIN_MARKER_VARIABLE, "")  # restored after the test
    arbiter = _Arbiter()
    scheduled: list[int] = []
    directory = install_draining(arbiter, seconds, stop_later=scheduled.append)
    arbiter.handle_term()
    assert arbiter.stops == (1 if stops_at_first_sigterm else 0)
    assert is_draining() is not stops_at_first_sigterm
    assert scheduled == ([] if stops_at_first_sigterm else [seconds])
    arbiter.handle_term()  # the timer's SIGTERM, or a second one from the operator
    assert arbiter.stops == (2 if stops_at_first_sigterm else 1)
    remove_drain_marker()
    assert not directory.exists() and not is_draining()


def _wait_for(port: int, path: str, status: int, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if get(port, path)[0] == status:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never answered {status}")


@pytest.mark.slow  # a gunicorn subprocess drained and stopped
def test_sigterm_drains_then_stops_under_gunicorn(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=Path(__file__).parent.parent,
        env={
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "MIPOMERSEN_CDS_AUTH": "off",
            "MIPOMERSEN_CDS_DATA_DIR": str(tmp_path),
            "MIPOMERSEN_CDS_DRAIN_SECONDS": "2",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(port, "/readyz", 200, seconds=20)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _wait_for(port, "/readyz", 503, seconds=1.5)
        status, body, _ = get(port, "/readyz")
        discovery = [get(port, "/cds-services")[0] for _ in range(5)]  # served while draining
        output = process.communicate(timeout=20)[0].decode()
        stopped_after = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (status, body["checks"].get("shutdown")) == (503, "draining")
    assert discovery == [200] * 5
    assert process.returncode == 0, output
    assert 2 <= stopped_after < 10
    assert "draining for 2 s" in output
