"""Audit records of hook calls and feedback on cards.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

IDENTIFIER = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", IDENTIFIER, nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("hook", sa.Text(), nullable=True),
        sa.Column("hook_instance", sa.Text(), nullable=True),
        sa.Column("patient_reference", sa.Text(), nullable=True),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=128), nullable=True),
        sa.Column("card_uuid", sa.String(length=36), nullable=True),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("data_sources", sa.JSON(), nullable=False),
        sa.Column("issues", sa.JSON(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
    )
    op.create_index(op.f("ix_audit_record_card_uuid"), "audit_record", ["card_uuid"])
    op.create_index(op.f("ix_audit_record_recorded_at"), "audit_record", ["recorded_at"])

    op.create_table(
        "feedback",
        sa.Column("id", IDENTIFIER, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("card_uuid", sa.String(length=36), nullable=False),
        sa.Column("card_status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_timestamp", INSTANT, nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.Text(), nullable=True),
        sa.Column("override_code", sa.Text(), nullable=True),
        sa.Column("override_display", sa.Text(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_feedback_fingerprint")),
    )
    op.create_index(op.f("ix_feedback_card_uuid"), "feedback", ["card_uuid"])
    op.create_index(op.f("ix_feedback_received_at"), "feedback", ["received_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("audit_record")
