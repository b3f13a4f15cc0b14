"""Operator commands for tenants, users and API keys (mounted on the ``ehr`` CLI).

    ehr tenants create SLUG --name NAME        row + HAPI partition (idempotent)
    ehr tenants list
    ehr tenants disable SLUG                   its users and API keys are refused from now on
    ehr users create --tenant SLUG USERNAME --role ROLE [--role ...]
                     [--password-stdin | a generated password printed once]
    ehr users reset-mfa --tenant SLUG USERNAME
    ehr api-keys create --tenant SLUG --name NAME [--role R] [--permission P] --ttl-days N
    ehr api-keys revoke KEY_ID
    ehr api-keys list --tenant SLUG

Errors are one line on stderr (``ehr.entrypoints.cli.runner``); bad input (unknown tenant, invalid
slug, weak password, unknown role...) exits with status 2, an unavailable dependency with 1.
Secrets (generated passwords, API keys) are printed once, on stdout, and never logged.
"""

from __future__ import annotations

import getpass
import secrets
import sys
import uuid
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.entrypoints.cli.auth import publish_after_commit
from ehr.entrypoints.cli.runner import fail, run, user_by_name
from ehr.fhir import FhirClient
from ehr.platform import fhir_changes
from ehr.platform.auth.api_keys import create_api_key, list_api_keys, revoke_api_key
from ehr.platform.auth.service import create_user, reset_mfa
from ehr.platform.tenancy.service import (
    create_tenant,
    disable_tenant,
    get_tenant_by_slug,
    list_tenants,
)

__all__ = ["api_keys_app", "tenants_app", "users_app"]

tenants_app = typer.Typer(help="Tenants (one HAPI partition each).", no_args_is_help=True)
users_app = typer.Typer(help="Users of a tenant.", no_args_is_help=True)
api_keys_app = typer.Typer(help="API keys of service clients.", no_args_is_help=True)

OPERATOR = f"cli:{getpass.getuser()}"


def _uuid(command: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(command, f"'{value}' is not a key id (UUID)") from None


# --- tenants --------------------------------------------------------------------------------


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Lowercase slug = HAPI partition name.")],
    name: Annotated[str, typer.Option(help="Display name.")],
) -> None:
    """Create the tenant, its HAPI partition and the partition's change-feed subscriptions
    (re-running with the same slug is fine)."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        tenant, created = await create_tenant(session, fhir, slug=slug, name=name)
        if tenant.status == "active" and settings.fhir_changes.enabled:
            await fhir_changes.ensure_for_tenant(fhir, settings, tenant.slug)
        state = "created" if created else f"exists ({tenant.status})"
        typer.echo(f"tenant {tenant.slug} {state}: partition {tenant.partition_id}, id {tenant.id}")

    run("tenants create", work)


@tenants_app.command("list")
def tenants_list() -> None:
    """Every tenant: slug, status, partition id, name."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        for tenant in await list_tenants(session):
            typer.echo(f"{tenant.slug}\t{tenant.status}\t{tenant.partition_id}\t{tenant.name}")

    run("tenants list", work)


@tenants_app.command("repair-subscriptions")
def tenants_repair_subscriptions() -> None:
    """Make every active tenant's HAPI subscriptions (the FHIR change feed, ADR 0027) right:
    what the worker does at start."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        slugs = await fhir_changes.active_tenants(session)
        for slug, repair in (await fhir_changes.repair_tenants(fhir, settings, slugs)).items():
            state = "changed" if repair.changed else "unchanged"
            typer.echo(
                f"{slug}\t{state}\tkept {len(repair.kept)}, created {len(repair.created)}, "
                f"rewritten {len(repair.rewritten)}, deleted {len(repair.deleted)}"
            )

    run("tenants repair-subscriptions", work)


@tenants_app.command("disable")
def tenants_disable(slug: Annotated[str, typer.Argument()]) -> None:
    """Disable the tenant: its users' tokens and API keys are refused (data is kept)."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        tenant = await disable_tenant(session, slug)
        typer.echo(f"tenant {tenant.slug} disabled")

    run("tenants disable", work)
    publish_after_commit("tenants disable")


# --- users ----------------------------------------------------------------------------------


def generate_password() -> str:
    """A random password (~120 bits) that passes the policy."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(4))


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    role: Annotated[list[str], typer.Option(help="A role (repeat for several).")],
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from stdin (else one is generated).")
    ] = False,
    display_name: Annotated[str | None, typer.Option()] = None,
    patient_id: Annotated[
        str | None, typer.Option(help="FHIR Patient id (portal role 'patient').")
    ] = None,
) -> None:
    """Create a user with roles; prints a generated password once unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("users create", "no password on stdin")
        generated = False
    else:
        password, generated = generate_password(), True

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        found = await get_tenant_by_slug(session, tenant)
        if patient_id is not None:
            # The portal user's Patient must exist in this tenant's partition.
            await fhir.for_tenant(found.slug).read("Patient", patient_id)
        user = await create_user(
            session,
            tenant_id=found.id,
            username=username,
            password=password,
            roles=role,
            display_name=display_name,
            patient_id=patient_id,
            granted_by=OPERATOR,
            settings=settings,
        )
        typer.echo(f"user {user.username} created in {tenant}: id {user.id}, roles {sorted(role)}")
        if generated:
            typer.echo(f"password (shown once): {password}")

    run("users create", work)


@users_app.command("reset-mfa")
def users_reset_mfa(
    username: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
) -> None:
    """Remove the user's MFA enrolment and recovery codes (they enrol again at next login)."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        user = await user_by_name(session, tenant, username)
        await reset_mfa(session, user.id)
        typer.echo(f"MFA reset for {user.username} in {tenant}")

    run("users reset-mfa", work)


# --- API keys -------------------------------------------------------------------------------


@api_keys_app.command("create")
def api_keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    name: Annotated[str, typer.Option(help="What the key is for.")],
    ttl_days: Annotated[int, typer.Option(help="Days until the key expires.")],
    role: Annotated[list[str] | None, typer.Option(help="A role (repeatable).")] = None,
    permission: Annotated[
        list[str] | None, typer.Option(help="A permission, e.g. patient:read (repeatable).")
    ] = None,
) -> None:
    """Create an API key; the key is printed once."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        found = await get_tenant_by_slug(session, tenant)
        key, plaintext = await create_api_key(
            session,
            tenant_id=found.id,
            name=name,
            roles=role or (),
            permissions=permission or (),
            ttl_days=ttl_days,
            created_by=OPERATOR,
            max_ttl_days=settings.auth.api_key_max_ttl_days,
        )
        typer.echo(f"api key {key.id} ({key.prefix}) created, expires {key.expires_at:%Y-%m-%d}")
        typer.echo(f"key (shown once): {plaintext}")

    run("api-keys create", work)


@api_keys_app.command("revoke")
def api_keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key at once."""
    parsed = _uuid("api-keys revoke", key_id)

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        await revoke_api_key(session, parsed)
        typer.echo(f"api key {parsed} revoked")

    run("api-keys revoke", work)
    publish_after_commit("api-keys revoke")


@api_keys_app.command("list")
def api_keys_list(tenant: Annotated[str, typer.Option(help="Tenant slug.")]) -> None:
    """The tenant's keys (id, prefix, name, state, expiry, last use); never the keys."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        found = await get_tenant_by_slug(session, tenant)
        for key in await list_api_keys(session, found.id):
            state = "revoked" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%dT%H:%M}" if key.last_used_at else "never"
            typer.echo(
                f"{key.id}\t{key.prefix}\t{key.name}\t{state}\t"
                f"expires {key.expires_at:%Y-%m-%d}\tlast used {used}"
            )

    run("api-keys list", work)
