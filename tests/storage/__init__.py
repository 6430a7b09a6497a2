"""Tests of cds_service.storage: schema, engines, queries (on SQLite and PostgreSQL)."""
