"""Per-tenant note templates (notes module).

Revision ID: 0006_note_templates
Revises: 0005_audit_shards
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_note_templates"
down_revision: str | Sequence[str] | None = "0005_audit_shards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
