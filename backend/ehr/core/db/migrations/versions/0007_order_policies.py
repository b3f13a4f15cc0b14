"""Per-tenant order policy: duplicate-order windows per kind and their display (orders module).

Revision ID: 0007_order_policies
Revises: 0006_note_templates
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_order_policies"
down_revision: str | Sequence[str] | None = "0006_note_templates"
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
        "order_policies",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("lab_duplicate_window_hours", sa.Integer(), nullable=False),
        sa.Column("imaging_duplicate_window_hours", sa.Integer(), nullable=False),
        sa.Column("referral_duplicate_window_hours", sa.Integer(), nullable=False),
        sa.Column("duplicate_display", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "lab_duplicate_window_hours BETWEEN 0 AND 2160",
            name=op.f("ck_order_policies_lab_window_bounded"),
        ),
        sa.CheckConstraint(
            "imaging_duplicate_window_hours BETWEEN 0 AND 2160",
            name=op.f("ck_order_policies_imaging_window_bounded"),
        ),
        sa.CheckConstraint(
            "referral_duplicate_window_hours BETWEEN 0 AND 8760",
            name=op.f("ck_order_policies_referral_window_bounded"),
        ),
        sa.CheckConstraint(
            "duplicate_display IN ('interruptive', 'passive')",
            name=op.f("ck_order_policies_duplicate_display_known"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_order_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_order_policies_tenant_id")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("order_policies", schema=schema)
