"""What one request learns as it is handled, shared by the request log and the metrics.

The route notes the hook call's `hookInstance` and decision here; the request log and the
metrics read them, and the time the request started, from the same object rather than from
ad-hoc attributes of `flask.g`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask import g

_MAX_HOOK_INSTANCE = 64


@dataclass(slots=True)
class RequestFacts:
    """When the request started, and what the hook call said and decided."""

    started: float = field(default_factory=time.perf_counter)
    hook_instance: str | None = None
    decision: str = "none"  # a card's decision, or none


def request_facts() -> RequestFacts:
    """Return the facts of the current request, started at the first call."""
    facts: RequestFacts | None = g.get("request_facts")
    if facts is None:
        facts = g.request_facts = RequestFacts()
    return facts


def note_hook_call(*, hook_instance: object = None, decision: str | None = None) -> None:
    """Note the hook call's hookInstance (if it is a string) or its decision."""
    facts = request_facts()
    if isinstance(hook_instance, str):
        facts.hook_instance = hook_instance[:_MAX_HOOK_INSTANCE]
    if decision is not None:
        facts.decision = decision
