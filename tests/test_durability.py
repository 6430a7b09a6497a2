"""A 200 means committed: feedback survives a SIGKILL of the server right after the answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.records.storage import AuditRecord, Database, FeedbackRecord, upgrade
from tests.conftest import free_port
from tests.fhir_builders import hook_request, medication_request, observation

pytestmark = pytest.mark.slow  # a gunicorn subprocess killed with SIGKILL and restarted

ROOT = Path(__file__).resolve().parents[1]
SEVERE = hook_request(
    drafts=(medication_request("draft-1"),),
    labs=(observation("ALT", 236, "2026-11-20", high=40),),
)


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[str]:
    """Run `mipomersen-cds serve` (gunicorn) in its own process group; SIGKILL it on exit."""
    port = free_port()
    environment = {
        **os.environ,
        "MIPOMERSEN_CDS_DATABASE_URL": database_url,
        "MIPOMERSEN_CDS_DATA_DIR": str(data_dir),
        "MIPOMERSEN_CDS_AUTH": "off",
        "PYTHONWARNINGS": "ignore",
    }
    command = [sys.executable, "-m", "cds_service.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "1"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the master and its worker
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/cds-services", timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("the server did not start")
        yield base
    finally:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_feedback_answered_200_is_found_after_sigkill_and_restart(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)  # PostgreSQL is migrated explicitly; SQLite would be by serve
    with server(database_url, tmp_path / "data") as base:
        _, answer = post(f"{base}/cds-services/mipomersen-order-sign", SEVERE)
        card = answer["cards"][0]["uuid"]
        item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T12:00:00Z"}
        status, receipt = post(
            f"{base}/cds-services/mipomersen-order-sign/feedback", {"feedback": [item]}
        )
        # The context manager sends SIGKILL to the whole process group the moment this returns.
    assert (status, receipt["feedback"][0]["result"]) == (200, "stored")

    with Database(database_url, timeout_seconds=5) as database, database.session() as session:
        assert session.scalars(select(FeedbackRecord.card_uuid)).all() == [card]
        assert session.scalars(select(AuditRecord.card_uuid)).all() == [card]

    with server(database_url, tmp_path / "data") as base:  # the restarted service sees it too
        status, receipt = post(
            f"{base}/cds-services/mipomersen-order-sign/feedback", {"feedback": [item]}
        )
    assert receipt["feedback"] == [{"card": card, "result": "duplicate", "cardStatus": "issued"}]
