"""Persistence of the audit trail and of feedback: SQLAlchemy 2 models, queries, migrations.

`open_database` gives a `Database` whose schema is current; `repository` holds the queries;
`schema` runs the Alembic migrations shipped in `migrations/`.
"""

from __future__ import annotations

from cds_service.records.storage.database import Database, describe_database_error
from cds_service.records.storage.models import AuditRecord, CardStatus, FeedbackRecord
from cds_service.records.storage.schema import head_revision, open_database, upgrade

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
