"""Audit at scale: chains per (tenant, shard), a one-statement append, signed checkpoints.

- ``audit_log.shard`` (smallint): the writer lane a record's chain belongs to. Existing records
  are shard 0 (their hashes are unchanged: the shard is not a hashed field, see ADR 0008). The
  column keeps NO default after the backfill, so a replica still running the previous release
  (which inserts without a shard and links after the tenant's highest seq) fails its audit write
  (503) during a rolling upgrade instead of corrupting shard 0's chain.
- ``UNIQUE (tenant, shard, seq)`` replaces ``UNIQUE (tenant, seq)``.
- ``audit_append(...)``: takes the chain's advisory lock (the wait bounded by ``lock_timeout``
  set inside the function, before the wait starts), compares the chain head with the one the
  caller linked its rows against, and inserts them only if it matches; it returns the head
  either way. Called as one statement outside a transaction block: one round trip, committed
  when it returns.
- ``audit_checkpoints``: signed heads of every shard of a tenant, append-only like the log.

Revision ID: 0005_audit_shards
Revises: 0004_cds_hooks
Create Date: 2026-12-07 01:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_audit_shards"
down_revision: str | Sequence[str] | None = "0004_cds_hooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns the function inserts, in order (all but id, tenant and shard, which it sets).
_ROW_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_roles",
    "action",
    "resource_type",
    "resource_id",
    "patient_id",
    "outcome",
    "http_status",
    "source_ip",
    "user_agent",
    "request_id",
    "purpose_of_use",
    "break_glass",
    "break_glass_reason",
    "details",
    "prev_hash",
    "record_hash",
)


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def _append_function(schema: str) -> str:
    columns = ", ".join(_ROW_COLUMNS)
    values = ", ".join(f"r.{name}" for name in _ROW_COLUMNS)
    # The schema name was validated by env.py (validate_schema_name).
    return f"""
CREATE OR REPLACE FUNCTION "{schema}".audit_append(
    p_tenant text,
    p_shard smallint,
    p_expected_seq bigint,
    p_expected_hash text,
    p_rows jsonb,
    p_lock_timeout_ms integer
) RETURNS TABLE (appended boolean, head_seq bigint, head_hash text, lock_waited boolean)
LANGUAGE plpgsql
AS $fn$
#variable_conflict use_column
DECLARE
    v_key bigint := hashtextextended('ehr.platform.audit:' || p_tenant || ':' || p_shard, 0);
BEGIN
    -- Read when a lock wait starts, so it bounds the wait below; local to this statement's
    -- implicit transaction.
    PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);
    lock_waited := NOT pg_try_advisory_xact_lock(v_key);
    IF lock_waited THEN
        PERFORM pg_advisory_xact_lock(v_key);
    END IF;
    SELECT a.seq, a.record_hash INTO head_seq, head_hash
      FROM "{schema}".audit_log a
     WHERE a.tenant = p_tenant AND a.shard = p_shard
     ORDER BY a.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    IF head_seq IS DISTINCT FROM p_expected_seq OR head_hash IS DISTINCT FROM p_expected_hash
    THEN
        appended := false;  -- linked against a stale head: nothing inserted
        RETURN NEXT;
        RETURN;
    END IF;
    IF jsonb_typeof(p_rows) IS DISTINCT FROM 'array' OR jsonb_array_length(p_rows) = 0
       OR (p_rows -> 0 ->> 'seq')::bigint IS DISTINCT FROM head_seq + 1
       OR (p_rows -> 0 ->> 'prev_hash') IS DISTINCT FROM head_hash
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_rows) e
                   WHERE e ->> 'tenant' IS DISTINCT FROM p_tenant)
    THEN
        RAISE EXCEPTION 'audit rows do not follow the chain head'
            USING ERRCODE = 'data_exception';
    END IF;
    INSERT INTO "{schema}".audit_log (tenant, shard, {columns})
    SELECT p_tenant, p_shard, {values}
      FROM jsonb_populate_recordset(NULL::"{schema}".audit_log, p_rows) r;
    head_seq := (p_rows -> -1 ->> 'seq')::bigint;
    head_hash := p_rows -> -1 ->> 'record_hash';
    appended := true;
    RETURN NEXT;
END
$fn$
"""  # noqa: S608


def upgrade() -> None:
    schema = _schema()
    op.add_column(
        "audit_log",
        sa.Column("shard", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        schema=schema,
    )
    # Backfilled (existing rows are shard 0); from now on every writer names its shard.
    op.alter_column("audit_log", "shard", server_default=None, schema=schema)
    op.create_check_constraint(
        op.f("ck_audit_log_shard_range"), "audit_log", "shard >= 0", schema=schema
    )
    op.create_unique_constraint(
        op.f("uq_audit_log_tenant_shard_seq"),
        "audit_log",
        ["tenant", "shard", "seq"],
        schema=schema,
    )
    op.drop_constraint(op.f("uq_audit_log_tenant_seq"), "audit_log", schema=schema)

    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heads", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint("tenant", "seq", name=op.f("uq_audit_checkpoints_tenant_seq")),
        schema=schema,
    )
    op.execute(
        sa.text(
            f"CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            f'ON "{schema}".audit_checkpoints '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".audit_log_append_only()'
        )
    )
    op.execute(sa.text(_append_function(schema)))


def downgrade() -> None:
    schema = _schema()
    op.execute(
        sa.text(
            f'DO $$ BEGIN IF EXISTS (SELECT 1 FROM "{schema}".audit_log WHERE shard <> 0) THEN '  # noqa: S608
            "RAISE EXCEPTION 'audit_log has records outside shard 0: one chain per tenant "
            "cannot hold them'; END IF; END $$"
        )
    )
    op.execute(
        sa.text(
            f'DROP FUNCTION IF EXISTS "{schema}".audit_append('
            "text, smallint, bigint, text, jsonb, integer)"
        )
    )
    op.execute(
        sa.text(
            f'DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON "{schema}".audit_checkpoints'
        )
    )
    op.drop_table("audit_checkpoints", schema=schema)
    op.create_unique_constraint(
        op.f("uq_audit_log_tenant_seq"), "audit_log", ["tenant", "seq"], schema=schema
    )
    op.drop_constraint(op.f("uq_audit_log_tenant_shard_seq"), "audit_log", schema=schema)
    op.drop_constraint(op.f("ck_audit_log_shard_range"), "audit_log", schema=schema)
    op.drop_column("audit_log", "shard", schema=schema)
