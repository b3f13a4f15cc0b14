"""Dependencies of the medication-safety routes.

``KnowledgeDep``                the compiled knowledge base and the RxNorm table (loaded once per
                                process, on first use, in the thread pool: ~0.2 s)
``TenantPolicyDep``             the caller tenant's display policy (the default when none is saved)
``CardRendererDep``             the CDS Hooks card renderer the app was given (``include=cds-card``;
                                ``app.state.medication_safety_card_renderer``, see
                                :mod:`.rendering`)
``MedicationSafetyServiceDep``  the checks, bound to the caller's tenant (FHIR partition), its
                                compartment (portal users: their own Patient only) and its policy
``medication_checks_for``       the checks under another tenant's policy (not a dependency: for
                                callers whose tenant is not a principal's, e.g. CDS clients)

Permission checks are declared on each route (``RequirePermission``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

import anyio
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.dependencies import SessionDep
from ehr.modules.medication_safety.checks import MedicationChecks
from ehr.modules.medication_safety.knowledge import LoadedKnowledge, load_knowledge
from ehr.modules.medication_safety.policy import TenantPolicy, load_policy
from ehr.modules.medication_safety.rendering import IssueCardRenderer
from ehr.modules.medication_safety.service import MedicationSafetyService
from ehr.modules.patients import PatientServiceDep
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = [
    "CARD_RENDERER_STATE",
    "CardRendererDep",
    "KnowledgeDep",
    "MedicationSafetyServiceDep",
    "TenantPolicyDep",
    "get_card_renderer",
    "get_knowledge",
    "get_medication_safety_service",
    "get_tenant_policy",
    "medication_checks_for",
]

# The attribute of ``app.state`` holding the card renderer (set by create_app).
CARD_RENDERER_STATE: Final = "medication_safety_card_renderer"


def get_knowledge() -> LoadedKnowledge:
    """The knowledge base and RxNorm table (a sync dependency: the first load runs in the
    thread pool, not on the event loop)."""
    return load_knowledge()


async def _knowledge() -> LoadedKnowledge:
    """``get_knowledge`` without a thread hop once loaded (the app loads it at startup)."""
    if load_knowledge.cache_info().currsize:
        return load_knowledge()
    return await anyio.to_thread.run_sync(load_knowledge)


KnowledgeDep = Annotated[LoadedKnowledge, Depends(_knowledge)]


async def get_tenant_policy(session: SessionDep, principal: CurrentPrincipal) -> TenantPolicy:
    return await load_policy(session, principal.tenant_id)


TenantPolicyDep = Annotated[TenantPolicy, Depends(get_tenant_policy)]


async def get_card_renderer(request: Request) -> IssueCardRenderer | None:
    """The card renderer of the app (``None`` in an app that was not given one)."""
    renderer: IssueCardRenderer | None = getattr(request.app.state, CARD_RENDERER_STATE, None)
    return renderer


CardRendererDep = Annotated[IssueCardRenderer | None, Depends(get_card_renderer)]


async def medication_checks_for(
    session: AsyncSession, tenant_id: uuid.UUID, knowledge: LoadedKnowledge
) -> MedicationChecks:
    """The checks on ``knowledge`` under the display policy of ``tenant_id``."""
    return MedicationChecks(knowledge, await load_policy(session, tenant_id))


async def get_medication_safety_service(
    knowledge: KnowledgeDep,
    fhir: TenantFhirDep,
    patients: PatientServiceDep,
    policy: TenantPolicyDep,
    card_renderer: CardRendererDep,
) -> MedicationSafetyService:
    return MedicationSafetyService(
        knowledge, fhir=fhir, patients=patients, policy=policy, card_renderer=card_renderer
    )


MedicationSafetyServiceDep = Annotated[
    MedicationSafetyService, Depends(get_medication_safety_service)
]
