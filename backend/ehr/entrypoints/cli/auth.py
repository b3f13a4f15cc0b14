"""Operator commands for key material, token housekeeping and accounts' state.

Mounted as ``ehr keys``:

ehr keys rotate-signing     retire the JWT signing key and create a new one (new kid)
ehr keys reencrypt          re-encrypt MFA secrets and signing keys with the first
                            EHR_AUTH__ENCRYPTION_KEYS entry (after prepending a new key)
ehr keys purge-expired      delete expired revocations and refresh sessions (periodic job)

Mounted as ``ehr auth`` (each acts on running API processes at once: after the commit the change
stamps are written to Redis, see ehr.platform.auth.principal_cache):

ehr auth disable-user --tenant SLUG USERNAME      its tokens are refused from now on
ehr auth enable-user --tenant SLUG USERNAME
ehr auth set-roles --tenant SLUG USERNAME --role R [--role ...]   exactly these roles
ehr auth flush-principal-cache                    after editing users, role_grants, tenants or
                                                  api_keys by hand: every process reloads them

If Redis cannot be reached after the commit, the change is made but other processes may serve
the old account for up to ``EHR_AUTH__PRINCIPAL_CACHE_SECONDS``: the command says so and exits 1.
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.redis_store import create_redis
from ehr.entrypoints.cli.runner import fail, run, settings_or_exit, user_by_name
from ehr.fhir import FhirClient
from ehr.platform.auth.crypto import reencrypt_all
from ehr.platform.auth.principal_cache import flush_principal_cache, publish_principal_changes
from ehr.platform.auth.revocation import purge_expired
from ehr.platform.auth.service import disable_user, enable_user, set_user_roles
from ehr.platform.auth.signing_keys import rotate_signing_key

__all__ = ["auth_app", "keys_app", "publish_after_commit"]

keys_app = typer.Typer(
    help="Signing and encryption keys; token housekeeping.", no_args_is_help=True
)


@keys_app.command("rotate-signing")
def rotate_signing() -> None:
    """Create a new ES256 signing key; the old one stays verifiable until its grace ends."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        kid = await rotate_signing_key(session, settings)
        typer.echo(f"new signing key {kid}")

    run("keys rotate-signing", work)


@keys_app.command("reencrypt")
def reencrypt() -> None:
    """Re-encrypt every secret at rest with the newest encryption key."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        count = await reencrypt_all(session, settings)
        typer.echo(f"re-encrypted {count} secrets with the first EHR_AUTH__ENCRYPTION_KEYS entry")

    run("keys reencrypt", work)


@keys_app.command("purge-expired")
def purge() -> None:
    """Delete revocation rows and refresh sessions whose tokens have expired."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        count = await purge_expired(session)
        typer.echo(f"purged {count} expired rows")

    run("keys purge-expired", work)


# --- accounts -------------------------------------------------------------------------------

auth_app = typer.Typer(
    help="Accounts' state (acts on running API processes at once).", no_args_is_help=True
)


async def _publish(settings: Settings) -> bool:
    redis = create_redis(settings)
    try:
        return await publish_principal_changes(redis)
    finally:
        await redis.aclose()


def publish_after_commit(command: str) -> None:
    """Write the change stamps of what ``command`` committed (call right after :func:`run`)."""
    if not asyncio.run(_publish(settings_or_exit())):
        raise fail(
            command,
            "committed, but Redis could not be reached: running API processes may use the old "
            "account until EHR_AUTH__PRINCIPAL_CACHE_SECONDS pass",
            code=1,
        )


_OPERATOR = f"cli:{getpass.getuser()}"
TenantOption = Annotated[str, typer.Option(help="Tenant slug.")]
UsernameArgument = Annotated[str, typer.Argument()]


@auth_app.command("disable-user")
def users_disable(username: UsernameArgument, tenant: TenantOption) -> None:
    """Disable a user: its tokens and logins are refused from now on."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        user = await disable_user(session, (await user_by_name(session, tenant, username)).id)
        typer.echo(f"user {user.username} disabled in {tenant}")

    run("auth disable-user", work)
    publish_after_commit("auth disable-user")


@auth_app.command("enable-user")
def users_enable(username: UsernameArgument, tenant: TenantOption) -> None:
    """Re-enable a disabled user."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        user = await enable_user(session, (await user_by_name(session, tenant, username)).id)
        typer.echo(f"user {user.username} enabled in {tenant}")

    run("auth enable-user", work)
    publish_after_commit("auth enable-user")


@auth_app.command("set-roles")
def users_set_roles(
    username: UsernameArgument,
    tenant: TenantOption,
    role: Annotated[list[str], typer.Option(help="A role (repeat for several).")],
) -> None:
    """Make these the user's roles: a removed one stops working at once."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        user = await user_by_name(session, tenant, username)
        roles = await set_user_roles(session, user_id=user.id, roles=role, granted_by=_OPERATOR)
        typer.echo(f"user {user.username} in {tenant}: roles {sorted(roles)}")

    run("auth set-roles", work)
    publish_after_commit("auth set-roles")


@auth_app.command("flush-principal-cache")
def flush() -> None:
    """Make every API process reload every account and API key (after a hand edit)."""
    settings = settings_or_exit()

    async def main() -> None:
        redis = create_redis(settings)
        try:
            await flush_principal_cache(redis)
        finally:
            await redis.aclose()

    try:
        asyncio.run(main())
    except (RedisError, OSError) as exc:
        message = f"Redis is unavailable ({type(exc).__name__})"
        raise fail("auth flush-principal-cache", message, code=1) from None
    typer.echo("principal cache flushed: every process reloads accounts on its next request")
