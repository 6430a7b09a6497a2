"""What the service keeps: the audit trail of every hook call, feedback on cards, the report,
and their storage (SQLAlchemy models, Alembic migrations; SQLite or PostgreSQL)."""
