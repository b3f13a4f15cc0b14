"""``ehr pharmacy ledger verify|export``: the pharmacy stock ledger (ADR 0034).

``verify`` recomputes each tenant's hash chain (or one tenant's) and exits 1 when any row does
not verify — naming its ``seq`` and the problem (an edited row: ``hash_mismatch``; a removed
one: ``seq_gap``). ``export`` writes a tenant's ledger (or only its scheduled products) as CSV,
in chain order, for a DEA biennial inventory or an inspection.
"""

from __future__ import annotations

import csv
import sys
import uuid
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.entrypoints.cli.runner import run
from ehr.fhir import FhirClient
from ehr.modules import pharmacy
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["pharmacy_app"]

pharmacy_app = typer.Typer(help="Pharmacy stock: the hash-chained ledger.", no_args_is_help=True)
ledger_app = typer.Typer(
    help="The stock ledger: verify its chain, export it.", no_args_is_help=True
)
pharmacy_app.add_typer(ledger_app, name="ledger")


async def _tenants(session: AsyncSession, slug: str | None) -> list[tuple[str, uuid.UUID]]:
    if slug is not None:
        tenant = await get_tenant_by_slug(session, slug)
        return [(tenant.slug, tenant.id)]
    rows = await session.execute(select(Tenant.slug, Tenant.id).order_by(Tenant.slug))
    return [(str(s), i) for s, i in rows.all()]


@ledger_app.command("verify")
def verify_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant slug (default: every tenant).")
    ] = None,
) -> None:
    """Recompute the ledger's hash chain; exit 1 on any break."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> bool:
        intact = True
        for slug, tenant_id in await _tenants(session, tenant):
            result = await pharmacy.verify_ledger(session, tenant_id)
            if result.entries == 0 and tenant is None:
                continue
            state = "intact" if result.intact else "BROKEN"
            typer.echo(f"{slug}: {result.entries} entries, {state}, head {result.head_hash[:16]}")
            for found in result.breaks:
                typer.echo(f"  seq {found.seq}: {found.problem}")
            intact = intact and result.intact
        return intact

    if not run("pharmacy ledger verify", work):
        raise typer.Exit(code=1)


@ledger_app.command("export")
def export_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    controlled: Annotated[bool, typer.Option(help="Only scheduled products.")] = True,
) -> None:
    """The ledger as CSV on stdout, in chain order."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        ((_, tenant_id),) = await _tenants(session, tenant)
        writer = csv.DictWriter(sys.stdout, fieldnames=pharmacy.EXPORT_FIELDS)
        writer.writeheader()
        async for line in pharmacy.export_ledger(session, tenant_id, controlled=controlled):
            writer.writerow(line)

    run("pharmacy ledger export", work)
