"""The demo tenant (development only): tenant ``demo`` with its HAPI partition, one user per role
and the synthetic patients in that partition. Idempotent: re-running creates nothing new.

Every demo user has the same development-only password (:data:`DEMO_PASSWORD`); the portal user
``demo.patient`` is linked to the first demo patient. Refused outside ``EHR_ENV=development``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Final

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import DEMO_PASSWORD, DEMO_TENANT, Environment, Settings
from ehr.core.db.models import User
from ehr.entrypoints.seed.demo import DEMO_MRN_SYSTEM, SeedReport, seed_demo_data
from ehr.fhir import FhirClient, bundle_resources
from ehr.platform import fhir_changes
from ehr.platform.auth.permissions import Role
from ehr.platform.tenancy.service import create_tenant

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_TENANT",
    "DemoTenantReport",
    "NotDevelopment",
    "demo_username",
    "seed_demo_tenant",
]

logger = structlog.get_logger(__name__)

DEMO_TENANT_NAME: Final = "Demo clinic (synthetic data)"
# Development only (the seed refuses other environments): long, no username in it, not common.
# The portal user sees this demo patient (by MRN).
DEMO_PORTAL_MRN: Final = "DEMO-0001"


class NotDevelopment(Exception):  # noqa: N818 - a refusal, reported by the CLI in one line
    """The demo tenant is only seeded in development."""


def demo_username(role: Role | str) -> str:
    return f"demo.{Role(role).value}"


@dataclass(slots=True)
class DemoTenantReport:
    tenant: str
    partition_id: int
    tenant_created: bool
    users_created: list[str] = field(default_factory=list)
    users_existing: list[str] = field(default_factory=list)
    patients: SeedReport | None = None


async def _portal_patient_id(fhir: FhirClient) -> str | None:
    bundle = await fhir.for_tenant(DEMO_TENANT).search(
        "Patient", {"identifier": f"{DEMO_MRN_SYSTEM}|{DEMO_PORTAL_MRN}", "_elements": "id"}
    )
    for resource in bundle_resources(bundle):
        if isinstance(resource.get("id"), str):
            return str(resource["id"])
    return None


# The demo tenant's HL7 v2 sender: `ehr hl7 send FILE` with MSH-3 DEMO-LAB, MSH-4 DEMO-HOSP.
DEMO_HL7_SENDER: Final = ("DEMO-LAB", "DEMO-HOSP")


async def _demo_hl7_sender(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    from ehr.modules import hl7v2

    application, facility = DEMO_HL7_SENDER
    registered = await hl7v2.inbox.list_senders(session, tenant_id)
    if any(
        (s.sending_application, s.sending_facility) == (application, facility) for s in registered
    ):
        return
    await hl7v2.register_sender(
        session,
        tenant_id=tenant_id,
        name="demo-lab",
        sending_application=application,
        sending_facility=facility,
        message_types=["*"],
        processing_ids=["P", "T"],
        created_by="seed",
    )


async def seed_demo_tenant(
    session: AsyncSession, fhir: FhirClient, settings: Settings
) -> DemoTenantReport:
    """Create (or complete) the demo tenant; the caller commits."""
    from ehr.platform.auth.service import create_user

    if settings.env is not Environment.DEVELOPMENT:
        raise NotDevelopment(
            f"the demo tenant is only seeded in development (EHR_ENV={settings.env.value})"
        )
    tenant, created = await create_tenant(session, fhir, slug=DEMO_TENANT, name=DEMO_TENANT_NAME)
    if settings.fhir_changes.enabled:
        await fhir_changes.ensure_for_tenant(fhir, settings, tenant.slug)
    report = DemoTenantReport(
        tenant=tenant.slug,
        partition_id=tenant.partition_id,
        tenant_created=created,
    )
    report.patients = await seed_demo_data(fhir.for_tenant(tenant.slug))
    portal_patient = await _portal_patient_id(fhir)
    for role in Role:
        username = demo_username(role)
        exists = await session.scalar(
            select(User.id).where(
                User.tenant_id == tenant.id, func.lower(User.username) == username
            )
        )
        if exists is not None:
            report.users_existing.append(username)
            continue
        await create_user(
            session,
            tenant_id=tenant.id,
            username=username,
            password=DEMO_PASSWORD,
            roles=[role.value],
            display_name=f"Demo {role.value.replace('_', ' ')}",
            patient_id=portal_patient if role is Role.PATIENT else None,
            granted_by="seed",
            settings=settings,
        )
        report.users_created.append(username)
    await _demo_hl7_sender(session, tenant.id)
    logger.info(
        "seed.demo_tenant.completed",
        tenant=tenant.slug,
        users_created=len(report.users_created),
    )
    return report
