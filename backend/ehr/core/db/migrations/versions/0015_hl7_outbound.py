"""HL7 v2 outbound: destinations and the ordered outbound queue (ADR 0033).

Revision ID: 0015_hl7_outbound
Revises: 0014_hl7_inbox
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_hl7_outbound"
down_revision: str | Sequence[str] | None = "0014_hl7_inbox"
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
        "hl7_destinations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("message_types", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("receiving_application", sa.String(length=227), nullable=False),
        sa.Column("receiving_facility", sa.String(length=227), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name=op.f("ck_hl7_destinations_port_valid")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_hl7_destinations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_destinations")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_hl7_destinations_tenant_name"),
        schema=schema,
    )
    op.create_index(
        op.f("ix_hl7_destinations_tenant_id"), "hl7_destinations", ["tenant_id"], schema=schema
    )
    op.create_table(
        "hl7_outbound_messages",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("destination_id", sa.UUID(), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("control_id", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("ack_code", sa.String(length=2), nullable=True),
        sa.Column("ack", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'acked', 'parked')",
            name=op.f("ck_hl7_outbound_messages_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            [f"{schema}.hl7_destinations.id"],
            name=op.f("fk_hl7_outbound_messages_destination_id_hl7_destinations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_hl7_outbound_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_outbound_messages")),
        sa.UniqueConstraint("destination_id", "source", name="uq_hl7_outbound_destination_source"),
        sa.UniqueConstraint("sequence", name=op.f("uq_hl7_outbound_messages_sequence")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_hl7_outbound_messages_destination_id_status_sequence"),
        "hl7_outbound_messages",
        ["destination_id", "status", "sequence"],
        schema=schema,
    )
    op.create_index(
        op.f("ix_hl7_outbound_messages_tenant_id_created_at"),
        "hl7_outbound_messages",
        ["tenant_id", "created_at"],
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("hl7_outbound_messages", schema=schema)
    op.drop_table("hl7_destinations", schema=schema)
