"""Serve the app under gunicorn, a production WSGI server (never Flask's development server).

`cds_service/cli/gunicorn_conf.py` is the configuration file: `mipomersen-cds serve` loads it,
and a deployer can hand it to gunicorn directly:

    gunicorn -c python:cds_service.cli.gunicorn_conf 'cds_service.app:create_app()'

Workers and threads come from MIPOMERSEN_CDS_WORKERS and MIPOMERSEN_CDS_THREADS; timeouts follow
the longest a request may legitimately take (the FHIR budget plus the database timeout), so a
graceful shutdown lets every request in flight finish and a stuck worker is replaced.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import math
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from cds_service.errors import RefusedByServer
from cds_service.settings import Settings
from cds_service.web.request_log import logging_config

CONFIG_MODULE = "cds_service.cli.gunicorn_conf"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client at import
# Memory-backed, so a full data disk cannot SIGBUS a worker through its mmap'd metrics files.
RUNTIME_ROOT = Path("/dev/shm")
CONTROL_SOCKET_NAME = "gunicorn.ctl"
_MAX_UNIX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Return the gunicorn settings for `settings` (the config file's content)."""
    # The longest a request may legitimately take: every FHIR fetch, the audit write, and the
    # service's own work (milliseconds; one second of slack).
    request_budget = settings.fhir_deadline_seconds + settings.database_timeout_seconds + 1.0
    graceful = math.ceil(request_budget) + 1
    return {
        "bind": "127.0.0.1:8080",
        "workers": settings.workers,
        "threads": settings.threads,
        # gthread, leaving a new connection to a worker with spare threads (gunicorn_worker.py)
        "worker_class": "cds_service.cli.gunicorn_worker.BalancingThreadWorker",
        "graceful_timeout": graceful,  # SIGTERM: requests in flight finish within their budget
        "timeout": max(30, 2 * graceful),  # a worker silent this long is killed and replaced
        "keepalive": 5,
        # JSON lines on stderr; the app logs each request itself (path only, never a token),
        # so gunicorn's access log stays off.
        "accesslog": None,
        "logconfig_dict": logging_config(),
        # gunicorn >= 25.1 opens a control socket in $HOME/.gunicorn by default: keep it in
        # the data directory (or off), so nothing is written outside it.
        **_control_socket(settings.data_dir),
        # The heartbeat file is fchmod'ed every second: keep it off a disk that may fill.
        "worker_tmp_dir": str(RUNTIME_ROOT) if _usable_directory(RUNTIME_ROOT) else None,
        # gunicorn's own limits; its errors are rendered as OperationOutcomes too
        # (`render_server_errors_as_operation_outcomes`).
        "limit_request_line": 4094,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
    }


def _control_socket(data_dir: Path) -> dict[str, Any]:
    path = data_dir.resolve() / CONTROL_SOCKET_NAME
    if len(str(path)) > _MAX_UNIX_SOCKET_PATH:
        return {"control_socket_disable": True}  # no room for it where it belongs
    return {"control_socket": str(path), "control_socket_disable": False}


def _usable_directory(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def default_metrics_directory(data_dir: Path) -> Path:
    """Return where the workers keep their metrics files unless PROMETHEUS_MULTIPROC_DIR says.

    A directory of this instance's own under /dev/shm (tmpfs), named after the data
    directory, so a full data disk cannot kill a worker with SIGBUS while it writes a sample;
    `<data dir>/prometheus` where there is no /dev/shm.
    """
    if not _usable_directory(RUNTIME_ROOT):
        return data_dir / "prometheus"
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return RUNTIME_ROOT / f"mipomersen-cds-{os.getuid()}-{digest}"


def prepare_metrics_directory(data_dir: Path) -> Path:
    """Give the workers an empty directory for their metrics (prometheus_client multiprocess).

    Must run in the master before any worker starts (and before prometheus_client is
    imported), so every worker writes its samples where `/metrics` aggregates them.
    """
    configured = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    directory = Path(configured) if configured else default_metrics_directory(data_dir)
    if directory.exists():
        shutil.rmtree(directory)  # samples of a previous run's workers would be summed in
    directory.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    return directory


def remove_metrics_directory(data_dir: Path) -> None:
    """Remove the default metrics directory when the master exits (gunicorn on_exit)."""
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if directory and Path(directory) == default_metrics_directory(data_dir):
        shutil.rmtree(directory, ignore_errors=True)


def render_server_errors_as_operation_outcomes() -> None:
    """Make gunicorn answer the requests it refuses itself with an OperationOutcome.

    gunicorn refuses some requests before the app sees them (a header field over
    `limit_request_field_size`, e.g. a 10 kB JWT, gets 431; a bad request line 400) and
    writes an HTML page for them. Its worker calls `gunicorn.util.write_error`, replaced here
    in each worker. The reason is gunicorn's fixed phrase; the message, which may quote what
    the client sent, is left out.
    """
    from gunicorn import util

    util.write_error = write_operation_outcome


def write_operation_outcome(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Write a complete HTTP response with a FHIR OperationOutcome (gunicorn's signature)."""
    from gunicorn import util

    error = RefusedByServer(
        f"{reason}: refused by the HTTP server before the service read it", status=status_int
    )
    body = json.dumps(error.to_operation_outcome()).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def on_worker_exit(worker_pid: int) -> None:
    """Drop a dead worker's live gauges from the aggregated metrics (gunicorn child_exit)."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker_pid)  # type: ignore[no-untyped-call]


# How long a worker thread holding the GIL runs before it must offer it to another (Python's
# default is 5 ms). A hook call is CPU work of a few milliseconds: at 5 ms the threads of a
# worker under load take turns mid-request, each turn evicting the other's data from the CPU
# caches, and the worker answered fewer calls with 16 clients than with one. At 20 ms a call
# mostly finishes before its thread gives way (+50 % requests/s with 16 clients, 2 workers x
# 4 threads, 2026-11-30); a thread waiting on I/O (a FHIR fetch, the database) still releases
# the GIL at once, and a health check waits at most this long per running call.
WORKER_SWITCH_INTERVAL_SECONDS = 0.02


def let_calls_finish_their_turn() -> None:
    """Lengthen the GIL switch interval in a gunicorn worker (post_worker_init)."""
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_SECONDS)


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
        from cds_service.app import create_app

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
