"""SMART App Launch (ADR 0032): app clients (redirect URIs, launch types, a hashed secret), EHR
launches, authorization requests with their codes, rotating refresh tokens, and a user's FHIR
Practitioner (fhirUser).

Revision ID: 0013_smart_app_launch
Revises: 0012_smart_clients
Create Date: 2026-12-07 19:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_smart_app_launch"
down_revision: str | Sequence[str] | None = "0012_smart_clients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMPTY_ARRAY = sa.text("'{}'")


def _schema() -> str:
    schema = op.get_context().version_table_schema
    if not schema:
        raise RuntimeError("env.py sets version_table_schema to the app schema")
    return str(schema)


def _fk(schema: str, table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{schema}.{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    schema = _schema()
    op.add_column(
        "users", sa.Column("practitioner_id", sa.String(length=64), nullable=True), schema=schema
    )
    op.drop_constraint(
        op.f("ck_smart_clients_kind_known"), "smart_clients", type_="check", schema=schema
    )
    op.create_check_constraint(
        op.f("ck_smart_clients_kind_known"),
        "smart_clients",
        "kind IN ('backend_service', 'public_app', 'confidential_app')",
        schema=schema,
    )
    for name, length in (("redirect_uris", 2000), ("launch_types", 16)):
        op.add_column(
            "smart_clients",
            sa.Column(
                name,
                postgresql.ARRAY(sa.String(length=length)),
                server_default=_EMPTY_ARRAY,
                nullable=False,
            ),
            schema=schema,
        )
        op.alter_column("smart_clients", name, server_default=None, schema=schema)
    for name, length in (("launch_uri", 2000), ("secret_hash", 64)):
        op.add_column(
            "smart_clients", sa.Column(name, sa.String(length=length), nullable=True), schema=schema
        )

    op.create_table(
        "smart_launches",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("patient", sa.String(length=64), nullable=False),
        sa.Column("encounter", sa.String(length=64), nullable=True),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _fk(schema, "smart_launches", "tenant_id", "tenants"),
        _fk(schema, "smart_launches", "client_id", "smart_clients"),
        _fk(schema, "smart_launches", "user_id", "users"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_smart_launches")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_smart_launches_expires_at"), "smart_launches", ["expires_at"], schema=schema
    )

    op.create_table(
        "smart_authorizations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("csrf_hash", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("state", sa.String(length=2000), nullable=True),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("requested_scopes", postgresql.ARRAY(sa.String(length=128)), nullable=False),
        sa.Column("granted_scopes", postgresql.ARRAY(sa.String(length=128)), nullable=False),
        sa.Column("launch_hash", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("patient", sa.String(length=64), nullable=True),
        sa.Column("encounter", sa.String(length=64), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("family_id", sa.UUID(), nullable=True),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'authenticated', 'code', 'redeemed', 'ended')",
            name=op.f("ck_smart_authorizations_status_known"),
        ),
        _fk(schema, "smart_authorizations", "tenant_id", "tenants"),
        _fk(schema, "smart_authorizations", "client_id", "smart_clients"),
        _fk(schema, "smart_authorizations", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_authorizations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_smart_authorizations_code_hash")),
        schema=schema,
    )
    op.create_index(
        op.f("ix_smart_authorizations_expires_at"),
        "smart_authorizations",
        ["expires_at"],
        schema=schema,
    )

    op.create_table(
        "smart_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=128)), nullable=False),
        sa.Column("patient", sa.String(length=64), nullable=True),
        sa.Column("encounter", sa.String(length=64), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        _created_at(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _fk(schema, "smart_refresh_tokens", "tenant_id", "tenants"),
        _fk(schema, "smart_refresh_tokens", "client_id", "smart_clients"),
        _fk(schema, "smart_refresh_tokens", "user_id", "users"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_smart_refresh_tokens")),
        schema=schema,
    )
    for column in ("family_id", "expires_at"):
        op.create_index(
            op.f(f"ix_smart_refresh_tokens_{column}"),
            "smart_refresh_tokens",
            [column],
            schema=schema,
        )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("smart_refresh_tokens", schema=schema)
    op.drop_table("smart_authorizations", schema=schema)
    op.drop_table("smart_launches", schema=schema)
    op.execute(
        sa.text(
            f"DELETE FROM \"{schema}\".smart_clients WHERE kind <> 'backend_service'"  # noqa: S608
        )
    )
    for name in ("secret_hash", "launch_uri", "launch_types", "redirect_uris"):
        op.drop_column("smart_clients", name, schema=schema)
    op.drop_constraint(
        op.f("ck_smart_clients_kind_known"), "smart_clients", type_="check", schema=schema
    )
    op.create_check_constraint(
        op.f("ck_smart_clients_kind_known"),
        "smart_clients",
        "kind IN ('backend_service')",
        schema=schema,
    )
    op.drop_column("users", "practitioner_id", schema=schema)
