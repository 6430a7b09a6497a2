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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import msgspec

__all__ = [
    "WorkLimitExceeded",
    "charge_resource",
    "charge_small_resource",
    "charge_typed_resources",
    "work_limits",
]


class WorkLimitExceeded(Exception):
    """Reading the data would cost more than the limits in force; `path` says where it stopped."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# For resources read in one walk (a few microseconds each; at most a third of the size limit, so
# a few hundred elements), the CPU clock is read for every this many (the first included):
# reading it is a system call that cost as much as such a read, and the budget is overrun by a
# few milliseconds at most. A resource validated by the models (up to 0.8 µs a byte) reads the
# clock every time.
_CLOCK_EVERY_SMALL = 16


@dataclass(frozen=True, slots=True)
class _Limits:
    cpu_deadline: float  # time.thread_time() value
    cpu_seconds: float
    max_resource_bytes: int
    small: Iterator[int] = field(default_factory=count)  # small resources charged so far


_LIMITS: ContextVar[_Limits | None] = ContextVar("fhir_mappings_work_limits", default=None)


@contextmanager
def work_limits(*, cpu_seconds: float, max_resource_bytes: int) -> Iterator[None]:
    """Limit the FHIR reading done by this thread within the block."""
    token = _LIMITS.set(_Limits(time.thread_time() + cpu_seconds, cpu_seconds, max_resource_bytes))
    try:
        yield
    finally:
        _LIMITS.reset(token)


def charge_resource(path: str, resource: Mapping[str, Any]) -> None:
    """Raise `WorkLimitExceeded` if validating `resource` (at `path`) is over the limits."""
    limits = _LIMITS.get()
    if limits is None:
        return
    _charge_cpu(path, limits)
    if _json_length_over(resource, limits.max_resource_bytes):
        raise WorkLimitExceeded(
            path,
            f"resource is more than {limits.max_resource_bytes} characters of JSON; "
            "no larger resource is read",
        )


def charge_small_resource(path: str, resource: Mapping[str, Any]) -> bool:
    """Charge a resource read without `charge_resource`; False when its size needs that check.

    Raises `WorkLimitExceeded` past the CPU budget. Returns True when the resource is surely
    within the size limit (or there is none); False when it may be over it, and the caller then
    reads it the way that charges it in full, so the same resources are refused either way.
    """
    limits = _LIMITS.get()
    if limits is None:
        return True
    if next(limits.small) % _CLOCK_EVERY_SMALL == 0:
        _charge_cpu(path, limits)
    return _encoded_length(resource, limits.max_resource_bytes) * _DUMPS_PER_ENCODED_BYTE <= (
        limits.max_resource_bytes
    )


def charge_typed_resources(path: str, resources: Iterable[object]) -> bool:
    """`charge_small_resource` for resources decoded into typed structs (`_typed_labs`), at once.

    Under limits, the structs are encoded to measure them, all in one pass in C, and the CPU
    clock is read before and after. Their raw parts are kept as sent, and a number written
    shorter than its float (`1e2`) would be re-encoded longer, so twice the margin of a decoded
    resource is kept: True only when every resource is surely within the size limit; otherwise
    the caller lets the general path charge them one by one.
    """
    limits = _LIMITS.get()
    if limits is None:
        return True
    _charge_cpu(path, limits)
    try:
        longest = max(map(len, map(_ENCODER.encode, resources)), default=0)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return False
    _charge_cpu(path, limits)
    return longest * 2 * _DUMPS_PER_ENCODED_BYTE <= limits.max_resource_bytes


def _charge_cpu(path: str, limits: _Limits) -> None:
    if time.thread_time() > limits.cpu_deadline:
        raise WorkLimitExceeded(
            path,
            f"reading this request's FHIR data took more than {limits.cpu_seconds:g} s of CPU; "
            "send fewer resources",
        )


def _plain_float(value: Any) -> Any:
    if isinstance(value, float):  # a `DecimalLiteral`: its float is as long as its repr
        return float(value)
    raise TypeError(type(value).__name__)


_ENCODER = msgspec.json.Encoder(enc_hook=_plain_float)
# Compact `json.dumps` (ensure_ascii=False) writes at most three characters for each byte msgspec
# writes: the same tokens, a character never shorter in UTF-8 than in characters, an escape at
# most 6 characters where msgspec writes at least 2, a float's repr ("1e+16") at most one
# character longer than msgspec's ("1e16"), which is at least 3 with its separator.
_DUMPS_PER_ENCODED_BYTE = 3


def _json_length_over(resource: Mapping[str, Any], limit: int) -> bool:
    """Return True when the compact JSON of `resource` is longer than `limit` characters."""
    # A FHIR resource has a few dozen elements: thousands of keys need no serializing to refuse.
    if len(resource) > limit // 64:
        return True
    if _encoded_length(resource, limit) * _DUMPS_PER_ENCODED_BYTE <= limit:
        return False  # msgspec is ten times cheaper than json.dumps
    return len(json.dumps(resource, separators=(",", ":"), ensure_ascii=False)) > limit


def _encoded_length(resource: Mapping[str, Any], limit: int) -> int:
    """Return the length of msgspec's compact JSON of `resource` (`limit` if it cannot say)."""
    if len(resource) > limit // 64:
        return limit
    try:
        return len(_ENCODER.encode(resource))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):  # the exact count decides
        return limit
