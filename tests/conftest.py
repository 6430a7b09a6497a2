"""Shared fixtures: apps (auth off, or required) with a fixed clock and predictable UUIDs.

Every test runs in its own working directory with its own MIPOMERSEN_CDS_DATA_DIR, so the
default SQLite database is the test's own. `tests.databases` adds the database fixtures.
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.web.state import EXTENSION_NAME
from tests.tokens import auth_settings, ec_key, rsa_key

pytest_plugins = ["tests.databases", "tests.slow_report"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sequential_ids() -> Callable[[], str]:
    """Return a UUID factory giving 00000000-0000-4000-8000-000000000001, ...2, ..."""
    counter = itertools.count(1)
    return lambda: str(uuid.UUID(int=(0x4000 << 64) | (0x8 << 60) | next(counter)))


# Functional tests run with authentication off; tests/test_auth.py covers it switched on.
AUTH_OFF = {"AUTH": "off"}


@pytest.fixture(autouse=True)
def _own_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIPOMERSEN_CDS_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def app() -> Iterator[Flask]:
    app = create_app(AUTH_OFF, environ={}, clock=lambda: NOW, new_id=sequential_ids())
    yield app
    app.extensions[EXTENSION_NAME].database.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth_app(tmp_path: Path) -> Flask:
    """An app with authentication required, trusting the sandbox issuer's ES384 and RS384 keys."""
    return create_app(
        auth_settings(tmp_path, ec_key(), rsa_key()),
        environ={},
        clock=lambda: NOW,
        new_id=sequential_ids(),
    )


@pytest.fixture
def auth_client(auth_app: Flask) -> FlaskClient:
    return auth_app.test_client()


_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say why the browser tests were skipped, or where their screenshots are.

    The screenshots are found on disk, not in a list in memory: with pytest-xdist the browser
    tests run in a worker process, and this summary in the controller.
    """
    from tests.browser import screenshots_since, why_no_browser

    reason = why_no_browser()
    if reason is not None:
        terminalreporter.write_line(reason)
    screenshots = screenshots_since(terminalreporter.config.stash[_STARTED])
    if screenshots:
        terminalreporter.write_line("playground screenshots (test artifacts):")
        for path in screenshots:
            terminalreporter.write_line(f"  {path}")
