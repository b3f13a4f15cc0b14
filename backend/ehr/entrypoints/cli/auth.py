"""Operator commands for key material and token housekeeping (mounted as ``ehr keys``).

ehr keys rotate-signing     retire the JWT signing key and create a new one (new kid)
ehr keys reencrypt          re-encrypt MFA secrets and signing keys with the first
                            EHR_AUTH__ENCRYPTION_KEYS entry (after prepending a new key)
ehr keys purge-expired      delete expired revocations and refresh sessions (periodic job)
"""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.entrypoints.cli.runner import run
from ehr.fhir import FhirClient
from ehr.platform.auth.crypto import reencrypt_all
from ehr.platform.auth.revocation import purge_expired
from ehr.platform.auth.signing_keys import rotate_signing_key

__all__ = ["keys_app"]

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
