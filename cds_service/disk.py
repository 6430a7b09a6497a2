"""Whether a disk can still take a write: shared by the readiness check and the replay store."""

from __future__ import annotations

import os
from pathlib import Path

# Below this, SQLite and the metrics files may fail mid-write: report the disk as full first.
MIN_FREE_BYTES = 1024 * 1024


def free_space_problem(directory: Path) -> str | None:
    """Return `disk full` when fewer than `MIN_FREE_BYTES` are free where `directory` lives."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return "unreachable"
    return "disk full" if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES else None
