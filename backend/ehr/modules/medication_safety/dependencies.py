"""Dependencies of the medication-safety routes.

``KnowledgeDep``                the compiled knowledge base and the RxNorm table (loaded once per
                                process, on first use, in the thread pool: ~0.2 s)
``TenantPolicyDep``             the caller tenant's display policy (the default when none is saved)
``MedicationSafetyServiceDep``  the checks, bound to the caller's tenant (FHIR partition), its
                                compartment (portal users: their own Patient only) and its policy
``medication_checks_for``       the checks under another tenant's policy (not a dependency: for
                                callers whose tenant is not a principal's, e.g. CDS clients)

Permission checks are declared on each route (``RequirePermission``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.dependencies import SessionDep
from ehr.modules.medication_safety.checks import MedicationChecks
from ehr.modules.medication_safety.kb_compiler import load_knowledge_base
from ehr.modules.medication_safety.normalisation import load_resolver
from ehr.modules.medication_safety.service import (
    LoadedKnowledge,
    MedicationSafetyService,
    TenantPolicy,
    load_policy,
)
from ehr.modules.patients import PatientServiceDep
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = [
    "KnowledgeDep",
    "MedicationSafetyServiceDep",
    "TenantPolicyDep",
    "get_knowledge",
    "get_medication_safety_service",
    "get_tenant_policy",
    "medication_checks_for",
]


@functools.cache
def _shipped_knowledge() -> LoadedKnowledge:
    kb = load_knowledge_base()
    resolver = load_resolver()
    return LoadedKnowledge(kb=kb, resolver=resolver, compiled_at=dt.datetime.now(dt.UTC))


def get_knowledge() -> LoadedKnowledge:
    """The knowledge base and RxNorm table (a sync dependency: the first load runs in the
    thread pool, not on the event loop)."""
    return _shipped_knowledge()


KnowledgeDep = Annotated[LoadedKnowledge, Depends(get_knowledge)]


async def get_tenant_policy(session: SessionDep, principal: CurrentPrincipal) -> TenantPolicy:
    return await load_policy(session, principal.tenant_id)


TenantPolicyDep = Annotated[TenantPolicy, Depends(get_tenant_policy)]


async def medication_checks_for(
    session: AsyncSession, tenant_id: uuid.UUID, knowledge: LoadedKnowledge
) -> MedicationChecks:
    """The checks on ``knowledge`` under the display policy of ``tenant_id``."""
    return MedicationChecks(knowledge, await load_policy(session, tenant_id))


def get_medication_safety_service(
    knowledge: KnowledgeDep,
    fhir: TenantFhirDep,
    patients: PatientServiceDep,
    policy: TenantPolicyDep,
) -> MedicationSafetyService:
    return MedicationSafetyService(knowledge, fhir=fhir, patients=patients, policy=policy)


MedicationSafetyServiceDep = Annotated[
    MedicationSafetyService, Depends(get_medication_safety_service)
]
