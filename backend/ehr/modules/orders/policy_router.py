"""``/api/order-policy``: a tenant's duplicate-order windows and their display (``tenant:admin``).

A write is a security event on the audit trail (``order_policy:put``), like the
medication-safety policy; the GET answers the default (``is_default``) until one is saved.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.orders.policy import load_order_policy, save_order_policy
from ehr.modules.orders.schemas import OrderPolicy, OrderPolicyUpdate
from ehr.platform.audit.dependencies import record_security_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["policy_router"]

policy_router = APIRouter(prefix="/api/order-policy", tags=["admin"], route_class=IntakeRoute)

TenantAdmin = Annotated[Principal, RequirePermission(Permission.TENANT_ADMIN)]


@policy_router.get("", response_model=OrderPolicy, responses=problem_responses(401, 403, 503))
async def read_order_policy(principal: TenantAdmin, session: SessionDep) -> OrderPolicy:
    """The tenant's order policy (the default until one is saved)."""
    return await load_order_policy(session, principal.tenant_id)


@policy_router.put(
    "", response_model=OrderPolicy, responses=problem_responses(400, 401, 403, 413, 422, 503)
)
async def put_order_policy(
    payload: OrderPolicyUpdate,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> OrderPolicy:
    """Replace the tenant's policy: duplicate windows in hours per kind (0 = not checked) and
    whether a duplicate interrupts signing."""
    saved = await save_order_policy(
        session, principal.tenant_id, payload, actor=f"{principal.kind}:{principal.subject}"
    )
    await record_security_event(
        resources.sessionmaker,
        action="order_policy:put",
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=200,
        resource_type="OrderPolicy",
        details=payload.model_dump(mode="json"),
    )
    return saved
