"""gunicorn's gthread worker, leaving a new connection to a less loaded worker when there is one.

An EHR (or nginx in front) keeps its connections alive, so a connection stays with the worker
that accepted it for its whole life. All workers wait on one listening socket, and a burst of
new connections went mostly to whichever worker was awake: with 16 keep-alive clients and 2
workers, splits of 15/1 and 13/3 were measured, one worker (one core, one GIL) doing nearly all
the work and throughput near half. Here a worker that already holds a connection per thread
waits a moment before it accepts another, so a worker with spare threads takes it first; when
every worker is as loaded, each still accepts after that moment, so no client is ever refused
or left waiting for a connection to close.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

__all__ = ["BalancingThreadWorker"]

# Long enough for an idle worker, woken by the same connection, to accept it first; short enough
# to cost a new connection nothing a client would notice. Only a worker that is already full
# waits, and only when a connection arrives.
_DEFER_SECONDS = 0.002


class BalancingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, deferring an accept while this worker holds a connection for every thread."""

    def accept(self, listener: Any) -> None:
        """Accept a new connection, after a moment when every thread already has one."""
        if self.nr_conns >= self.cfg.threads:
            time.sleep(_DEFER_SECONDS)
        super().accept(listener)
