"""``ChartServiceDep``: the chart views of the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.modules.chart.service import ChartService
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["ChartServiceDep", "get_chart_service"]


async def get_chart_service(fhir: TenantFhirDep) -> ChartService:
    return ChartService(fhir)


ChartServiceDep = Annotated[ChartService, Depends(get_chart_service)]
