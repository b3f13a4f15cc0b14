"""``/api/webhooks``: a tenant's outbound webhook endpoints and their delivery log
(``tenant:admin``). Another tenant's endpoint or delivery is 404. Every write (create,
enable, disable, replay) is a security event on the audit trail (``webhook:*``), written before
the request's transaction commits: no audit, no change (503).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ehr.core.db.models import WebhookDelivery, WebhookEndpoint
from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.platform.audit.dependencies import record_principal_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.webhooks import service
from ehr.platform.webhooks.attempts import DELIVER
from ehr.platform.webhooks.dependencies import WebhooksSettingsDep
from ehr.platform.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
)

__all__ = ["delivery_out", "endpoint_out", "router"]

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], route_class=IntakeRoute)

TenantAdmin = Annotated[Principal, RequirePermission(Permission.TENANT_ADMIN)]


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(_endpoint_fields(endpoint))


def _endpoint_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {name: getattr(endpoint, name) for name in EndpointOut.model_fields}


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(
        {name: getattr(delivery, name) for name in DeliveryOut.model_fields}
    )


async def _audit(
    resources: ResourcesDep,
    principal: Principal,
    request: Request,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    http_status: int = 200,
    details: dict[str, Any] | None = None,
) -> None:
    await record_principal_event(
        resources.sessionmaker,
        principal,
        request,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        http_status=http_status,
        details=details,
    )


@router.get("", response_model=EndpointList, responses=problem_responses(401, 403, 503))
async def list_webhook_endpoints(principal: TenantAdmin, session: SessionDep) -> EndpointList:
    """The tenant's webhook endpoints (never their secrets)."""
    found = await service.list_endpoints(session, principal.tenant_id)
    return EndpointList(items=[endpoint_out(e) for e in found])


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    responses=problem_responses(401, 403, 422, 503),
)
async def create_webhook_endpoint(
    body: EndpointCreate,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
    webhooks: WebhooksSettingsDep,
) -> EndpointCreated:
    """Register an endpoint. The URL must be https (http in development) and resolve to public
    addresses only (422 `webhook_target_refused` otherwise). The signing secret is in this
    answer only."""
    created = await service.create_endpoint(
        session,
        resources.settings,
        webhooks,
        tenant_id=principal.tenant_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        created_by=f"{principal.kind}:{principal.subject}",
    )
    await _audit(
        resources,
        principal,
        request,
        action="webhook:create",
        resource_type="WebhookEndpoint",
        resource_id=created.endpoint.id,
        http_status=201,
        details={"event_types": created.endpoint.event_types},
    )
    return EndpointCreated(**_endpoint_fields(created.endpoint), secret=created.secret)


@router.get(
    "/{endpoint_id}", response_model=EndpointOut, responses=problem_responses(401, 403, 404, 503)
)
async def read_webhook_endpoint(
    endpoint_id: uuid.UUID, principal: TenantAdmin, session: SessionDep
) -> EndpointOut:
    """One endpoint: state and failure streak."""
    return endpoint_out(await service.get_endpoint(session, principal.tenant_id, endpoint_id))


async def _set_enabled(
    endpoint_id: uuid.UUID,
    principal: Principal,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
    *,
    enabled: bool,
) -> EndpointOut:
    endpoint = await service.set_enabled(session, principal.tenant_id, endpoint_id, enabled=enabled)
    await _audit(
        resources,
        principal,
        request,
        action="webhook:enable" if enabled else "webhook:disable",
        resource_type="WebhookEndpoint",
        resource_id=endpoint.id,
    )
    return endpoint_out(endpoint)


@router.post(
    "/{endpoint_id}/disable",
    response_model=EndpointOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def disable_webhook_endpoint(
    endpoint_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> EndpointOut:
    """Stop sending to the endpoint (waiting deliveries end `failed` when their turn comes)."""
    return await _set_enabled(endpoint_id, principal, session, resources, request, enabled=False)


@router.post(
    "/{endpoint_id}/enable",
    response_model=EndpointOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def enable_webhook_endpoint(
    endpoint_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> EndpointOut:
    """Send to the endpoint again (its failure streak starts from zero)."""
    return await _set_enabled(endpoint_id, principal, session, resources, request, enabled=True)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def list_webhook_deliveries(
    endpoint_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    """The endpoint's delivery log, newest first: status, attempts, last code, latency, error."""
    found = await service.list_deliveries(
        session, principal.tenant_id, endpoint_id, status=status, limit=limit
    )
    return DeliveryList(items=[delivery_out(d) for d in found])


@router.get(
    "/{endpoint_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    responses=problem_responses(401, 403, 404, 503),
)
async def read_webhook_delivery(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, principal: TenantAdmin, session: SessionDep
) -> DeliveryOut:
    """One delivery's log entry."""
    found = await service.get_delivery(session, principal.tenant_id, endpoint_id, delivery_id)
    return delivery_out(found)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def replay_webhook_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> DeliveryOut:
    """Send a finished delivery's event again (a new delivery, same `webhook-id`); one still
    under way, or to a disabled endpoint → 409 `webhook_delivery_not_replayable`."""
    replay = await service.replay_delivery(
        session, principal.tenant_id, endpoint_id, delivery_id, DELIVER
    )
    await _audit(
        resources,
        principal,
        request,
        action="webhook:replay",
        resource_type="WebhookDelivery",
        resource_id=replay.id,
        http_status=202,
        details={"replay_of": str(delivery_id), "endpoint": str(endpoint_id)},
    )
    return delivery_out(replay)
