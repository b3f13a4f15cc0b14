"""HL7 v2 interfaces: registered senders and the durable inbox (ADR 0033).

Revision ID: 0014_hl7_inbox
Revises: 0013_smart_app_launch
Create Date: 2026-12-07 23:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_hl7_inbox"
down_revision: str | Sequence[str] | None = "0013_smart_app_launch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def upgrade() -> None:
    schema = _schema()
    now = sa.text("now()")
    op.create_table(
        "hl7_senders",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sending_application", sa.String(length=227), nullable=False),
        sa.Column("sending_facility", sa.String(length=227), nullable=False),
        sa.Column(
            "receiving_application",
            sa.String(length=227),
            server_default=sa.text("''"),
            nullable=False,
        ),
        sa.Column(
            "receiving_facility",
            sa.String(length=227),
            server_default=sa.text("''"),
            nullable=False,
        ),
        sa.Column("message_types", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("processing_ids", postgresql.ARRAY(sa.String(length=1)), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_hl7_senders_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_senders")),
        schema=schema,
    )
    op.create_index(op.f("ix_hl7_senders_tenant_id"), "hl7_senders", ["tenant_id"], schema=schema)
    op.create_index(
        "uq_hl7_senders_route",
        "hl7_senders",
        ["sending_application", "sending_facility", "receiving_application", "receiving_facility"],
        unique=True,
        schema=schema,
    )
    op.create_table(
        "hl7_messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("sender_id", sa.UUID(), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("ack", sa.Text(), nullable=False),
        sa.Column("application_ack", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("patient_identifier", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("resources", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('accepted', 'converted', 'rejected', 'failed', 'dead')",
            name=op.f("ck_hl7_messages_status_known"),
        ),
        sa.CheckConstraint(
            "channel IN ('mllp', 'http')", name=op.f("ck_hl7_messages_channel_known")
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            [f"{schema}.hl7_senders.id"],
            name=op.f("fk_hl7_messages_sender_id_hl7_senders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_hl7_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_messages")),
        schema=schema,
    )
    op.create_index(
        "uq_hl7_messages_sender_control_id",
        "hl7_messages",
        ["sender_id", "control_id"],
        unique=True,
        schema=schema,
    )
    for columns in (
        ["tenant_id", "received_at"],
        ["tenant_id", "status", "received_at"],
        ["tenant_id", "patient_identifier"],
    ):
        op.create_index(
            op.f(f"ix_hl7_messages_{'_'.join(columns)}"), "hl7_messages", columns, schema=schema
        )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("hl7_messages", schema=schema)
    op.drop_table("hl7_senders", schema=schema)
