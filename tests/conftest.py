"""Shared fixtures: an app with a fixed clock and predictable UUIDs, and its test client."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app

pytest_plugins = ["tests.databases"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def sequential_ids() -> Callable[[], str]:
    """Return a UUID factory giving 00000000-0000-4000-8000-000000000001, ...2, ..."""
    counter = itertools.count(1)
    return lambda: str(uuid.UUID(int=(0x4000 << 64) | (0x8 << 60) | next(counter)))


@pytest.fixture
def app() -> Flask:
    return create_app(environ={}, clock=lambda: NOW, new_id=sequential_ids())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
