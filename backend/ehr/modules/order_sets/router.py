"""The order-set routes (thin: authorize, call, audit, return).

``/api/order-sets``: the tenant's definitions. ``order_set:read`` lists and reads them
(physicians, nurses, pharmacists, administrators); ``order_set:manage`` creates, updates
(If-Match: 428 without, 412 when stale), retires and installs the shipped starter sets
(administrators). Definitions hold no patient data.

``/api/patients/{patient_id}/order-sets/{set_id}/instantiate``: ``order:draft`` (physicians,
nurses). The patient is read first (404 outside the caller's tenant or compartment; break-glass
for a restricted patient), then the RequestGroup and its member drafts are written in one FHIR
transaction, audited as ``order_set:instantiate`` naming the patient, the RequestGroup and every
order. Instantiate and create take an ``Idempotency-Key`` (ehr.platform.idempotency): a retry
is answered with the first answer and writes nothing again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response, status
from fastapi.responses import JSONResponse

from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.fhir import etag_of
from ehr.modules import clinical_record, patients
from ehr.modules.order_sets.definitions import to_order_set
from ehr.modules.order_sets.dependencies import OrderSetServiceDep
from ehr.modules.order_sets.schemas import (
    DefinitionStatus,
    InstantiationRequest,
    InstantiationResult,
    OrderSet,
    OrderSetCreate,
    OrderSetId,
    OrderSetList,
    OrderSetUpdate,
    StarterInstallReport,
)
from ehr.modules.order_sets.starter import load_starter_sets
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import IdempotencyDep

__all__ = ["definitions_router", "instantiation_router", "router"]

PREFIX = "/api/order-sets"

definitions_router = APIRouter(prefix=PREFIX, tags=["order-sets"], route_class=IntakeRoute)
instantiation_router = APIRouter(
    prefix="/api/patients/{patient_id}/order-sets", tags=["order-sets"], route_class=IntakeRoute
)

CanRead = Annotated[Principal, RequirePermission(Permission.ORDER_SET_READ)]
CanManage = Annotated[Principal, RequirePermission(Permission.ORDER_SET_MANAGE)]
CanDraft = Annotated[Principal, RequirePermission(Permission.ORDER_DRAFT)]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=80,
        description='The version you read (its ETag, `W/"3"`, or the bare version id).',
    ),
]


def _shown(resource: dict[str, object], response: Response) -> OrderSet:
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return to_order_set(resource)


@definitions_router.get(
    "", response_model=OrderSetList, responses=problem_responses(401, 403, 422, 502, 503, 504)
)
async def list_order_sets(
    principal: CanRead,
    service: OrderSetServiceDep,
    status_: Annotated[
        list[DefinitionStatus] | None,
        Query(alias="status", max_length=3, description="Only these statuses (default active)."),
    ] = None,
) -> OrderSetList:
    """The tenant's order sets by title (active ones unless `status` says otherwise)."""
    del principal
    resources, complete = await service.list_sets(status_ or ["active"])
    return OrderSetList(items=[to_order_set(r) for r in resources], complete=complete)


@definitions_router.post(
    "/install-starter-sets",
    response_model=StarterInstallReport,
    responses=problem_responses(401, 403, 422, 502, 503, 504),
)
async def install_starter_sets(
    principal: CanManage, service: OrderSetServiceDep
) -> StarterInstallReport:
    """Install the shipped starter sets the tenant does not have yet (by key; idempotent)."""
    del principal
    return StarterInstallReport(items=await service.install(load_starter_sets()))


@definitions_router.get(
    "/{set_id}",
    response_model=OrderSet,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_order_set(
    set_id: OrderSetId, principal: CanRead, service: OrderSetServiceDep, response: Response
) -> OrderSet:
    """One order set, with its version as the ETag (send it back in If-Match to change it)."""
    del principal
    return _shown(await service.get(set_id), response)


@definitions_router.post(
    "",
    response_model=OrderSet,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 409, 413, 422, 502, 503, 504),
)
async def create_order_set(
    payload: OrderSetCreate,
    principal: CanManage,
    service: OrderSetServiceDep,
    idempotency: IdempotencyDep,
    response: Response,
) -> OrderSet | JSONResponse:
    """A new order set of the tenant; every member is validated as an order (`Idempotency-Key`
    replays the first answer of a retry)."""
    del principal

    async def work() -> OrderSet:
        stored = await service.create(payload)
        response.headers["Location"] = f"{PREFIX}/{stored.get('id', '')}"
        return _shown(stored, response)

    answer: OrderSet | JSONResponse = await idempotency.once(
        payload, work, response=response, status_code=status.HTTP_201_CREATED
    )
    return answer


@definitions_router.put(
    "/{set_id}",
    response_model=OrderSet,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 412, 413, 422, 428, 502, 503, 504),
)
async def update_order_set(
    set_id: OrderSetId,
    payload: OrderSetUpdate,
    principal: CanManage,
    service: OrderSetServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> OrderSet:
    """Replace the set's title, members and sources; raises its business version."""
    del principal
    return _shown(await service.update(set_id, payload, if_match=if_match), response)


@definitions_router.post(
    "/{set_id}/retire",
    response_model=OrderSet,
    responses=problem_responses(401, 403, 404, 410, 412, 422, 428, 502, 503, 504),
)
async def retire_order_set(
    set_id: OrderSetId,
    principal: CanManage,
    service: OrderSetServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> OrderSet:
    """Retire the set: it stays (instances point at it) but is no longer offered or used."""
    del principal
    return _shown(await service.retire(set_id, if_match=if_match), response)


@instantiation_router.post(
    "/{set_id}/instantiate",
    response_model=InstantiationResult,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 413, 422, 502, 503, 504),
)
async def instantiate_order_set(
    patient_id: patients.PatientId,
    set_id: OrderSetId,
    principal: CanDraft,
    service: OrderSetServiceDep,
    patients_service: patients.PatientServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    idempotency: IdempotencyDep,
    response: Response,
    payload: Annotated[InstantiationRequest | None, Body()] = None,
) -> InstantiationResult | JSONResponse:
    """Order the set's members for the patient as drafts: one RequestGroup (draft, intent order)
    and every member order, written together or not at all. Sign them with the orders API.

    With `Idempotency-Key`, a retry (same key, same body) is answered with the first answer
    (`Idempotent-Replayed: true`) and writes nothing again."""
    request = payload or InstantiationRequest()
    # Everything instantiation reads — the patient gate, the definition (and the encounter) —
    # runs together and alongside the Idempotency-Key claim; nothing is written, and no answer
    # (not even a replayed one) is given, unless the gate passes.
    opening = asyncio.create_task(
        clinical_record.open_patient(patient_id, principal, patients_service, break_glass)
    )
    reading = asyncio.create_task(service.definition_for(set_id, patient_id, request))

    async def work() -> InstantiationResult:
        gate = await opening
        definition = await reading
        result = await service.instantiate(set_id, patient_id, request, definition=definition)
        gate.note(
            audit,
            "order_set:instantiate",
            resource_type="RequestGroup",
            resource_id=result.request_group_id,
            details={
                "order_set_id": set_id,
                "orders": [f"{o.resource_type}/{o.id}" for o in result.orders],
            },
        )
        return result

    try:
        answer: InstantiationResult | JSONResponse = await idempotency.once(
            request, work, response=response, status_code=status.HTTP_201_CREATED
        )
        await opening  # a replayed answer goes only to a caller who may open this chart
    except BaseException:
        refusal = await _failure_of(opening)
        if refusal is not None:  # the gate's refusal (404, 403) before any other error
            raise refusal from None
        raise
    finally:
        await _discard(reading)
    return answer


async def _failure_of(task: asyncio.Task[Any]) -> BaseException | None:
    """The exception ``task`` ended with (waiting for it), None if it succeeded."""
    try:
        await task
    except asyncio.CancelledError:
        return None
    except Exception as exc:  # noqa: BLE001 - handed back to be raised
        return exc
    return None


async def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` if it still runs and swallow its outcome (it is not needed any more)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


router = APIRouter()
router.include_router(definitions_router)
router.include_router(instantiation_router)
