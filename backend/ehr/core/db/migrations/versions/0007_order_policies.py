"""Per-tenant order policy: duplicate-order window; sign-override counts (orders module).

Revision ID: 0007_order_policies
Revises: 0006_note_templates
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007_order_policies"
down_revision: str | Sequence[str] | None = "0006_note_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
