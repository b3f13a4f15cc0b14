"""The acceptance matrix's world: tenants with their HAPI partitions, a user of every role in each,
real tokens (``open_world``: the platform conftest's ``world`` (A, B), the gateway conftest's ``gw``
(ga, gb); one more with ``make_tenant``).

Everything is created through the real code paths: tenants with their HAPI partitions
(``ehr.platform.tenancy``), users with role grants (``ehr.platform.auth.service.create_user``),
access tokens signed like login's (``ehr.platform.auth.tokens.issue_access_token_for``), patients
in each partition through the FHIR client bound to that tenant. Slugs are unique per run; at the
end the test data, the partitions and the rows are removed (audit records stay: the audit log is
append-only).

``open_world(settings, run_id, labels)``  a :class:`World`: ``world.tenants[label]`` →
                                          :class:`TenantWorld` (slug, ids, tokens by role, the
                                          normal and the restricted patient)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ehr.core.config import Settings
from ehr.fhir import FhirClient
from ehr.platform import fhir_changes
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant
from support.database import Sessions, open_sessions
from support.tenants import remove_tenants

__all__ = [
    "MRN_SYSTEM",
    "TenantWorld",
    "World",
    "make_tenant",
    "open_world",
    "remove_tenants",
    "world_slug",
]

MRN_SYSTEM = "urn:ehr:test:authz-mrn"


@dataclass
class TenantWorld:
    label: str
    slug: str
    tenant_id: uuid.UUID
    tokens: dict[Role, str] = field(default_factory=dict)
    users: dict[Role, uuid.UUID] = field(default_factory=dict)
    patient: dict[str, Any] = field(default_factory=dict)
    restricted: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return str(self.patient["name"][0]["family"])

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@dataclass
class World:
    run: str
    tenants: dict[str, TenantWorld]
    sessionmaker: Sessions
    fhir: FhirClient
    settings: Settings


def _password() -> str:
    return "-".join(secrets.token_urlsafe(6) for _ in range(4))


def _patient(run: str, label: str, kind: str, *, restricted: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"tag": [{"system": "urn:ehr:test", "code": run}]}
    if restricted:
        meta["security"] = [{"system": CONFIDENTIALITY_SYSTEM, "code": "R"}]
    return {
        "resourceType": "Patient",
        "meta": meta,
        "identifier": [{"system": MRN_SYSTEM, "value": f"{run}-{label}-{kind}"}],
        "name": [{"family": f"Zzauthz{label}{kind}{run.replace('-', '')}", "given": ["Matrix"]}],
        "gender": "unknown",
        "birthDate": "1970-01-01",
    }


async def make_tenant(
    label: str,
    run: str,
    sessions: Sessions,
    fhir: FhirClient,
    settings: Settings,
    *,
    change_feed: bool = False,
) -> TenantWorld:
    slug = world_slug(label, run)
    async with sessions() as session, session.begin():
        tenant, _ = await create_tenant(session, fhir, slug=slug, name=f"Matrix {label}")
        world = TenantWorld(label=label, slug=slug, tenant_id=tenant.id)
    if change_feed:
        await fhir_changes.ensure_for_tenant(fhir, settings, slug)
    tenant_fhir = fhir.for_tenant(slug)
    world.patient = await tenant_fhir.create(_patient(run, label, "p"))
    world.restricted = await tenant_fhir.create(_patient(run, label, "r", restricted=True))
    async with sessions() as session, session.begin():
        for role in Role:
            user = await create_user(
                session,
                tenant_id=world.tenant_id,
                username=f"matrix.{role.value}",
                password=_password(),
                roles=[role.value],
                patient_id=world.patient["id"] if role is Role.PATIENT else None,
                granted_by="test",
                settings=settings,
            )
            world.users[role] = user.id
            world.tokens[role] = await issue_access_token_for(session, settings, user)
    return world


def world_slug(label: str, run: str) -> str:
    """The slug :func:`make_tenant` gives the tenant ``label`` of ``run``."""
    return f"z-{run[4:]}-{label}"


@asynccontextmanager
async def open_world(
    settings: Settings, run: str, labels: Iterable[str], *, change_feed: bool = False
) -> AsyncIterator[World]:
    """A :class:`World` of one tenant per label; everything made is removed at the end.

    ``change_feed``: the tenants get the HAPI subscriptions of the FHIR change feed (their
    changes reach the stack's worker as events); removed with the tenants."""
    fhir = FhirClient(settings.fhir)
    made: list[str] = []
    try:
        async with open_sessions(settings) as sessions:
            try:
                tenants: dict[str, TenantWorld] = {}
                for label in labels:
                    made.append(world_slug(label, run))
                    tenants[label] = await make_tenant(
                        label, run, sessions, fhir, settings, change_feed=change_feed
                    )
                yield World(
                    run=run, tenants=tenants, sessionmaker=sessions, fhir=fhir, settings=settings
                )
            finally:
                if change_feed:
                    off = settings.fhir_changes.model_copy(update={"enabled": False})
                    for slug in made:
                        await fhir_changes.ensure_subscriptions(
                            fhir.for_tenant(slug), off, settings.security.secret_key, slug
                        )
                await remove_tenants(made, fhir, sessions)
    finally:
        await fhir.aclose()
