"""Alembic migrations of the service's tables, shipped in the package (see `storage.schema`)."""
