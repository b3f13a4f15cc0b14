"""The acceptance matrix's world (built by the ``world`` fixture in conftest.py): two tenants
(A, B), a user of every role in each, real tokens.

Everything is created through the real code paths: tenants with their HAPI partitions
(``ehr.platform.tenancy``), users with role grants (``ehr.platform.auth.service.create_user``),
access tokens signed
like login's (``ehr.platform.auth.tokens.issue_access_token_for``), patients in each partition
through the
FHIR client bound to that tenant. Slugs are unique per run; at the end the test data, the
partitions and the rows are removed (audit records stay: the audit log is append-only).

``world``  a :class:`World`: ``world.tenants["a"|"b"]`` → :class:`TenantWorld` (slug, ids,
           tokens by role, the normal and the restricted patient)
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.models import ApiKey, Tenant, User
from ehr.fhir import FhirClient
from ehr.platform.auth.authorization import CONFIDENTIALITY_SYSTEM
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import create_user
from ehr.platform.auth.tokens import issue_access_token_for
from ehr.platform.tenancy import create_tenant
from ehr.platform.tenancy.partitions import delete_partition, list_partitions

CLEANUP_ORDER = ("Observation", "Patient")
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
    sessionmaker: async_sessionmaker[AsyncSession]
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
    sessions: async_sessionmaker[AsyncSession],
    fhir: FhirClient,
    settings: Settings,
) -> TenantWorld:
    slug = f"z-{run[4:]}-{label}"
    async with sessions() as session, session.begin():
        tenant, _ = await create_tenant(session, fhir, slug=slug, name=f"Matrix {label}")
        world = TenantWorld(label=label, slug=slug, tenant_id=tenant.id)
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


async def remove_tenants(
    slugs: list[str], fhir: FhirClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    partitions = {p.name: p.id for p in await list_partitions(fhir)}
    for slug in slugs:
        if slug not in partitions:
            continue
        tenant_fhir = fhir.for_tenant(slug)
        for resource_type in CLEANUP_ORDER:
            bundle = await tenant_fhir.search(resource_type, {"_count": "500", "_elements": "id"})
            for entry in bundle.get("entry") or []:
                await tenant_fhir.delete(resource_type, entry["resource"]["id"])
        await delete_partition(fhir, partitions[slug])
    async with sessions() as session, session.begin():
        ids = list((await session.scalars(select(Tenant.id).where(Tenant.slug.in_(slugs)))).all())
        if ids:
            await session.execute(delete(ApiKey).where(ApiKey.tenant_id.in_(ids)))
            await session.execute(delete(User).where(User.tenant_id.in_(ids)))
            await session.execute(delete(Tenant).where(Tenant.id.in_(ids)))
