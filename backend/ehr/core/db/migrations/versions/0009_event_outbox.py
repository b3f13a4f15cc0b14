"""Domain events: the transactional outbox, handler receipts and dead letters (events module).

Revision ID: 0009_event_outbox
Revises: 0008_result_policies
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009_event_outbox"
down_revision: str | Sequence[str] | None = "0008_result_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
