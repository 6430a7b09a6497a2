"""`mipomersen-cds serve` starts gunicorn (not Flask's development server) and answers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_discovery_under_gunicorn() -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "cds_service.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/cds-services", timeout=2
                ) as r:
                    body = json.load(r)
                    server = r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None, "server did not start"
        assert len(body["services"]) == 3
        assert "gunicorn" in server.lower()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
    assert "Development server" not in output
