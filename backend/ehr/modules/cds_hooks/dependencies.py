"""Dependencies of the CDS Hooks routes.

``CdsClientDep``       the calling CDS client, authenticated by its signed JWT (client_auth)
``CdsAuditDep``        the call's audit trail, written when the handler finishes — also when it
                       fails (outcome failure/denied with the status): every call is recorded
``CdsHooksServiceDep`` the decision logic bound to the client's tenant (HAPI partition) and the
                       medication-safety checks under the tenant's display policy
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import Depends, Request

from ehr.core.dependencies import ResourcesDep
from ehr.core.request_context import request_id_var
from ehr.fhir.dependencies import FhirClientDep
from ehr.modules.cds_hooks.client_auth import CdsClientDep
from ehr.modules.cds_hooks.service import CdsHooksService
from ehr.modules.medication_safety import KnowledgeDep, medication_checks_for
from ehr.platform.audit.recorder import written_after
from ehr.platform.audit.trail import AuditTrail

__all__ = ["CdsAuditDep", "CdsHooksServiceDep", "get_cds_audit", "get_cds_hooks_service"]

_MAX_USER_AGENT: Final = 512


async def get_cds_audit(
    request: Request, client: CdsClientDep, resources: ResourcesDep
) -> AsyncIterator[AuditTrail]:
    trail = AuditTrail(
        tenant=client.tenant,
        actor_type="cds_client",
        actor_id=str(client.client_id),
        source_ip=request.client.host[:64] if request.client is not None else None,
        user_agent=(request.headers.get("user-agent") or "")[:_MAX_USER_AGENT] or None,
        request_id=(request_id_var.get() or "")[:128] or None,
    )
    async with written_after(resources.sessionmaker, trail, request):
        yield trail


CdsAuditDep = Annotated[AuditTrail, Depends(get_cds_audit, scope="function")]


async def get_cds_hooks_service(
    client: CdsClientDep, resources: ResourcesDep, fhir: FhirClientDep, knowledge: KnowledgeDep
) -> CdsHooksService:
    async with resources.sessionmaker() as session:
        checks = await medication_checks_for(session, client.tenant_id, knowledge)
    return CdsHooksService(
        client=client,
        checks=checks,
        fhir=fhir.for_tenant(client.tenant),
        redis=resources.redis,
        settings=resources.settings.cds_hooks,
    )


CdsHooksServiceDep = Annotated[CdsHooksService, Depends(get_cds_hooks_service)]
