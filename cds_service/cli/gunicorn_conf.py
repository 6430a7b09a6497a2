"""Gunicorn configuration for mipomersen-cds, from the MIPOMERSEN_CDS_* settings.

    gunicorn -c python:cds_service.cli.gunicorn_conf 'cds_service.app:create_app()'

`mipomersen-cds serve` loads this file too; see `cds_service.cli.serve` for what each value means.
"""

from __future__ import annotations

import os
from typing import Any

from cds_service.cli.serve import (
    gunicorn_options,
    let_calls_finish_their_turn,
    on_worker_exit,
    prepare_metrics_directory,
    remove_metrics_directory,
    render_server_errors_as_operation_outcomes,
    warm_up,
)
from cds_service.settings import load_settings
from cds_service.web.draining import install_draining, remove_drain_marker
from cds_service.web.startup import log_startup_notes_in_master

_settings = load_settings(os.environ)
globals().update(gunicorn_options(_settings))


def on_starting(server: Any) -> None:
    """Prepare the metrics directory, draining and the start-up warnings in the master, once."""
    prepare_metrics_directory(_settings.data_dir)
    install_draining(server, _settings.drain_seconds)
    log_startup_notes_in_master(_settings)


def post_worker_init(worker: Any) -> None:
    """Warm the worker up before it takes its first request."""
    render_server_errors_as_operation_outcomes()
    let_calls_finish_their_turn()
    warm_up()


def on_exit(server: Any) -> None:
    """Remove what this instance made under /dev/shm: the metrics directory, the drain marker."""
    remove_metrics_directory(_settings.data_dir)
    remove_drain_marker()


def child_exit(server: Any, worker: Any) -> None:
    """Forget an exited worker's live metrics."""
    on_worker_exit(worker.pid)
