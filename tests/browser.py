"""Helpers for the playground's browser tests: a live server and Debian's Chromium.

The tests drive Debian's `chromium` package (never a downloaded browser build) with
Playwright. Without Chromium or Playwright they are skipped, with the reason printed
(`.ci/run` installs Chromium, so CI runs them). Screenshots go to `test-artifacts/playground/`
at the repository root (git-ignored); the paths are printed at the end of the run.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import free_port

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "playground"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def why_no_browser() -> str | None:
    """Return why the browser tests cannot run here, or None when they can."""
    if shutil.which(CHROMIUM) is None:
        return (
            "playground browser tests skipped: Chromium is not installed "
            "(apt-get install -y chromium chromium-driver; .ci/run does this)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "playground browser tests skipped: playwright is not installed (pip install -e .[test])"
        )
    return None


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def screenshots_since(started: float) -> list[Path]:
    """Return the screenshots written since `started` (a time.time()), by any test process."""
    if not ARTIFACTS.is_dir():
        return []
    return sorted(path for path in ARTIFACTS.glob("*.png") if path.stat().st_mtime >= started)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact and remember its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
