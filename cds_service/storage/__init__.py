"""Persistence of the audit trail and of feedback: SQLAlchemy 2 models, queries, migrations.

`open_database` gives a `Database` whose schema is current; `repository` holds the queries;
`schema` runs the Alembic migrations shipped in `migrations/`.
"""

from __future__ import annotations

from .database import Database, describe_database_error
from .models import AuditRecord, CardStatus, FeedbackRecord
from .schema import head_revision, open_database, upgrade

__all__ = [
    "AuditRecord",
    "CardStatus",
    "Database",
    "FeedbackRecord",
    "describe_database_error",
    "head_revision",
    "open_database",
    "upgrade",
]
