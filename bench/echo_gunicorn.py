"""gunicorn settings the bench gives the bare Flask echo, as the service's workers have them."""

from __future__ import annotations

from typing import Any

from cds_service.cli.serve import let_calls_finish_their_turn


def post_worker_init(worker: Any) -> None:
    """The same GIL switch interval as a mipomersen-cds worker (cli/serve.py)."""
    let_calls_finish_their_turn()
