"""Limits on decoded JSON that keep hostile bodies from costing more than they are worth."""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "MAX_JSON_DEPTH_LIMIT", "exceeds_depth", "nesting_depth"]

DEFAULT_MAX_JSON_DEPTH = 64  # real CDS Hooks requests nest 11-13 levels (examples/, Synthea)
MAX_JSON_DEPTH_LIMIT = 500  # beyond this the standard JSON parser itself gives up


def exceeds_depth(value: Any, limit: int) -> bool:
    """Return whether arrays and objects in `value` nest deeper than `limit` levels.

    `{"a": [1]}` is two levels deep. Iterative, so any depth the JSON parser accepted is safe.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # a backslash and the character it escapes
_ALL_BUT_QUOTES_AND_BRACKETS = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_depth(body: bytes) -> int:
    """Return how deep arrays and objects nest in a JSON body, without parsing it.

    Exact for valid JSON: escapes are dropped first (so `\\"` cannot end a string), then
    everything but quotes and brackets; what lies between quotes is string content and does
    not count. Every step runs in C, so a body is refused for its depth before the parser (or
    a walk over the decoded value, which cost milliseconds per request) spends anything on it.
    Multi-byte UTF-8 sequences never contain these ASCII bytes.
    """
    skeleton = _ESCAPE.sub(b"", body).translate(None, _ALL_BUT_QUOTES_AND_BRACKETS)
    outside_strings = b"".join(skeleton.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, outside_strings)), default=0)
