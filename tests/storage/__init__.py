"""Tests of cds_service.records.storage: schema, engines, queries (on SQLite and PostgreSQL)."""
