"""The ``/api/patients/{patient_id}/orders`` routes (thin: authorize, call, audit, return).

Permissions: ``order:read`` to list and read (physician, nurse, pharmacist, lab technician; a
patient its own), ``order:draft`` to create and edit drafts (physician, nurse) and to mark a
draft entered-in-error, ``order:place`` to sign, hold, resume, revoke and complete (physician);
a medication order's sign and resume also need ``medication:prescribe``. Front desk and billing:
403. Every access is one PHI audit note (``order:list``, ``order:read``, ``order:create``,
``order:update``, ``order:sign``, ``order:<transition>``) naming the patient and the order; a
sign's note carries the findings and the rules overridden. ``Idempotency-Key`` is taken by the
creating and transition POSTs (a retried sign never signs twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from ehr.core.dependencies import SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.fhir import etag_of, version_id
from ehr.modules import clinical_record, patients
from ehr.modules.orders.dependencies import MedicationChecksDep, OrderPolicyDep, OrderServiceDep
from ehr.modules.orders.lifecycle import Action
from ehr.modules.orders.schemas import (
    Order,
    OrderCreate,
    OrderId,
    OrderKind,
    OrderList,
    OrderStatus,
    SignRequest,
    SignResult,
    TransitionRequest,
)
from ehr.modules.orders.service import OrderService
from ehr.modules.orders.signing import sign_order
from ehr.modules.orders.views import order_sort_key, to_order
from ehr.platform import events
from ehr.platform.audit.dependencies import AccessNote, AuditTrail, PhiAudit
from ehr.platform.auth.authorization import BreakGlassDep, BreakGlassRequest, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import Idempotency, IdempotencyDep

__all__ = ["PREFIX", "router"]

PREFIX = "/api/patients/{patient_id}/orders"

router = APIRouter(prefix=PREFIX, tags=["orders"], route_class=IntakeRoute)

CanRead = Annotated[Principal, RequirePermission(Permission.ORDER_READ)]
CanDraft = Annotated[Principal, RequirePermission(Permission.ORDER_DRAFT)]
CanPlace = Annotated[Principal, RequirePermission(Permission.ORDER_PLACE)]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=80,
        description='The version you read (its ETag, `W/"3"`, or the bare version id).',
    ),
]
_WRITE_ERRORS = (400, 401, 403, 404, 409, 410, 412, 413, 422, 428, 502, 503, 504)


def _note(
    gate: clinical_record.PatientGate,
    audit: AuditTrail,
    action: str,
    resource: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AccessNote:
    bg = gate.break_glass
    return audit.access(
        action,
        resource_type=str(resource.get("resourceType")) if resource else "ServiceRequest",
        resource_id=str(resource.get("id")) if resource else None,
        patient_id=gate.patient_id,
        details=details,
        break_glass=bg is not None,
        break_glass_reason=bg.reason if bg is not None else None,
    )


def _shown(resource: dict[str, Any], patient_id: str, response: Response) -> Order:
    tag = etag_of(resource)
    if tag is not None:
        response.headers["ETag"] = tag
    return to_order(resource, patient_id)


@router.get(
    "",
    response_model=OrderList,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def list_orders(
    patient_id: patients.PatientId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    cursors: clinical_record.ListCursorsDep,
    order_status: Annotated[
        list[OrderStatus] | None,
        Query(alias="status", max_length=6, description="Only these statuses (repeatable)."),
    ] = None,
    kind: Annotated[
        list[OrderKind] | None, Query(max_length=4, description="Only these kinds (repeatable).")
    ] = None,
    limit: clinical_record.LimitParam = clinical_record.DEFAULT_PAGE_SIZE,
    cursor: clinical_record.CursorParam = None,
) -> OrderList:
    """The patient's orders, newest first (entered-in-error only when asked for by status).
    Pages of `limit` (default 50); `next` is the cursor of the next page."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    found, complete = await service.orders_of(
        patient_id, statuses=order_status or (), kinds=kind or ()
    )
    visible, gate = gate.shown(found)
    scope = (
        f"orders|{','.join(sorted(set(order_status or [])))}|{','.join(sorted(set(kind or [])))}"
    )
    shown, next_page = cursors.page(
        scope, patient_id, visible, order_sort_key, limit=limit, cursor=cursor
    )
    _note(
        gate,
        audit,
        "order:list",
        details={"resource_ids": [f"{r['resourceType']}/{r['id']}" for r in shown]},
    )
    return OrderList(
        items=[to_order(r, patient_id) for r in shown], complete=complete, next=next_page
    )


@router.get(
    "/{order_id}",
    response_model=Order,
    responses=problem_responses(401, 403, 404, 410, 422, 502, 503, 504),
)
async def read_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanRead,
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
) -> Order:
    """One order, with its version as the ETag (send it back in If-Match to edit or sign)."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    resource = await service.get(patient_id, order_id)
    gate = gate.admit(resource)
    _note(gate, audit, "order:read", resource)
    return _shown(resource, patient_id, response)


@router.post(
    "",
    response_model=Order,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 401, 403, 404, 409, 410, 413, 422, 502, 503, 504),
)
async def create_order(
    patient_id: patients.PatientId,
    payload: OrderCreate,
    principal: CanDraft,
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    idempotency: IdempotencyDep,
    response: Response,
) -> Any:
    """A new draft order (lab, imaging, referral or medication; `kind` tells which). Send an
    `Idempotency-Key` to make a retry safe."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)

    async def create() -> Order:
        stored = await service.create(patient_id, payload)
        _note(gate, audit, "order:create", stored)
        response.headers["Location"] = (
            f"{PREFIX.format(patient_id=patient_id)}/{to_order(stored, patient_id).id}"
        )
        return _shown(stored, patient_id, response)

    return await idempotency.once(payload, create, response=response, status_code=201)


@router.put(
    "/{order_id}",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def update_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    payload: OrderCreate,
    principal: CanDraft,
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    response: Response,
    if_match: IfMatch = None,
) -> Order:
    """Replace a draft's content (same kind). `If-Match` is required (428 without it; 412 when
    the draft changed since); a signed order is 409 `order_not_draft`."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)
    stored = await service.update(patient_id, order_id, payload, if_match=if_match)
    _note(gate, audit, "order:update", stored)
    return _shown(stored, patient_id, response)


@router.post(
    "/{order_id}/sign",
    response_model=SignResult,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def sign(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanPlace,
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    checks: MedicationChecksDep,
    policy: OrderPolicyDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    idempotency: IdempotencyDep,
    session: SessionDep,
    response: Response,
    payload: SignRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Sign a draft: the medication-safety checks (medication orders) or the duplicate-order
    check (lab, imaging, referral) run now; interruptive findings answer 409
    `order-sign-blocked` with the findings unless `override` gives a reason (each overridden
    finding is recorded as a DetectedIssue, the sign as a Provenance, in the same transaction as
    the order). `If-Match` (the version you reviewed) is required."""
    gate = await clinical_record.open_patient(patient_id, principal, patient_service, break_glass)

    async def signed() -> SignResult:
        current = await service.get(patient_id, order_id)
        admitted = gate.admit(current)
        note = _note(admitted, audit, "order:sign", current)
        outcome = await sign_order(
            service,
            checks,
            policy,
            admitted.patient,
            current,
            if_match=if_match,
            override=payload.override if payload is not None else None,
        )
        note.add_details(
            findings=[f.rule for f in outcome.findings],
            overridden_rules=list(outcome.overridden_rules),
            detected_issues=list(outcome.write.detected_issues),
        )
        order = outcome.write.order
        events.emit(
            session,
            events.new_event(
                "order.signed",
                tenant=principal.tenant,
                subject=f"Patient/{patient_id}",
                resource=f"{order.get('resourceType')}/{order.get('id')}",
                resource_version=version_id(order),
                data={"overrides": len(outcome.overridden_rules)},
            ),
        )
        return SignResult(
            order=_shown(order, patient_id, response),
            findings=list(outcome.findings),
            overridden=list(outcome.write.detected_issues),
            provenance=outcome.write.provenance,
        )

    return await idempotency.once(payload, signed, response=response, status_code=200)


@dataclass(frozen=True, slots=True)
class _Call:
    """What a transition route was asked."""

    patient_id: str
    order_id: str
    payload: TransitionRequest | None
    principal: Principal
    if_match: str | None


@dataclass(frozen=True, slots=True)
class _TransitionParts:
    """What every transition route works with (one dependency, so the routes stay one line)."""

    patient_service: patients.PatientService
    service: OrderService
    audit: AuditTrail
    break_glass: BreakGlassRequest
    idempotency: Idempotency


async def _transition_parts(
    patient_service: patients.PatientServiceDep,
    service: OrderServiceDep,
    audit: PhiAudit,
    break_glass: BreakGlassDep,
    idempotency: IdempotencyDep,
) -> _TransitionParts:
    return _TransitionParts(patient_service, service, audit, break_glass, idempotency)


TransitionParts = Annotated[_TransitionParts, Depends(_transition_parts)]


async def _transition(
    action: Action, call: _Call, parts: _TransitionParts, response: Response
) -> Any:
    """One transition: the patient gate, the order, the audit note, the transaction."""
    patient_id = call.patient_id
    service, audit, idempotency = parts.service, parts.audit, parts.idempotency
    gate = await clinical_record.open_patient(
        patient_id, call.principal, parts.patient_service, parts.break_glass
    )
    reason = call.payload.reason if call.payload is not None else None

    async def act() -> Order:
        current = await service.get(patient_id, call.order_id)
        admitted = gate.admit(current)
        _note(admitted, audit, f"order:{action}", current, details={"reason_given": bool(reason)})
        done = await service.transition(
            patient_id, call.order_id, action, reason=reason, if_match=call.if_match
        )
        return _shown(done.order, patient_id, response)

    return await idempotency.once(call.payload, act, response=response, status_code=200)


@router.post(
    "/{order_id}/hold",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def hold_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanPlace,
    parts: TransitionParts,
    response: Response,
    payload: TransitionRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Put an active order on hold (a reason is optional); 409 from any other status."""
    call = _Call(patient_id, order_id, payload, principal, if_match)
    return await _transition("hold", call, parts, response)


@router.post(
    "/{order_id}/resume",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def resume_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanPlace,
    parts: TransitionParts,
    response: Response,
    payload: TransitionRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Resume an on-hold order (a medication order: needs medication:prescribe too)."""
    call = _Call(patient_id, order_id, payload, principal, if_match)
    return await _transition("resume", call, parts, response)


@router.post(
    "/{order_id}/revoke",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def revoke_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanPlace,
    parts: TransitionParts,
    response: Response,
    payload: TransitionRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Revoke (cancel) a draft, active or on-hold order; `reason` is required (422
    `order_reason_required`)."""
    call = _Call(patient_id, order_id, payload, principal, if_match)
    return await _transition("revoke", call, parts, response)


@router.post(
    "/{order_id}/complete",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def complete_order(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanPlace,
    parts: TransitionParts,
    response: Response,
    payload: TransitionRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Mark an active order completed (recording its results normally does)."""
    call = _Call(patient_id, order_id, payload, principal, if_match)
    return await _transition("complete", call, parts, response)


@router.post(
    "/{order_id}/entered-in-error",
    response_model=Order,
    responses=problem_responses(*_WRITE_ERRORS),
)
async def mark_order_entered_in_error(
    patient_id: patients.PatientId,
    order_id: OrderId,
    principal: CanDraft,
    parts: TransitionParts,
    response: Response,
    payload: TransitionRequest | None = None,
    if_match: IfMatch = None,
) -> Any:
    """Mark the order entered-in-error (it stays in the record; lists hide it). A draft needs
    order:draft; a placed order order:place too."""
    call = _Call(patient_id, order_id, payload, principal, if_match)
    return await _transition("entered-in-error", call, parts, response)
