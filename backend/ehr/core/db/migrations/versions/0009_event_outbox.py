"""Domain events: the transactional outbox, handler receipts and dead letters (ADR 0023).

``event_outbox`` gets a statement-level trigger that sends ``NOTIFY ehr_events, '<schema>'``
after an insert: delivered when the inserting transaction commits (never for a rollback), it
wakes the relay at once instead of it polling (the relay still polls slowly, in case a
notification is missed while it reconnects).

Revision ID: 0009_event_outbox
Revises: 0008_result_policies
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ehr.core.db.migrate import validate_schema_name

revision: str = "0009_event_outbox"
down_revision: str | Sequence[str] | None = "0008_result_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel the relay listens on (ehr.platform.events.relay.NOTIFY_CHANNEL).
_CHANNEL = "ehr_events"


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    # Interpolated into the trigger's DDL below.
    return validate_schema_name(str(schema))


def upgrade() -> None:
    schema = _schema()
    now = sa.text("now()")
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_event_outbox_attempts_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_outbox_event_id")),
        schema=schema,
    )
    op.create_index(
        "ix_event_outbox_unrelayed",
        "event_outbox",
        ["id"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("relayed_at IS NULL"),
    )
    op.create_index(
        op.f("ix_event_outbox_created_at"), "event_outbox", ["created_at"], schema=schema
    )
    op.create_table(
        "event_receipts",
        sa.Column("handler", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.PrimaryKeyConstraint("handler", "event_id", name=op.f("pk_event_receipts")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_event_receipts_handled_at"), "event_receipts", ["handled_at"], schema=schema
    )
    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("handler", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_dead_letters")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_event_dead_letters_handler_created_at"),
        "event_dead_letters",
        ["handler", "created_at"],
        schema=schema,
    )
    op.create_index(
        op.f("ix_event_dead_letters_event_id"), "event_dead_letters", ["event_id"], schema=schema
    )
    op.execute(
        f"""
        CREATE FUNCTION "{schema}".event_outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{_CHANNEL}', TG_TABLE_SCHEMA);
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER event_outbox_notify AFTER INSERT ON "{schema}".event_outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".event_outbox_notify()
        """
    )


def downgrade() -> None:
    schema = _schema()
    op.execute(f'DROP TRIGGER IF EXISTS event_outbox_notify ON "{schema}".event_outbox')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".event_outbox_notify()')
    op.drop_table("event_dead_letters", schema=schema)
    op.drop_table("event_receipts", schema=schema)
    op.drop_table("event_outbox", schema=schema)
