"""Dependencies of the orders routes: the service bound to the caller's tenant, the tenant's
order policy and the medication-safety checks under the tenant's display policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.core.dependencies import SessionDep
from ehr.modules.medication_safety import KnowledgeDep, MedicationChecks, medication_checks_for
from ehr.modules.orders.policy import load_order_policy
from ehr.modules.orders.schemas import OrderPolicy
from ehr.modules.orders.service import OrderService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = [
    "MedicationChecksDep",
    "OrderPolicyDep",
    "OrderServiceDep",
    "get_medication_checks",
    "get_order_policy",
    "get_order_service",
]


async def get_order_service(fhir: TenantFhirDep, principal: CurrentPrincipal) -> OrderService:
    return OrderService(fhir, principal=principal)


async def get_order_policy(session: SessionDep, principal: CurrentPrincipal) -> OrderPolicy:
    return await load_order_policy(session, principal.tenant_id)


async def get_medication_checks(
    session: SessionDep, principal: CurrentPrincipal, knowledge: KnowledgeDep
) -> MedicationChecks:
    return await medication_checks_for(session, principal.tenant_id, knowledge)


OrderServiceDep = Annotated[OrderService, Depends(get_order_service)]
OrderPolicyDep = Annotated[OrderPolicy, Depends(get_order_policy)]
MedicationChecksDep = Annotated[MedicationChecks, Depends(get_medication_checks)]
