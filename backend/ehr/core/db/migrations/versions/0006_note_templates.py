"""Per-tenant note templates (notes module).

Revision ID: 0006_note_templates
Revises: 0005_audit_shards
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_note_templates"
down_revision: str | Sequence[str] | None = "0005_audit_shards"
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
        "note_templates",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("type_code", sa.String(length=16), nullable=False),
        sa.Column("type_display", sa.String(length=200), nullable=False),
        sa.Column("sections", postgresql.ARRAY(sa.String(length=120)), nullable=False),
        sa.Column("requires_cosign", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "key ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name=op.f("ck_note_templates_key_shape")
        ),
        sa.CheckConstraint(
            "type_code ~ '^[0-9]{1,7}-[0-9]$'", name=op.f("ck_note_templates_loinc_shape")
        ),
        sa.CheckConstraint(
            "cardinality(sections) BETWEEN 1 AND 40",
            name=op.f("ck_note_templates_sections_bounded"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_note_templates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note_templates")),
        sa.UniqueConstraint("tenant_id", "key", name=op.f("uq_note_templates_tenant_id_key")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("note_templates", schema=schema)
