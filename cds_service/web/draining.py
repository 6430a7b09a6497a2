"""Draining: on SIGTERM an instance first says it is not ready, then stops.

A load balancer or orchestrator takes an instance out of rotation when `/readyz` answers 503
(Kubernetes' readiness probe, or the cluster harness in `bench/cluster.py`), but only once it
has seen that answer. So on the first SIGTERM the gunicorn master, for
MIPOMERSEN_CDS_DRAIN_SECONDS, keeps serving every request normally while `/readyz` answers
503 (`checks.shutdown: draining`); then it runs gunicorn's own graceful stop (the listening
socket closes, requests in flight finish within the graceful timeout). A second SIGTERM, or
SIGINT, stops at once as gunicorn always does. With 0 seconds (the default) SIGTERM stops at
once, as before.

The master and its workers share the state through a marker file whose path the master puts
in the environment before forking the workers; the variable is not a `MIPOMERSEN_CDS_*`
setting, so nobody sets it by hand.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DRAIN_MARKER_VARIABLE = "CDS_SERVICE_DRAIN_MARKER"


def is_draining(environ: Mapping[str, str] | None = None) -> bool:
    """Return True once this instance's master has received SIGTERM and is draining."""
    marker = (os.environ if environ is None else environ).get(DRAIN_MARKER_VARIABLE)
    return marker is not None and marker != "" and Path(marker).exists()


def _sigterm_self_after(seconds: int) -> None:
    """Send this process SIGTERM in `seconds`, from a timer thread."""
    timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()


def install_draining(
    arbiter: Any, seconds: int, *, stop_later: Callable[[int], None] = _sigterm_self_after
) -> Path:
    """Make the gunicorn `arbiter` drain for `seconds` on its first SIGTERM (on_starting hook).

    Returns the marker's directory, for `remove_drain_marker` when the master exits.
    """
    directory = Path(tempfile.mkdtemp(prefix="mipomersen-cds-drain-"))
    marker = directory / "draining"
    os.environ[DRAIN_MARKER_VARIABLE] = str(marker)  # inherited by every worker forked later
    stop = arbiter.handle_term

    def handle_term() -> None:
        if seconds <= 0 or marker.exists():
            stop()  # gunicorn's graceful stop: raises StopIteration in the master loop
            return
        marker.touch()
        arbiter.log.info("SIGTERM: draining for %d s (readyz answers 503), then stopping", seconds)
        # The master loop stays free to reap and replace workers while the instance drains;
        # the later SIGTERM finds the marker and stops.
        stop_later(seconds)

    arbiter.handle_term = handle_term
    return directory


def remove_drain_marker() -> None:
    """Remove the marker's directory when the master exits (on_exit hook)."""
    marker = os.environ.get(DRAIN_MARKER_VARIABLE)
    if marker:
        shutil.rmtree(Path(marker).parent, ignore_errors=True)
