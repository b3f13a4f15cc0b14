"""``ehr audit``: operator commands for the audit trail.

ehr audit verify [--tenant SLUG] [--heads]
                                      verify every checkpoint (signature, links) and every
                                      shard chain against them; OK with a line per tenant, or
                                      the first break (tenant, shard, seq, id / checkpoint)
                                      and exit status 1
ehr audit checkpoint [--tenant SLUG]  sign a checkpoint now for each tenant whose heads moved
ehr audit export --tenant SLUG [--format csv|ndjson|fhir] [--since ISO] [--until ISO]
                                      the tenant's records to stdout (oldest first)
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy import text

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import AuditCheckpoint
from ehr.entrypoints.cli.runner import settings_or_exit
from ehr.platform.audit.chain import VerificationResult
from ehr.platform.audit.checkpoints import verify_trail, write_checkpoints
from ehr.platform.audit.export import stream_bundle, stream_csv, stream_ndjson
from ehr.platform.audit.schemas import AuditFilters, ExportFormat
from ehr.platform.audit.service import stream_records

__all__ = ["app", "checkpoint_command", "export_command", "verify_command"]

app = typer.Typer(
    name="audit", help="Audit trail: verify the chains and checkpoints, checkpoint, export."
)


async def _verify(settings: Settings, tenant: str | None) -> VerificationResult:
    engine = create_engine(settings.db)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            # A consistent snapshot of every chain and checkpoint while verifying.
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            return await verify_trail(session, settings, tenant)
    finally:
        await engine.dispose()


def _tenant_lines(result: VerificationResult, *, heads: bool) -> list[str]:
    by_tenant: dict[str, list[tuple[int, int, str]]] = {}
    for (name, shard), (seq, digest) in result.heads.items():
        by_tenant.setdefault(name, []).append((shard, seq, digest))
    lines: list[str] = []
    for name in result.tenants:
        chains = sorted(by_tenant.get(name, []))
        records = sum(seq for _, seq, _ in chains)
        lines.append(f"  {name}: {records} record(s) in {len(chains)} shard chain(s)")
        if heads:
            lines.extend(
                f"    shard {shard}: seq {seq} head {digest}" for shard, seq, digest in chains
            )
    return lines


@app.command("verify")
def verify_command(
    tenant: Annotated[
        str | None, typer.Option(help="Verify only this tenant (default: every tenant).")
    ] = None,
    heads: Annotated[bool, typer.Option("--heads", help="Print every shard chain's head.")] = False,
) -> None:
    """Verify the checkpoints and the shard chains; report the first break (exit status 1)."""
    settings = settings_or_exit()
    result = asyncio.run(_verify(settings, tenant))
    if result.broken is not None:
        typer.echo(f"BROKEN: {result.broken.describe()}")
        raise typer.Exit(code=1)
    typer.echo(
        f"OK: {result.records_checked} records in {len(result.heads)} chain(s) of "
        f"{len(result.tenants)} tenant(s), {result.checkpoints_checked} checkpoint(s) verified"
    )
    for line in _tenant_lines(result, heads=heads):
        typer.echo(line)


async def _checkpoint(settings: Settings, tenant: str | None) -> list[AuditCheckpoint]:
    engine = create_engine(settings.db)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await write_checkpoints(session, settings, tenant=tenant) or []
    finally:
        await engine.dispose()


@app.command("checkpoint")
def checkpoint_command(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every tenant).")
    ] = None,
) -> None:
    """Sign a checkpoint of every shard head now (tenants whose heads moved since the last)."""
    settings = settings_or_exit()
    written = asyncio.run(_checkpoint(settings, tenant))
    if not written:
        typer.echo("OK: no heads moved since the last checkpoint; nothing written")
        return
    typer.echo(f"OK: {len(written)} checkpoint(s) written")
    for checkpoint in written:
        typer.echo(
            f"  {checkpoint.tenant}: checkpoint {checkpoint.seq}, {len(checkpoint.heads)} shard "
            f"head(s), key {checkpoint.key_id}"
        )


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
