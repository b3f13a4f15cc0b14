"""``ehr audit``: operator commands for the audit trail.

ehr audit verify [--tenant SLUG]      recompute the hash chain(s); OK, or the first broken
                                      link (tenant, seq, id) and exit status 1
ehr audit export --tenant SLUG [--format csv|ndjson|fhir] [--since ISO] [--until ISO]
                                      the tenant's records to stdout (oldest first)
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.entrypoints.cli.runner import settings_or_exit
from ehr.platform.audit.chain import VerificationResult, verify_chain
from ehr.platform.audit.export import stream_bundle, stream_csv, stream_ndjson
from ehr.platform.audit.schemas import AuditFilters, ExportFormat
from ehr.platform.audit.service import stream_records

__all__ = ["app", "export_command", "verify_command"]

app = typer.Typer(name="audit", help="Audit trail: verify the hash chain, export.")


async def _verify(settings: Settings, tenant: str | None) -> VerificationResult:
    engine = create_engine(settings.db)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            # A consistent snapshot of every chain while verifying.
            return await verify_chain(session, tenant)
    finally:
        await engine.dispose()


@app.command("verify")
def verify_command(
    tenant: Annotated[
        str | None, typer.Option(help="Verify only this tenant's chain (default: every tenant).")
    ] = None,
) -> None:
    """Recompute the hash chain and report the first broken link (exit status 1)."""
    settings = settings_or_exit()
    result = asyncio.run(_verify(settings, tenant))
    if result.broken is not None:
        typer.echo(f"BROKEN: {result.broken.describe()}")
        raise typer.Exit(code=1)
    typer.echo(f"OK: {result.records_checked} records in {len(result.heads)} chain(s) verified")
    for name, head in sorted(result.heads.items()):
        typer.echo(f"  {name}: head {head}")


async def _export(settings: Settings, filters: AuditFilters, fmt: ExportFormat) -> None:
    engine = create_engine(settings.db)
    try:
        records = stream_records(create_sessionmaker(engine), filters)
        if fmt is ExportFormat.CSV:
            chunks = stream_csv(records)
        elif fmt is ExportFormat.NDJSON:
            chunks = stream_ndjson(records)
        else:
            chunks = stream_bundle(records)
        async for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.flush()
    finally:
        await engine.dispose()


@app.command("export")
def export_command(
    tenant: Annotated[str, typer.Option(help="The tenant whose records to export.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="csv, ndjson or fhir.")
    ] = ExportFormat.NDJSON,
    since: Annotated[
        datetime | None, typer.Option(help="From this instant (ISO 8601, UTC if no offset).")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Before this instant.")] = None,
) -> None:
    """Write the tenant's audit records (oldest first) to stdout."""
    settings = settings_or_exit()
    filters = AuditFilters(tenant=tenant, since=_aware(since), until=_aware(until))
    asyncio.run(_export(settings, filters, fmt))


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
