"""``ehr webhooks list|add|disable|enable|deliveries|replay --tenant T``: a tenant's outbound
webhook endpoints for operators (ADR 0026). ``add`` prints the signing secret once. Like the
other ``ehr`` commands, the operator's shell is not audited as a request (no principal)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.entrypoints.cli.runner import run
from ehr.fhir import FhirClient
from ehr.platform import webhooks
from ehr.platform.tenancy import get_tenant_by_slug
from ehr.platform.webhooks.schemas import EndpointCreate

__all__ = ["webhooks_app"]

webhooks_app = typer.Typer(
    help="Outbound webhooks: endpoints, delivery log, replay.", no_args_is_help=True
)

TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant slug.")]


async def _tenant_id(session: AsyncSession, slug: str) -> uuid.UUID:
    return (await get_tenant_by_slug(session, slug)).id


@webhooks_app.command("list")
def list_command(tenant: TenantOption) -> None:
    """The tenant's endpoints (one JSON document per line; never the secrets)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        for endpoint in await webhooks.list_endpoints(session, await _tenant_id(session, tenant)):
            typer.echo(webhooks.endpoint_out(endpoint).model_dump_json())

    run("webhooks list", work)


@webhooks_app.command("add")
def add_command(
    tenant: TenantOption,
    url: Annotated[str, typer.Option(help="https URL of the receiver.")],
    event_type: Annotated[
        list[str], typer.Option("--event-type", help="order.signed, result.*, * (repeatable).")
    ],
    description: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register an endpoint (SSRF-checked); prints it with its secret (shown only now)."""
    body = EndpointCreate(url=url, event_types=event_type, description=description)

    async def work(settings: Settings, session: AsyncSession, _f: FhirClient) -> None:
        created = await webhooks.create_endpoint(
            session,
            settings,
            settings.webhooks,
            tenant_id=await _tenant_id(session, tenant),
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            created_by="operator:cli",
        )
        document = webhooks.endpoint_out(created.endpoint).model_dump(mode="json")
        typer.echo(json.dumps({**document, "secret": created.secret}))

    run("webhooks add", work)


def _toggle(tenant: str, endpoint_id: uuid.UUID, *, enabled: bool) -> None:
    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        endpoint = await webhooks.set_enabled(
            session, await _tenant_id(session, tenant), endpoint_id, enabled=enabled
        )
        typer.echo(webhooks.endpoint_out(endpoint).model_dump_json())

    run("webhooks enable" if enabled else "webhooks disable", work)


@webhooks_app.command("disable")
def disable_command(tenant: TenantOption, endpoint_id: uuid.UUID) -> None:
    """Stop sending to an endpoint."""
    _toggle(tenant, endpoint_id, enabled=False)


@webhooks_app.command("enable")
def enable_command(tenant: TenantOption, endpoint_id: uuid.UUID) -> None:
    """Send to an endpoint again (its failure streak starts from zero)."""
    _toggle(tenant, endpoint_id, enabled=True)


@webhooks_app.command("deliveries")
def deliveries_command(
    tenant: TenantOption,
    endpoint_id: uuid.UUID,
    status: Annotated[
        Literal["pending", "retrying", "succeeded", "failed"] | None, typer.Option()
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """An endpoint's delivery log, newest first (one JSON document per line)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        found = await webhooks.list_deliveries(
            session, await _tenant_id(session, tenant), endpoint_id, status=status, limit=limit
        )
        for delivery in found:
            typer.echo(webhooks.delivery_out(delivery).model_dump_json())

    run("webhooks deliveries", work)


@webhooks_app.command("replay")
def replay_command(tenant: TenantOption, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """Send a finished delivery's event again (a new delivery, the same webhook-id)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        replay = await webhooks.replay_delivery(
            session, await _tenant_id(session, tenant), endpoint_id, delivery_id, webhooks.DELIVER
        )
        typer.echo(webhooks.delivery_out(replay).model_dump_json())

    run("webhooks replay", work)
