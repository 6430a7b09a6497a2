"""`mipomersen-cds serve` starts gunicorn (not Flask's development server) and answers.

Also proves what only a real multi-process server can: JSON log lines on stderr, and a JWT
replay refused whichever worker gets the second request.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.tokens import bearer, sandbox_token, trusted_issuers

pytestmark = pytest.mark.slow  # gunicorn subprocesses


@contextmanager
def serving(env: dict[str, str], *, port: int, workers: int = 1) -> Iterator[dict[str, Any]]:
    """Run `mipomersen-cds serve` on `port` for the block; the dict then holds its output."""
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    result: dict[str, Any] = {}
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield result
    finally:
        process.send_signal(signal.SIGTERM)
        result["output"] = process.communicate(timeout=20)[0].decode()
        result["returncode"] = process.returncode


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), error.headers


def test_serve_answers_discovery_under_gunicorn_and_logs_json_lines() -> None:
    port = free_port()
    with serving({"MIPOMERSEN_CDS_AUTH": "off"}, port=port) as result:
        status, body, headers = get(port, "/cds-services?patient=secret-query")
    assert status == 200
    assert len(body["services"]) == 3
    assert "gunicorn" in headers.get("Server", "").lower()
    assert headers["Cache-Control"] == "no-store"
    assert result["returncode"] == 0, result["output"]
    assert "Development server" not in result["output"]
    lines = [json.loads(line) for line in result["output"].splitlines() if line.strip()]
    assert any("authentication is OFF" in line["message"] for line in lines)
    (request_line,) = [line for line in lines if line["logger"] == "cds_service.requests"]
    assert request_line["method"] == "GET"
    assert request_line["path"] == "/cds-services"  # never the query string
    assert request_line["status"] == 200
    assert request_line["decision"] == "none"
    assert "secret-query" not in result["output"]


def test_a_replayed_jwt_is_refused_by_every_worker(tmp_path: Path) -> None:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    env = {
        "MIPOMERSEN_CDS_TRUSTED_ISSUERS": trusted_issuers(),
        "MIPOMERSEN_CDS_PUBLIC_URL": public_url,
        "MIPOMERSEN_CDS_DATA_DIR": str(tmp_path),
    }
    token = sandbox_token(aud=public_url + "/cds-services")
    with serving(env, port=port, workers=3) as result:
        # A new connection per request, so the kernel hands them to any of the workers.
        statuses = [get(port, "/cds-services", bearer(token))[0] for _ in range(12)]
        fresh = sandbox_token(aud=public_url + "/cds-services")
        fresh_status = get(port, "/cds-services", bearer(fresh))[0]
    assert result["returncode"] == 0, result["output"]
    assert statuses == [200] + [401] * 11
    assert fresh_status == 200
    assert (tmp_path / "jwt-replay.sqlite3").is_file()
    assert token not in result["output"] and fresh not in result["output"]


METRICS_TOKEN = "scrape-token-for-the-server-test"


def _post(port: int, path: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_metrics_add_up_over_every_worker_and_health_needs_no_jwt(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MIPOMERSEN_CDS_AUTH": "off",
        "MIPOMERSEN_CDS_DATA_DIR": str(tmp_path),
        "MIPOMERSEN_CDS_METRICS_TOKEN": METRICS_TOKEN,
    }
    example = (Path(__file__).parent.parent / "examples" / "withhold-alt-5x-uln.json").read_bytes()
    with serving(env, port=port, workers=3) as result:
        # A new connection per request, so the kernel spreads them over the workers.
        statuses = [_post(port, "/cds-services/mipomersen-order-sign", example) for _ in range(9)]
        health = get(port, "/healthz")[:2]
        ready = get(port, "/readyz")[:2]
        scrape = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        )
        with urllib.request.urlopen(scrape, timeout=5) as response:
            metrics = response.read().decode()
    assert result["returncode"] == 0, result["output"]
    assert statuses == [200] * 9
    assert health == (200, {"status": "ok"})
    assert ready[0] == 200
    (decisions,) = [
        line
        for line in metrics.splitlines()
        if line.startswith("mipomersen_cds_decisions_total{") and 'decision="withhold"' in line
    ]
    assert float(decisions.split()[-1]) == 9.0  # every worker's calls, whichever answered
    assert not (tmp_path / "prometheus").exists()  # on /dev/shm, removed on exit
    assert METRICS_TOKEN not in result["output"]
    # Start-up warnings come from the master once, not from each of the three workers.
    assert result["output"].count("authentication is OFF") == 1
