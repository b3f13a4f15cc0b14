"""``ehr order-sets``: the shipped starter order sets.

ehr order-sets install --tenant T    install the starter sets tenant T does not have yet
                                     (by key; re-running creates nothing); prints JSON
ehr order-sets list-starter          the shipped sets: key, version, members, sources
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.entrypoints.cli.runner import run
from ehr.fhir import FhirClient
from ehr.modules.order_sets import OrderSetService, load_starter_sets
from ehr.platform.auth.principal import Principal
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["app"]

app = typer.Typer(
    name="order-sets",
    help="Order sets: install the shipped starter sets into a tenant.",
    no_args_is_help=True,
)

# The definitions' preview drafts name a requester; an operator command acts as this one.
OPERATOR = "ehr order-sets install"


@app.command("install")
def install(
    tenant: Annotated[str, typer.Option(help="The tenant (slug) to install the sets into.")],
) -> None:
    """Install the starter sets the tenant does not have yet (idempotent)."""

    async def work(_s: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        found = await get_tenant_by_slug(session, tenant)
        operator = Principal(
            kind="user",
            subject=uuid.UUID(int=0),
            tenant=found.slug,
            tenant_id=found.id,
            roles=frozenset({"admin"}),
            username=OPERATOR,
        )
        service = OrderSetService(fhir.for_tenant(found.slug), principal=operator)
        installed = await service.install(load_starter_sets())
        typer.echo(json.dumps({"tenant": found.slug, "sets": [i.model_dump() for i in installed]}))

    run("order-sets install", work)


@app.command("list-starter")
def list_starter() -> None:
    """The shipped starter sets (no stack needed)."""
    for starter in load_starter_sets():
        sources = "; ".join(s.citation for s in starter.sources)
        typer.echo(
            f"{starter.key} v{starter.version}: {len(starter.members)} orders "
            f"({', '.join(m.key for m in starter.members)}) — {sources}"
        )
