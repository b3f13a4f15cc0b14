"""Dependencies of the order-sets routes: the service bound to the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules.order_sets.service import OrderSetService
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["OrderSetServiceDep", "get_order_set_service"]


async def get_order_set_service(
    fhir: TenantFhirDep, principal: CurrentPrincipal
) -> OrderSetService:
    return OrderSetService(fhir, principal=principal)


OrderSetServiceDep = Annotated[OrderSetService, Depends(get_order_set_service)]
