"""The `mipomersen-cds` command: serve (gunicorn), evaluate files and corpora, records, tokens."""

from __future__ import annotations

from cds_service.cli.main import main

__all__ = ["main"]
