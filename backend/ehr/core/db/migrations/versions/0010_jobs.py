"""Background jobs: the job queue's schema and our job records (jobs module).

Revision ID: 0010_jobs
Revises: 0009_event_outbox
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_jobs"
down_revision: str | Sequence[str] | None = "0009_event_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
