"""SMART clients (Backend Services) and the client assertions' jti register (ADR 0032).

Revision ID: 0012_smart_clients
Revises: 0011_webhooks
Create Date: 2026-12-07 17:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_smart_clients"
down_revision: str | Sequence[str] | None = "0011_webhooks"
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
        "smart_clients",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("jwks", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=128)), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('backend_service')", name=op.f("ck_smart_clients_kind_known")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_smart_clients_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_smart_clients_client_id")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_smart_clients_tenant_id"), "smart_clients", ["tenant_id"], schema=schema
    )
    op.create_table(
        "smart_assertion_uses",
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            [f"{schema}.smart_clients.id"],
            name=op.f("fk_smart_assertion_uses_client_id_smart_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_smart_assertion_uses")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("smart_assertion_uses", schema=schema)
    op.drop_table("smart_clients", schema=schema)
