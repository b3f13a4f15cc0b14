"""Per-tenant medication-safety display policy.

Revision ID: 0003_medication_safety_policies
Revises: 0002_identity_audit
Create Date: 2026-11-21 08:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_medication_safety_policies"
down_revision: str | Sequence[str] | None = "0002_identity_audit"
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
        "medication_safety_policies",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column(
            "interruptive_severities", postgresql.ARRAY(sa.String(length=32)), nullable=False
        ),
        sa.Column("rule_display", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "interruptive_severities <@ "
            "ARRAY['contraindicated', 'major', 'moderate', 'minor']::varchar[]",
            name=op.f("ck_medication_safety_policies_severities_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_medication_safety_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_medication_safety_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_medication_safety_policies_tenant_id")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("medication_safety_policies", schema=schema)
