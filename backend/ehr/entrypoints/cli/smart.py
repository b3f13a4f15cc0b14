"""``ehr smart``: SMART clients of a tenant (ADR 0032).

    ehr smart clients add-backend --tenant SLUG --name NAME --jwks-file PATH --scope SCOPE...
    ehr smart clients add-app --tenant SLUG --name NAME --redirect-uri URI... --scope SCOPE...
                              [--confidential [--jwks-file PATH]] [--launch ehr|standalone]...
                              [--launch-uri URI]
    ehr smart clients list --tenant SLUG
    ehr smart clients disable --tenant SLUG CLIENT_ID   its assertions and tokens stop working

A Backend Services client signs its token requests with a key of ``--jwks-file`` (public RSA or
EC keys, each with a ``kid``; RS384 or ES384) and may be granted the ``system/`` scopes given with
``--scope``. An app is public (PKCE only) unless ``--confidential``: then it authenticates with
a key of ``--jwks-file`` or, without one, a secret printed once. Bad input exits with status
2, an unavailable database with 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.entrypoints.cli.runner import read_jwks_file, run
from ehr.fhir import FhirClient
from ehr.platform.smart import (
    disable_client,
    fhir_base,
    list_clients,
    register_app,
    register_backend_service,
    token_endpoint_url,
)

__all__ = ["app", "clients_app"]

app = typer.Typer(name="smart", help="SMART on FHIR clients of each tenant.", no_args_is_help=True)
clients_app = typer.Typer(help="Registered SMART clients.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")


@clients_app.command("add-backend")
def clients_add_backend(
    tenant: Annotated[str, typer.Option(help="Tenant slug the client acts in.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    jwks_file: Annotated[
        Path, typer.Option(dir_okay=False, help="The client's public keys: a JWKS JSON file.")
    ],
    scope: Annotated[
        list[str], typer.Option(help="A system/ scope the client may be granted (repeatable).")
    ],
) -> None:
    """Register a SMART Backend Services client; prints its client_id and the token endpoint."""
    command = "smart clients add-backend"
    jwks = read_jwks_file(command, jwks_file)

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        client = await register_backend_service(
            session, tenant=tenant, name=name, jwks=jwks, scopes=scope, created_by="cli"
        )
        typer.echo(f"client_id {client.client_id}")
        typer.echo(f"token endpoint {token_endpoint_url(settings)}")
        typer.echo(f"scopes {' '.join(client.scopes)}")

    run(command, work)


@clients_app.command("add-app")
def clients_add_app(
    tenant: Annotated[str, typer.Option(help="Tenant slug the app acts in.")],
    name: Annotated[str, typer.Option(help="Display name (shown on the consent page).")],
    redirect_uri: Annotated[list[str], typer.Option(help="An exact redirect URI (repeatable).")],
    scope: Annotated[
        list[str],
        typer.Option(help="A patient/, user/ or SMART context scope it may ask for (repeatable)."),
    ],
    confidential: Annotated[
        bool, typer.Option(help="A confidential app (a server): a key or a secret.")
    ] = False,
    jwks_file: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Confidential app's public keys (else a secret)."),
    ] = None,
    launch: Annotated[
        list[str] | None, typer.Option(help="ehr and/or standalone (default both).")
    ] = None,
    launch_uri: Annotated[str | None, typer.Option(help="Where the EHR opens the app.")] = None,
) -> None:
    """Register a SMART app; prints its client_id (and a confidential app's secret, once)."""
    command = "smart clients add-app"
    jwks = read_jwks_file(command, jwks_file) if jwks_file is not None else None

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        client = await register_app(
            session,
            tenant=tenant,
            name=name,
            confidential=confidential,
            redirect_uris=redirect_uri,
            scopes=scope,
            launch_types=launch or ("ehr", "standalone"),
            launch_uri=launch_uri,
            jwks=jwks,
            created_by="cli",
        )
        typer.echo(f"client_id {client.client_id}")
        if client.client_secret is not None:
            typer.echo(f"client_secret {client.client_secret}  (shown once)")
        typer.echo(f"auth {client.auth_method}")
        typer.echo(f"fhir base {fhir_base(settings)}")
        typer.echo(f"scopes {' '.join(client.scopes)}")

    run(command, work)


@clients_app.command("list")
def clients_list(tenant: Annotated[str, typer.Option(help="Tenant slug.")]) -> None:
    """The tenant's SMART clients: client_id, state, kind, name, key ids, scopes."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        for client in await list_clients(session, tenant=tenant):
            state = "disabled" if client.disabled else "enabled"
            typer.echo(
                f"{client.client_id}\t{state}\t{client.kind}\t{client.name}\t"
                f"keys {','.join(client.key_ids)}\t{' '.join(client.scopes)}"
            )

    run("smart clients list", work)


@clients_app.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="The client's client_id.")],
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
) -> None:
    """Disable a client: new token requests are refused and its tokens stop working at once."""

    async def work(settings: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        await disable_client(session, tenant=tenant, client_id=client_id)
        typer.echo(f"client {client_id} disabled")

    run("smart clients disable", work)
