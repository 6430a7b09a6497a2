"""Limits on decoded JSON that keep hostile bodies from costing more than they are worth."""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "MAX_JSON_DEPTH_LIMIT", "exceeds_depth"]

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
