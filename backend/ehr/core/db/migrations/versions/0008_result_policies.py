"""Per-tenant critical-value overrides and acknowledgement escalation (results module).

Revision ID: 0008_result_policies
Revises: 0007_order_policies
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_result_policies"
down_revision: str | Sequence[str] | None = "0007_order_policies"
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
        "result_policies",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column(
            "escalation_minutes", sa.SmallInteger(), server_default=sa.text("60"), nullable=False
        ),
        sa.Column(
            "patient_release_hours", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "critical_overrides",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "escalation_minutes BETWEEN 1 AND 1440",
            name=op.f("ck_result_policies_escalation_bounded"),
        ),
        sa.CheckConstraint(
            "patient_release_hours BETWEEN 0 AND 168",
            name=op.f("ck_result_policies_patient_release_bounded"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_result_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_result_policies_tenant_id")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("result_policies", schema=schema)
