"""Per-tenant critical-value overrides and acknowledgement escalation (results module).

Revision ID: 0008_result_policies
Revises: 0007_order_policies
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_result_policies"
down_revision: str | Sequence[str] | None = "0007_order_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
