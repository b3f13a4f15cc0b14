"""CDS Hooks: trusted clients per tenant and card feedback.

Revision ID: 0004_cds_hooks
Revises: 0003_medication_safety_policies
Create Date: 2026-11-21 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_cds_hooks"
down_revision: str | Sequence[str] | None = "0003_medication_safety_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "cds_clients",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jwks", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "jku_allowlist",
            postgresql.ARRAY(sa.String(length=2048)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "fhir_servers",
            postgresql.ARRAY(sa.String(length=2048)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("first_party", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "jwks IS NOT NULL OR cardinality(jku_allowlist) > 0",
            name=op.f("ck_cds_clients_has_key_source"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_cds_clients_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_clients")),
        sa.UniqueConstraint("issuer", name=op.f("uq_cds_clients_issuer")),
        schema=schema,
    )
    op.create_index(op.f("ix_cds_clients_tenant_id"), "cds_clients", ["tenant_id"], schema=schema)
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=True),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("card_uuid", sa.UUID(), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "accepted_suggestions",
            postgresql.ARRAY(sa.String(length=128)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("override_reason", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'overridden')", name=op.f("ck_cds_feedback_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_cds_feedback_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            [f"{schema}.cds_clients.id"],
            name=op.f("fk_cds_feedback_client_id_cds_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_feedback")),
        sa.UniqueConstraint(
            "tenant_id",
            "card_uuid",
            "outcome",
            "outcome_timestamp",
            name=op.f("uq_cds_feedback_tenant_id_card_uuid_outcome_outcome_timestamp"),
        ),
        schema=schema,
    )
    op.create_index(
        op.f("ix_cds_feedback_tenant_id_service_id_received_at"),
        "cds_feedback",
        ["tenant_id", "service_id", "received_at"],
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("cds_feedback", schema=schema)
    op.drop_table("cds_clients", schema=schema)
