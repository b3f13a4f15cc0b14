"""``ehr cds-hooks``: the CDS clients a tenant trusts (CDS Hooks 2.0 "Trusting CDS Clients").

    ehr cds-hooks clients add --tenant SLUG --issuer ISS --name NAME
                              [--jwks-file PATH] [--jku URL]... [--fhir-server URL]...
                              [--first-party]
    ehr cds-hooks clients list --tenant SLUG
    ehr cds-hooks clients disable ISSUER      its tokens are refused from now on
    ehr cds-hooks clients enable ISSUER

``--jwks-file`` holds the client's public keys (a JWKS ``{"keys": [...]}``, or one JWK); at least
one of it and ``--jku`` is needed. Errors are one line on stderr; bad input (unknown tenant,
private or symmetric keys, http URLs...) exits with status 2, an unavailable database with 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import CdsClient
from ehr.entrypoints.cli.runner import read_jwks_file, run
from ehr.fhir import FhirClient
from ehr.modules.cds_hooks import (
    disable_client,
    enable_client,
    list_clients,
    register_client,
)

__all__ = ["app", "clients_app"]

app = typer.Typer(
    name="cds-hooks",
    help="CDS Hooks 2.0 services: the CDS clients each tenant trusts.",
    no_args_is_help=True,
)
clients_app = typer.Typer(
    help="Trusted CDS clients (JWT issuers and their public keys).", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")


def _describe(client: CdsClient) -> str:
    state = "enabled" if client.enabled else "disabled"
    party = "first-party" if client.first_party else "third-party"
    stored = len(client.jwks.get("keys", [])) if isinstance(client.jwks, dict) else 0
    keys = f"jwks {stored} key(s)" if client.jwks is not None else "no stored jwks"
    jku = ",".join(client.jku_allowlist) or "-"
    servers = ",".join(client.fhir_servers) or "-"
    return (
        f"{client.issuer}\t{state}\t{party}\t{client.name}\t{keys}\tjku {jku}\t"
        f"fhir servers {servers}"
    )


@clients_app.command("add")
def clients_add(
    tenant: Annotated[str, typer.Option(help="Tenant slug the client acts for.")],
    issuer: Annotated[str, typer.Option(help="The client's JWT issuer ('iss').")],
    name: Annotated[str, typer.Option(help="Display name.")],
    jwks_file: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="The client's public keys: a JWKS JSON file."),
    ] = None,
    jku: Annotated[
        list[str] | None,
        typer.Option(help="A JWKS URL the client may name in 'jku' (repeatable)."),
    ] = None,
    fhir_server: Annotated[
        list[str] | None,
        typer.Option(help="A FHIR server the client may name in 'fhirServer' (repeatable)."),
    ] = None,
    first_party: Annotated[
        bool,
        typer.Option(help="Our own frontend: without 'fhirServer', read HAPI in the tenant."),
    ] = False,
) -> None:
    """Trust a CDS client: its issuer, keys and FHIR servers."""
    command = "cds-hooks clients add"
    jwks = read_jwks_file(command, jwks_file) if jwks_file is not None else None

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        client = await register_client(
            session,
            tenant_slug=tenant,
            issuer=issuer,
            name=name,
            jwks=jwks,
            jku_allowlist=jku or (),
            fhir_servers=fhir_server or (),
            first_party=first_party,
        )
        typer.echo(f"cds client {client.issuer} registered for {tenant}: id {client.id}")

    run(command, work)


@clients_app.command("list")
def clients_list(tenant: Annotated[str, typer.Option(help="Tenant slug.")]) -> None:
    """The tenant's CDS clients: issuer, state, party, name, key sources, FHIR servers."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        for client in await list_clients(session, tenant):
            typer.echo(_describe(client))

    run("cds-hooks clients list", work)


@clients_app.command("disable")
def clients_disable(issuer: Annotated[str, typer.Argument(help="The client's issuer.")]) -> None:
    """Refuse the client's tokens from now on."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        client = await disable_client(session, issuer)
        typer.echo(f"cds client {client.issuer} disabled")

    run("cds-hooks clients disable", work)


@clients_app.command("enable")
def clients_enable(issuer: Annotated[str, typer.Argument(help="The client's issuer.")]) -> None:
    """Accept the client's tokens again."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        client = await enable_client(session, issuer)
        typer.echo(f"cds client {client.issuer} enabled")

    run("cds-hooks clients enable", work)
