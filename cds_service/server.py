"""Serve the app under gunicorn, a production WSGI server (never Flask's development server).

`cds_service/gunicorn_conf.py` is the configuration file: `mipomersen-cds serve` loads it, and a
deployer can hand it to gunicorn directly:

    gunicorn -c python:cds_service.gunicorn_conf 'cds_service.app:create_app()'

Workers and threads come from MIPOMERSEN_CDS_WORKERS and MIPOMERSEN_CDS_THREADS; timeouts follow
the longest a request may legitimately take (the FHIR budget plus the database timeout), so a
graceful shutdown lets every request in flight finish and a stuck worker is replaced.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .config import Settings
from .logging_setup import logging_config

CONFIG_MODULE = "cds_service.gunicorn_conf"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client at import


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Return the gunicorn settings for `settings` (the config file's content)."""
    # The longest a request may legitimately take: every FHIR fetch, the audit write, and the
    # service's own work (milliseconds; one second of slack).
    request_budget = settings.fhir.deadline + settings.database_timeout_seconds + 1.0
    graceful = math.ceil(request_budget) + 1
    return {
        "bind": "127.0.0.1:8080",
        "workers": settings.serving.workers,
        "threads": settings.serving.threads,
        "worker_class": "gthread",
        "graceful_timeout": graceful,  # SIGTERM: requests in flight finish within their budget
        "timeout": max(30, 2 * graceful),  # a worker silent this long is killed and replaced
        "keepalive": 5,
        # JSON lines on stderr; the app logs each request itself (path only, never a token),
        # so gunicorn's access log stays off.
        "accesslog": None,
        "logconfig_dict": logging_config(),
    }


def prepare_metrics_directory(data_dir: Path) -> Path:
    """Give the workers an empty directory for their metrics (prometheus_client multiprocess).

    Must run in the master before any worker starts (and before prometheus_client is
    imported), so every worker writes its samples where `/metrics` aggregates them.
    """
    configured = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    directory = Path(configured) if configured else data_dir / "prometheus"
    if directory.exists():
        shutil.rmtree(directory)  # samples of a previous run's workers would be summed in
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    return directory


def on_worker_exit(worker_pid: int) -> None:
    """Drop a dead worker's live gauges from the aggregated metrics (gunicorn child_exit)."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker_pid)  # type: ignore[no-untyped-call]


def warm_up() -> None:
    """Load what the first request would otherwise wait for (gunicorn post_worker_init)."""
    from fhir_mappings import preload_validators

    preload_validators()
    # Everything loaded so far lives as long as the worker: keep the cyclic garbage collector
    # from walking it again on every full collection (shorter pauses under load).
    gc.collect()
    gc.freeze()


class _GunicornApplication(BaseApplication):  # type: ignore[misc]
    """Gunicorn with the project's config file, then the command line's overrides."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        super().__init__()

    def load_config(self) -> None:
        module = importlib.import_module(CONFIG_MODULE)
        for key, value in vars(module).items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)
        for key, value in self._overrides.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from .app import create_app

        return create_app()


def run_gunicorn(
    *, host: str, port: int, workers: int | None = None, threads: int | None = None
) -> None:
    """Run gunicorn in the foreground until stopped; SIGTERM shuts down gracefully."""
    overrides: dict[str, Any] = {"bind": f"{host}:{port}"}
    if workers is not None:
        overrides["workers"] = workers
    if threads is not None:
        overrides["threads"] = threads
    _GunicornApplication(overrides).run()
