"""HL7 v2 inbox: when a failed conversion is tried again (ADR 0033).

Revision ID: 0016_hl7_retry_time
Revises: 0015_hl7_outbound
Create Date: 2026-12-08 00:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_hl7_retry_time"
down_revision: str | Sequence[str] | None = "0015_hl7_outbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def upgrade() -> None:
    op.add_column(
        "hl7_messages",
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        schema=_schema(),
    )


def downgrade() -> None:
    op.drop_column("hl7_messages", "next_attempt_at", schema=_schema())
