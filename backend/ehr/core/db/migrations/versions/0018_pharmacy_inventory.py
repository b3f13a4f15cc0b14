"""Pharmacy: locations, products, lots, balances, the hash-chained ledger and the
verification queue (ADR 0034).

Revision ID: 0018_pharmacy_inventory
Revises: 0017_hl7_application_acks
Create Date: 2026-12-08 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_pharmacy_inventory"
down_revision: str | Sequence[str] | None = "0017_hl7_application_acks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUANTITY = sa.Numeric(14, 3)


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def _tenant_fk(table: str, schema: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        [f"{schema}.tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def _fk(table: str, column: str, target: str, schema: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{schema}.{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    schema = _schema()
    now = sa.text("now()")
    op.create_table(
        "pharmacy_locations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        _tenant_fk("pharmacy_locations", schema),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy_locations")),
        sa.UniqueConstraint("tenant_id", "code", name=op.f("uq_pharmacy_locations_tenant_id_code")),
        schema=schema,
    )
    op.create_table(
        "pharmacy_products",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("ndc11", sa.String(length=11), nullable=False),
        sa.Column("rxcui", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("divisible", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(length=4), nullable=True),
        sa.Column("reorder_level", _QUANTITY, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("ndc11 ~ '^[0-9]{11}$'", name=op.f("ck_pharmacy_products_ndc11_format")),
        sa.CheckConstraint(
            "schedule IS NULL OR schedule IN ('CII', 'CIII', 'CIV', 'CV')",
            name=op.f("ck_pharmacy_products_schedule_known"),
        ),
        sa.CheckConstraint(
            "reorder_level >= 0", name=op.f("ck_pharmacy_products_reorder_level_not_negative")
        ),
        _tenant_fk("pharmacy_products", schema),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy_products")),
        sa.UniqueConstraint(
            "tenant_id", "ndc11", name=op.f("uq_pharmacy_products_tenant_id_ndc11")
        ),
        schema=schema,
    )
    op.create_index(
        op.f("ix_pharmacy_products_tenant_id_rxcui"),
        "pharmacy_products",
        ["tenant_id", "rxcui"],
        schema=schema,
    )
    op.create_table(
        "pharmacy_lots",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("lot_number", sa.String(length=64), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("recalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recall_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        _fk("pharmacy_lots", "product_id", "pharmacy_products", schema),
        _tenant_fk("pharmacy_lots", schema),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy_lots")),
        sa.UniqueConstraint(
            "product_id", "lot_number", name=op.f("uq_pharmacy_lots_product_id_lot_number")
        ),
        schema=schema,
    )
    op.create_table(
        "pharmacy_stock",
        sa.Column("location_id", sa.UUID(), nullable=False),
        sa.Column("lot_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("quantity", _QUANTITY, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_pharmacy_stock_quantity_not_negative")),
        _fk("pharmacy_stock", "location_id", "pharmacy_locations", schema),
        _fk("pharmacy_stock", "lot_id", "pharmacy_lots", schema),
        _fk("pharmacy_stock", "product_id", "pharmacy_products", schema),
        _tenant_fk("pharmacy_stock", schema),
        sa.PrimaryKeyConstraint("location_id", "lot_id", name=op.f("pk_pharmacy_stock")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_pharmacy_stock_tenant_id_location_id"),
        "pharmacy_stock",
        ["tenant_id", "location_id"],
        schema=schema,
    )
    op.create_table(
        "pharmacy_ledger",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("location_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("lot_id", sa.UUID(), nullable=False),
        sa.Column("quantity", _QUANTITY, nullable=False),
        sa.Column("balance_after", _QUANTITY, nullable=False),
        sa.Column("counted", _QUANTITY, nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "kind IN ('receive', 'dispense', 'return', 'transfer_out', 'transfer_in', "
            "'adjust', 'count', 'waste')",
            name=op.f("ck_pharmacy_ledger_kind_known"),
        ),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_pharmacy_ledger_balance_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy_ledger")),
        sa.UniqueConstraint("tenant_id", "seq", name=op.f("uq_pharmacy_ledger_tenant_id_seq")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_pharmacy_ledger_tenant_id_product_id_occurred_at"),
        "pharmacy_ledger",
        ["tenant_id", "product_id", "occurred_at"],
        schema=schema,
    )
    op.create_index(
        op.f("ix_pharmacy_ledger_tenant_id_lot_id"),
        "pharmacy_ledger",
        ["tenant_id", "lot_id"],
        schema=schema,
    )
    op.create_table(
        "pharmacy_verifications",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("medication_request_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_rank", sa.SmallInteger(), nullable=False),
        sa.Column("authored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prescriber", sa.String(length=200), nullable=True),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column("medication", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'clarification', 'withdrawn')",
            name=op.f("ck_pharmacy_verifications_state_known"),
        ),
        sa.CheckConstraint(
            "priority_rank BETWEEN 0 AND 3",
            name=op.f("ck_pharmacy_verifications_priority_rank_known"),
        ),
        _tenant_fk("pharmacy_verifications", schema),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pharmacy_verifications")),
        sa.UniqueConstraint(
            "tenant_id",
            "medication_request_id",
            name=op.f("uq_pharmacy_verifications_tenant_id_medication_request_id"),
        ),
        schema=schema,
    )
    op.create_index(
        op.f("ix_pharmacy_verifications_queue"),
        "pharmacy_verifications",
        ["tenant_id", "state", "priority_rank", "authored_at"],
        schema=schema,
    )
    # The ledger is append-only: a correction is a new row (ADR 0034).
    op.execute(
        sa.text(
            f'CREATE OR REPLACE FUNCTION "{schema}".pharmacy_ledger_append_only() '
            "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'pharmacy_ledger is append-only' USING ERRCODE = 'insufficient_privilege'; END $$"
        )
    )
    op.execute(
        sa.text(
            "CREATE TRIGGER pharmacy_ledger_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            f'ON "{schema}".pharmacy_ledger FOR EACH STATEMENT '
            f'EXECUTE FUNCTION "{schema}".pharmacy_ledger_append_only()'
        )
    )


def downgrade() -> None:
    schema = _schema()
    op.execute(
        sa.text(f'DROP TRIGGER IF EXISTS pharmacy_ledger_append_only ON "{schema}".pharmacy_ledger')
    )
    op.execute(sa.text(f'DROP FUNCTION IF EXISTS "{schema}".pharmacy_ledger_append_only()'))
    op.drop_table("pharmacy_verifications", schema=schema)
    op.drop_table("pharmacy_ledger", schema=schema)
    op.drop_table("pharmacy_stock", schema=schema)
    op.drop_table("pharmacy_lots", schema=schema)
    op.drop_table("pharmacy_products", schema=schema)
    op.drop_table("pharmacy_locations", schema=schema)
