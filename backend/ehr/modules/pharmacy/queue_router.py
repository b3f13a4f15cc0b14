"""``/api/pharmacy/queue`` and ``/api/pharmacy/orders``: verifying and dispensing signed
medication orders (ADR 0034).

Pharmacists (``pharmacy:verify``) list the queue, claim an order, review it (medication safety
re-run now) and decide; they dispense approved orders (``medication:dispense``). Prescribers
and nurses read an order's pharmacy status (``medication:read``). The queue and reviews name
patients: each listing and read is on the audit trail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ehr.core.db.models import PharmacyVerification
from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.medication_safety import KnowledgeDep, medication_checks_for
from ehr.modules.pharmacy import dispensing, verification
from ehr.modules.pharmacy.inventory import StockBook, stock_gate
from ehr.modules.pharmacy.schemas import (
    Decision,
    DecisionOut,
    DispenseLine,
    DispenseOut,
    DispenseRequest,
    FindingOut,
    OrderPharmacyStatus,
    QueueEntryOut,
    QueueList,
    ReviewOut,
    VerificationState,
)
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import IdempotencyDep
from ehr.platform.tenancy import TenantFhirDep

__all__ = ["queue_router"]

queue_router = APIRouter(prefix="/api/pharmacy", tags=["pharmacy"], route_class=IntakeRoute)

Verifier = Annotated[Principal, RequirePermission(Permission.PHARMACY_VERIFY)]
Dispenser = Annotated[Principal, RequirePermission(Permission.MEDICATION_DISPENSE)]
Reader = Annotated[Principal, RequirePermission(Permission.MEDICATION_READ)]
OrderId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        description="The MedicationRequest's id.",
    ),
]
_READ = problem_responses(401, 403, 404, 422, 502, 503, 504)
_WRITE = problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 502, 503, 504)


def _q(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.001"))


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.subject}"


def entry_out(row: PharmacyVerification) -> QueueEntryOut:
    return QueueEntryOut(
        order_id=row.medication_request_id,
        patient_id=row.patient_id,
        medication=row.medication,
        priority=row.priority,
        authored_at=row.authored_at,
        prescriber=row.prescriber,
        encounter_id=row.encounter_id,
        state=row.state,
        claimed_by=row.claimed_by,
        claim_expires_at=row.claim_expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        task_id=row.task_id,
    )


def _findings(found: tuple[verification.Finding, ...]) -> list[FindingOut]:
    return [
        FindingOut(
            rule=f.rule,
            category=f.category,
            severity=f.severity,
            display=f.display,
            summary=f.summary,
            implicated=list(f.implicated),
            new_since_signing=f.new_since_signing,
        )
        for f in found
    ]


@queue_router.get(
    "/queue", response_model=QueueList, responses=problem_responses(401, 403, 422, 503)
)
async def list_verification_queue(
    principal: Verifier,
    session: SessionDep,
    audit: PhiAudit,
    state: Annotated[list[VerificationState] | None, Query(max_length=5)] = None,
    prescriber: Annotated[str | None, Query(max_length=200)] = None,
    encounter_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> QueueList:
    """Orders awaiting verification: stat first, then urgent, then routine; oldest first."""
    rows = await verification.queue_page(
        session,
        principal.tenant_id,
        states=state or ["pending"],
        prescriber=prescriber,
        encounter_id=encounter_id,
        limit=limit,
        offset=offset,
    )
    audit.access(
        "pharmacy:queue_list", resource_type="MedicationRequest", details={"count": len(rows)}
    )
    return QueueList(
        items=[entry_out(row) for row in rows],
        next_offset=offset + limit if len(rows) == limit else None,
    )


@queue_router.get(
    "/clarifications", response_model=QueueList, responses=problem_responses(401, 403, 422, 503)
)
async def list_my_clarifications(
    principal: Reader,
    session: SessionDep,
    audit: PhiAudit,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> QueueList:
    """The caller's orders a pharmacist has a question about (its Task, owned by the caller,
    holds the question); changing the order sends it back to verification."""
    rows = await verification.queue_page(
        session,
        principal.tenant_id,
        states=["clarification"],
        prescriber=_actor(principal),
        limit=limit,
        offset=offset,
    )
    audit.access(
        "pharmacy:clarifications_list",
        resource_type="MedicationRequest",
        details={"count": len(rows)},
    )
    return QueueList(
        items=[entry_out(row) for row in rows],
        next_offset=offset + limit if len(rows) == limit else None,
    )


@queue_router.post("/queue/{order_id}/claim", response_model=QueueEntryOut, responses=_WRITE)
async def claim_verification(
    order_id: OrderId, principal: Verifier, session: SessionDep, resources: ResourcesDep
) -> QueueEntryOut:
    """Take the order for verification (409 while another pharmacist holds it); renewing one's
    own claim extends it."""
    row = await verification.claim(
        session,
        principal.tenant_id,
        order_id,
        _actor(principal),
        resources.settings.pharmacy.claim_minutes,
    )
    return entry_out(row)


@queue_router.delete("/queue/{order_id}/claim", response_model=QueueEntryOut, responses=_READ)
async def release_verification(
    order_id: OrderId, principal: Verifier, session: SessionDep
) -> QueueEntryOut:
    """Give the order back to the queue."""
    return entry_out(
        await verification.release(session, principal.tenant_id, order_id, _actor(principal))
    )


@queue_router.get("/queue/{order_id}", response_model=ReviewOut, responses=_READ)
async def review_verification(
    order_id: OrderId,
    principal: Verifier,
    session: SessionDep,
    fhir: TenantFhirDep,
    knowledge: KnowledgeDep,
    audit: PhiAudit,
) -> ReviewOut:
    """The order now and medication safety against the record now; findings involving what
    was recorded after signing are marked."""
    row = await verification.entry_for(session, principal.tenant_id, order_id)
    checks = await medication_checks_for(session, principal.tenant_id, knowledge)
    checked = await verification.review(fhir, checks, row)
    audit.access(
        "pharmacy:review",
        resource_type="MedicationRequest",
        resource_id=order_id,
        patient_id=row.patient_id,
        details={"findings": len(checked.findings)},
    )
    return ReviewOut(
        entry=entry_out(row),
        order=checked.order,
        findings=_findings(checked.findings),
        record_complete=checked.complete,
    )


@queue_router.post("/queue/{order_id}/decision", response_model=DecisionOut, responses=_WRITE)
async def decide_verification(
    order_id: OrderId,
    body: Decision,
    principal: Verifier,
    session: SessionDep,
    fhir: TenantFhirDep,
    knowledge: KnowledgeDep,
    audit: PhiAudit,
) -> DecisionOut:
    """Approve, reject (with a reason) or ask the prescriber (a Task they own). The caller must
    hold the claim; approving over interruptive findings needs `acknowledge_findings`."""
    checks = await medication_checks_for(session, principal.tenant_id, knowledge)
    row, task, checked = await verification.decide(
        session,
        fhir,
        checks,
        tenant_id=principal.tenant_id,
        tenant=principal.tenant,
        order_id=order_id,
        actor=_actor(principal),
        decision=body.decision,
        reason=body.reason,
        acknowledge_findings=body.acknowledge_findings,
    )
    audit.access(
        f"pharmacy:{body.decision}",
        resource_type="MedicationRequest",
        resource_id=order_id,
        patient_id=row.patient_id,
        details={"task": f"Task/{row.task_id}", "findings": [f.rule for f in checked.findings]},
    )
    return DecisionOut(
        entry=entry_out(row), task=f"Task/{task.get('id')}", findings=_findings(checked.findings)
    )


@queue_router.post(
    "/orders/{order_id}/dispenses", status_code=201, response_model=DispenseOut, responses=_WRITE
)
async def dispense_order(
    order_id: OrderId,
    body: DispenseRequest,
    principal: Dispenser,
    session: SessionDep,
    fhir: TenantFhirDep,
    audit: PhiAudit,
    idempotency: IdempotencyDep,
    response: Response,
) -> Any:
    """Dispense an approved order FEFO from a location: never more than the order and its
    refills allow, never from an expired or recalled lot. Send an `Idempotency-Key`."""

    async def work() -> DispenseOut:
        row = await verification.entry_for(session, principal.tenant_id, order_id, lock=True)
        book = StockBook(
            session, tenant_id=principal.tenant_id, tenant=principal.tenant, actor=_actor(principal)
        )
        done = await dispensing.dispense(
            session,
            fhir,
            book,
            row,
            location_id=body.location_id,
            quantity=body.quantity,
            product_id=body.product_id,
            days_supply=body.days_supply,
            handed_over_at=body.handed_over_at,
        )
        audit.access(
            "pharmacy:dispense",
            resource_type="MedicationRequest",
            resource_id=order_id,
            patient_id=row.patient_id,
            details={"dispenses": [d["reference"] for d in done.dispenses], "fill": done.fill_type},
        )
        return DispenseOut(
            order_id=order_id,
            fill=done.fill_type,
            dispensed=[
                DispenseLine(
                    dispense=d["reference"], lot_number=d["lot"], quantity=_q(d["quantity"])
                )
                for d in done.dispenses
            ],
            dispensed_total=_q(done.dispensed_total),
            allowed_total=_q(done.allowed_total) if done.allowed_total is not None else None,
            label=done.label,
        )

    async with stock_gate(principal.tenant_id):
        return await idempotency.once(body, work, response=response, status_code=201)


@queue_router.get("/orders/{order_id}", response_model=OrderPharmacyStatus, responses=_READ)
async def order_pharmacy_status(
    order_id: OrderId, principal: Reader, session: SessionDep, audit: PhiAudit
) -> OrderPharmacyStatus:
    """Where the order is in the pharmacy: verification state, decision, quantity dispensed."""
    row = await verification.entry_for(session, principal.tenant_id, order_id)
    total = await dispensing.dispensed_so_far(session, principal.tenant_id, order_id)
    audit.access(
        "pharmacy:order_status",
        resource_type="MedicationRequest",
        resource_id=order_id,
        patient_id=row.patient_id,
    )
    return OrderPharmacyStatus(
        order_id=order_id,
        state=row.state,
        decided_at=row.decided_at,
        task_id=row.task_id,
        dispensed_total=_q(total),
    )
