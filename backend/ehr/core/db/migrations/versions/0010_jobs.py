"""Background jobs: the job queue's schema and our job records (ADR 0024).

Two parts:

- procrastinate's schema (tables ``procrastinate_jobs``, ``_workers``, ``_events``,
  ``_periodic_defers``, its types, functions and triggers), the SQL file shipped with the
  installed procrastinate, in a schema of its own next to the app schema:
  ``<app schema>_queue`` (:func:`ehr.core.db.models.job_queue_schema`). Its objects keep their
  ``procrastinate_`` names; every function gets ``search_path`` pinned to that schema, so the
  API can defer a job inside its own SQLAlchemy transaction by calling the schema-qualified
  function (the triggers it fires resolve their tables without the caller's search path).
- our ``jobs`` (tenant, owner, kind, progress, result, error, cancellation, fencing token) and
  ``job_steps`` (the per-job idempotency record) in the app schema.

Downgrade drops both (the queue schema with CASCADE: queued jobs are gone with it).
A procrastinate upgrade that changes its schema needs a migration of ours applying its
``sql/migrations`` files to the queue schema.

Revision ID: 0010_jobs
Revises: 0009_event_outbox
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects import postgresql
from sqlalchemy.util import await_only

from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import job_queue_schema

revision: str = "0010_jobs"
down_revision: str | Sequence[str] | None = "0009_event_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def _queue_schema(app_schema: str) -> str:
    # Interpolated into DDL below: the same rule as the app schema's name.
    return validate_schema_name(job_queue_schema(app_schema))


def _run_script(script: str) -> None:
    """Run a multi-statement SQL script on the migration's connection (asyncpg's simple query
    protocol: a prepared statement holds one command, procrastinate's file holds dozens)."""
    raw = op.get_bind().connection.driver_connection
    if raw is None:  # pragma: no cover - always set on a live connection
        raise RuntimeError("the migration needs a live database connection")
    await_only(raw.execute(script))


def _create_queue(queue: str) -> None:
    # The schema file names its objects without a schema: created with the queue schema first
    # on the search path (for this transaction only), then every function's search path is
    # pinned so callers with another search path (the API's sessions) find the queue's tables.
    # ``queue`` passed validate_schema_name; the rest is constant.
    _run_script(
        f'CREATE SCHEMA "{queue}";\n'  # noqa: S608
        f'SET LOCAL search_path TO "{queue}";\n'
        f"{SchemaManager.get_schema()};\n"
        f"""DO $pin$
DECLARE f record;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             WHERE p.pronamespace = '"{queue}"'::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I', f.signature, '{queue}');
    END LOOP;
END
$pin$;
RESET search_path;"""
    )


def upgrade() -> None:
    schema = _schema()
    _create_queue(_queue_schema(schema))
    op.create_table(
        "jobs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("kind", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("queue", sa.String(length=128), nullable=False),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "args",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("lock", sa.String(length=255), nullable=True),
        sa.Column("queueing_lock", sa.String(length=255), nullable=True),
        sa.Column("progress_done", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("run_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("progress_done >= 0", name=op.f("ck_jobs_progress_done_positive")),
        sa.CheckConstraint(
            "progress_total IS NULL OR progress_total >= 0",
            name=op.f("ck_jobs_progress_total_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            name=op.f("fk_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_jobs_tenant_id_created_at_id"),
        "jobs",
        ["tenant_id", "created_at", "id"],
        unique=False,
        schema=schema,
    )
    op.create_index(
        op.f("ix_jobs_queue_job_id"), "jobs", ["queue_job_id"], unique=False, schema=schema
    )
    op.create_table(
        "job_steps",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column(
            "done_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{schema}.jobs.id"],
            name=op.f("fk_job_steps_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "step", name=op.f("pk_job_steps")),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("job_steps", schema=schema)
    op.drop_index(op.f("ix_jobs_queue_job_id"), table_name="jobs", schema=schema)
    op.drop_index(op.f("ix_jobs_tenant_id_created_at_id"), table_name="jobs", schema=schema)
    op.drop_table("jobs", schema=schema)
    op.execute(sa.text(f'DROP SCHEMA IF EXISTS "{_queue_schema(schema)}" CASCADE'))
