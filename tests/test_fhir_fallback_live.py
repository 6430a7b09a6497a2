"""The FHIR fallback against a real HTTP server on loopback: real sockets, real timeouts.

The server serves one example patient under /fhir, and the same data slowly (/slow), never
(/hang: the response never starts) or a byte at a time forever (/trickle). The bounds asserted
are generous multiples of the configured deadline: they prove that a hung server cannot hold a
worker, not how fast anything is (that is the benchmark's job).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from cds_service import create_app
from tests.conftest import AUTH_OFF, NOW, sequential_ids

pytestmark = pytest.mark.slow  # a loopback FHIR server and real timeouts

EXAMPLE = json.loads(
    (Path(__file__).parent.parent / "examples" / "withhold-alt-5x-uln.json").read_text()
)
SIGN = "/cds-services/mipomersen-order-sign"
_BY_TYPE = {
    "Observation": "liverLabs",
    "MedicationRequest": "medications",
    "Condition": "conditions",
}


class _FhirServer(ThreadingHTTPServer):
    daemon_threads = True
    stop: threading.Event
    requests_seen: list[tuple[str, str | None]]


class _Handler(BaseHTTPRequestHandler):
    server: _FhirServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output clean."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.server.requests_seen.append((self.path, self.headers.get("Authorization")))
        mode, _, rest = self.path.lstrip("/").partition("/")
        body = self._resource(rest)
        if mode == "hang":
            self.server.stop.wait(30)
            return
        if mode == "slow":
            time.sleep(0.2)
        payload = json.dumps(body).encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if mode == "trickle":
            for byte in payload:
                if self.server.stop.wait(0.05):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        self.wfile.write(payload)

    def _resource(self, rest: str) -> dict[str, Any]:
        path = urlsplit(rest).path.removeprefix("fhir/")
        kind = path.split("/")[0]
        if kind == "Patient":
            return dict(EXAMPLE["prefetch"]["patient"])
        key = _BY_TYPE.get(kind)
        return dict(EXAMPLE["prefetch"][key]) if key else {}


@pytest.fixture
def fhir_server() -> Iterator[_FhirServer]:
    server = _FhirServer(("127.0.0.1", 0), _Handler)
    server.stop = threading.Event()
    server.requests_seen = []
    # A short poll interval: shutdown() waits for it, 0.5 s by default, after every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def base_url(server: _FhirServer, mode: str) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/{mode}/fhir"


def make_app(**overrides: str) -> Flask:
    settings = {
        **AUTH_OFF,
        "ALLOW_HTTP_FHIR_SERVER": "true",
        "FHIR_BACKOFF_SECONDS": "0.01",
        **overrides,
    }
    return create_app(settings, environ={}, clock=lambda: NOW, new_id=sequential_ids())


def without_prefetch(fhir_server_url: str) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    del body["prefetch"]
    body["fhirServer"] = fhir_server_url
    body["fhirAuthorization"] = {
        "access_token": "live-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "mipomersen-cds",
    }
    return body


def post(app: Flask, body: dict[str, Any]) -> Any:
    return app.test_client().post(SIGN, data=json.dumps(body), content_type="application/json")


def test_fetched_data_gives_the_same_cards_as_prefetched_data(fhir_server: _FhirServer) -> None:
    fetched = post(make_app(), without_prefetch(base_url(fhir_server, "fast")))
    prefetched = post(make_app(), copy.deepcopy(EXAMPLE))
    assert fetched.status_code == 200
    assert fetched.get_json() == prefetched.get_json()
    assert len(fhir_server.requests_seen) == 4
    assert {auth for _, auth in fhir_server.requests_seen} == {"Bearer live-token"}


def test_a_slow_server_within_the_deadline_is_waited_for(fhir_server: _FhirServer) -> None:
    response = post(make_app(), without_prefetch(base_url(fhir_server, "slow")))
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["summary"].startswith("Withhold mipomersen")


@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_a_hung_server_cannot_hold_the_request_past_the_deadline(
    fhir_server: _FhirServer, mode: str
) -> None:
    app = make_app(FHIR_DEADLINE_SECONDS="0.5", FHIR_READ_TIMEOUT_SECONDS="5")
    started = time.monotonic()
    response = post(app, without_prefetch(base_url(fhir_server, mode)))
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert "prefetch.liverLabs" in json.dumps(response.get_json())
    # 0.5 s deadline; the server would hold the socket for 30 s. 5 s leaves room for a slow CI.
    assert elapsed < 5


def test_a_read_timeout_shorter_than_the_deadline_fails_fast(fhir_server: _FhirServer) -> None:
    app = make_app(FHIR_DEADLINE_SECONDS="10", FHIR_READ_TIMEOUT_SECONDS="0.2")
    started = time.monotonic()
    response = post(app, without_prefetch(base_url(fhir_server, "hang")))
    assert response.status_code == 412
    assert "did not answer within the read timeout" in json.dumps(response.get_json())
    assert time.monotonic() - started < 5


def test_a_closed_port_is_a_412_not_a_500() -> None:
    app = make_app()
    response = post(app, without_prefetch("http://127.0.0.1:9/fhir"))
    assert response.status_code == 412
    assert "could not connect" in json.dumps(response.get_json())
