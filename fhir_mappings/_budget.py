"""A bound on the work one read of FHIR data may cost: CPU time and the size of each resource.

Validating a resource against the FHIR models costs about 0.2 to 0.8 µs per byte of JSON, so a
10 MB body of valid-looking resources (or one resource with 600,000 identifiers) would hold a
worker for seconds. A caller that serves untrusted input opens `work_limits(...)`; within it
every resource about to be validated is refused when its JSON is larger than
`max_resource_bytes`, and the read stops once the thread has used `cpu_seconds` of CPU. Outside
it (the command line, tests) nothing is limited. A context variable carries the limits, so the
pure mapping functions keep their signatures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["WorkLimitExceeded", "charge_resource", "work_limits"]


class WorkLimitExceeded(Exception):
    """Reading the data would cost more than the limits in force; `path` says where it stopped."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class _Limits:
    cpu_deadline: float  # time.thread_time() value
    cpu_seconds: float
    max_resource_bytes: int


_LIMITS: ContextVar[_Limits | None] = ContextVar("fhir_mappings_work_limits", default=None)


@contextmanager
def work_limits(*, cpu_seconds: float, max_resource_bytes: int) -> Iterator[None]:
    """Limit the FHIR reading done by this thread within the block."""
    token = _LIMITS.set(
        _Limits(time.thread_time() + cpu_seconds, cpu_seconds, max_resource_bytes)
    )
    try:
        yield
    finally:
        _LIMITS.reset(token)


def charge_resource(path: str, resource: Mapping[str, Any]) -> None:
    """Raise `WorkLimitExceeded` if validating `resource` (at `path`) is over the limits."""
    limits = _LIMITS.get()
    if limits is None:
        return
    if time.thread_time() > limits.cpu_deadline:
        raise WorkLimitExceeded(
            path,
            f"reading this request's FHIR data took more than {limits.cpu_seconds:g} s of CPU; "
            "send fewer resources",
        )
    # A FHIR resource has a few dozen elements: thousands of keys need no serializing to refuse.
    size = (
        limits.max_resource_bytes + 1
        if len(resource) > limits.max_resource_bytes // 64
        else len(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
    )
    if size > limits.max_resource_bytes:
        raise WorkLimitExceeded(
            path,
            f"resource is more than {limits.max_resource_bytes} characters of JSON; "
            "no larger resource is read",
        )
