"""Serve the app under gunicorn, a production WSGI server (never Flask's development server)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .logging_setup import logging_config


class _GunicornApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn configured in code; each worker builds its own app from the factory."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from .app import create_app

        return create_app()


def run_gunicorn(*, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in the foreground until it is stopped (SIGTERM shuts down gracefully)."""
    _GunicornApplication(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 30,
            "graceful_timeout": 10,
            # JSON lines on stderr; the app logs each request itself (path only, never a token),
            # so gunicorn's access log stays off.
            "logconfig_dict": logging_config(),
        }
    ).run()
