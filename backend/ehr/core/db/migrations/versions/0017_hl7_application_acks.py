"""HL7 v2: enhanced-mode application acknowledgements sent back to the sender (ADR 0033).

A sender names the destination (its own MLLP listener) that takes its application ACKs;
an outbound row can now be ``sent`` (an ACK is not itself acknowledged).

Revision ID: 0017_hl7_application_acks
Revises: 0016_hl7_retry_time
Create Date: 2026-12-08 02:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_hl7_application_acks"
down_revision: str | Sequence[str] | None = "0016_hl7_retry_time"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = "ck_hl7_outbound_messages_status_known"


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def upgrade() -> None:
    schema = _schema()
    op.add_column(
        "hl7_senders",
        sa.Column("ack_destination_id", sa.UUID(), nullable=True),
        schema=schema,
    )
    op.create_foreign_key(
        op.f("fk_hl7_senders_ack_destination_id_hl7_destinations"),
        "hl7_senders",
        "hl7_destinations",
        ["ack_destination_id"],
        ["id"],
        source_schema=schema,
        referent_schema=schema,
        ondelete="SET NULL",
    )
    op.drop_constraint(op.f(_STATUS), "hl7_outbound_messages", schema=schema, type_="check")
    op.create_check_constraint(
        op.f(_STATUS),
        "hl7_outbound_messages",
        "status IN ('pending', 'acked', 'sent', 'parked')",
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    outbound = f'"{schema}".hl7_outbound_messages'
    op.execute(f"UPDATE {outbound} SET status = 'acked' WHERE status = 'sent'")  # noqa: S608
    op.drop_constraint(op.f(_STATUS), "hl7_outbound_messages", schema=schema, type_="check")
    op.create_check_constraint(
        op.f(_STATUS),
        "hl7_outbound_messages",
        "status IN ('pending', 'acked', 'parked')",
        schema=schema,
    )
    op.drop_constraint(
        op.f("fk_hl7_senders_ack_destination_id_hl7_destinations"),
        "hl7_senders",
        schema=schema,
        type_="foreignkey",
    )
    op.drop_column("hl7_senders", "ack_destination_id", schema=schema)
