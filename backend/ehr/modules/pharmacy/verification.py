"""The pharmacist's verification queue (ADR 0034).

Signed medication orders enter the queue from the FHIR change feed: the worker's
``pharmacy.queue`` handler of ``fhir.changed`` reads each changed MedicationRequest and keeps
its row in ``pharmacy_verifications`` (an active order → ``pending``; a changed active order
→ ``pending`` again, whatever was decided on the version before; stopped, cancelled, completed
or entered in error → ``withdrawn``). Each entry emits ``medication.verification_pending``, so
queue screens update without reloading (realtime, ADR 0027).

A pharmacist **claims** an order (``SELECT … FOR UPDATE``: of two claiming at once, one wins
and the other gets 409 ``verification_claimed``; a claim lapses after
``EHR_PHARMACY__CLAIM_MINUTES``), reviews it — medication safety re-run against the record as
it is now, each finding marked when it involves something recorded after the order was signed
— and decides: approve (interruptive findings must be acknowledged), reject with a reason, or
ask the prescriber (a Task owned by the prescriber). The decision is a FHIR Task with
``focus`` the order; who and when are on the row, the Task and the audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import PharmacyVerification, Tenant
from ehr.core.errors import ConflictError, NotFoundError, RequestValidationFailed
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.medication_safety import (
    RULE_SYSTEM,
    Display,
    MedicationChecks,
    issue_summary,
    read_patient_record,
)
from ehr.platform import events

__all__ = [
    "CLARIFICATION_CODE",
    "HANDLER",
    "TASK_CODE_SYSTEM",
    "VERIFICATION_CODE",
    "Finding",
    "Review",
    "claim",
    "decide",
    "entry_for",
    "project",
    "queue_page",
    "release",
    "review",
]

logger = structlog.get_logger(__name__)

TASK_CODE_SYSTEM: Final = "urn:ehr:task-code"
VERIFICATION_CODE: Final = "pharmacy-verification"
CLARIFICATION_CODE: Final = "pharmacy-clarification"
USER_SYSTEM: Final = "urn:ehr:user"
PRIORITY_RANK: Final = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
_ORDER_INTENTS: Final = frozenset({"order", "original-order", "instance-order", "filler-order"})
_ENDED: Final = frozenset({"stopped", "cancelled", "completed", "entered-in-error"})
_OPEN: Final = ("pending", "clarification")


class NotInQueueError(NotFoundError):
    code = "verification_not_found"
    title = "This order is not in the verification queue"


class ClaimedError(ConflictError):
    code = "verification_claimed"
    title = "Another pharmacist is verifying this order"


class ClosedError(ConflictError):
    code = "verification_closed"
    title = "This order is not awaiting verification"


class ClaimRequiredError(ConflictError):
    code = "verification_claim_required"
    title = "Claim the order before deciding"


class FindingsNotAcknowledgedError(RequestValidationFailed):
    code = "findings_not_acknowledged"
    title = "Interruptive findings must be acknowledged to approve"


class ReasonRequiredError(RequestValidationFailed):
    code = "reason_required"
    title = "A reason is required"


def _reference_id(reference: object, expected: str) -> str | None:
    if isinstance(reference, Mapping):
        value = reference.get("reference")
        if isinstance(value, str) and value.startswith(f"{expected}/"):
            return value.split("/", 1)[1].split("/_history", 1)[0] or None
    return None


def _medication_text(order: Mapping[str, Any]) -> str:
    concept = order.get("medicationCodeableConcept") or {}
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            return str(coding["display"])[:300]
    return str(concept.get("text") or "medication")[:300]


def _authored(order: Mapping[str, Any]) -> datetime:
    value = order.get("authoredOn")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _prescriber(order: Mapping[str, Any]) -> str | None:
    requester = order.get("requester") or {}
    identifier = requester.get("identifier") or {}
    if identifier.get("system") == USER_SYSTEM and identifier.get("value"):
        return f"user:{identifier['value']}"[:200]
    return str(requester["reference"])[:200] if requester.get("reference") else None


# --- the queue, kept from the change feed ----------------------------------------------------


async def project(
    session: AsyncSession, tenant_id: uuid.UUID, tenant: str, order: Mapping[str, Any]
) -> PharmacyVerification | None:
    """Keep the order's queue row as HAPI holds the order (in the caller's transaction)."""
    order_id = str(order.get("id") or "")
    patient_id = _reference_id(order.get("subject"), "Patient")
    if not order_id or patient_id is None:
        return None
    version = str((order.get("meta") or {}).get("versionId") or "1")
    row = await session.scalar(
        sa.select(PharmacyVerification)
        .where(
            PharmacyVerification.tenant_id == tenant_id,
            PharmacyVerification.medication_request_id == order_id,
        )
        .with_for_update()
    )
    status, intent = order.get("status"), order.get("intent")
    if status == "active" and intent in _ORDER_INTENTS:
        if row is not None and row.version == version:
            return row  # a redelivered change
        priority = str(order.get("priority") or "routine")
        fields: dict[str, Any] = {
            "version": version,
            "patient_id": patient_id,
            "priority": priority if priority in PRIORITY_RANK else "routine",
            "priority_rank": PRIORITY_RANK.get(priority, 3),
            "authored_at": _authored(order),
            "prescriber": _prescriber(order),
            "encounter_id": _reference_id(order.get("encounter"), "Encounter"),
            "medication": _medication_text(order),
            "state": "pending",
            "claimed_by": None,
            "claim_expires_at": None,
            "updated_at": datetime.now(UTC),
        }
        if row is None:
            row = PharmacyVerification(
                id=uuid.uuid4(), tenant_id=tenant_id, medication_request_id=order_id, **fields
            )
            session.add(row)
        else:
            for name, value in fields.items():
                setattr(row, name, value)
        await session.flush()
        events.emit(
            session,
            events.new_event(
                "medication.verification_pending",
                tenant=tenant,
                subject=f"Patient/{patient_id}",
                resource=f"MedicationRequest/{order_id}",
                resource_version=version,
                data={"priority": row.priority},
            ),
        )
        return row
    if status in _ENDED and row is not None and row.state != "withdrawn":
        row.state, row.claimed_by, row.claim_expires_at = "withdrawn", None, None
        row.version, row.updated_at = version, datetime.now(UTC)
        await session.flush()
    return row


async def on_fhir_change(
    session: AsyncSession, event: events.Event, settings: Settings | None = None
) -> None:
    """The ``pharmacy.queue`` handler: a MedicationRequest changed."""
    if event.resource is None or not event.resource.startswith("MedicationRequest/"):
        return
    if event.data.get("operation") == "delete":
        return
    tenant_id = await session.scalar(sa.select(Tenant.id).where(Tenant.slug == event.tenant))
    if tenant_id is None:
        return
    order_id = event.resource.split("/", 1)[1]
    settings = settings or get_settings()
    async with FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir:
        tenant_fhir = fhir.for_tenant(event.tenant)
        if event.resource_version:
            order = await tenant_fhir.vread("MedicationRequest", order_id, event.resource_version)
        else:
            order = await tenant_fhir.read("MedicationRequest", order_id)
    await project(session, tenant_id, event.tenant, order)


HANDLER: Final = events.EventHandler("pharmacy.queue", on_fhir_change, frozenset({"fhir.changed"}))


async def queue_page(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    states: Sequence[str] = ("pending",),
    prescriber: str | None = None,
    encounter_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[PharmacyVerification]:
    """The queue: by priority (stat first), then oldest first."""
    query = sa.select(PharmacyVerification).where(
        PharmacyVerification.tenant_id == tenant_id, PharmacyVerification.state.in_(list(states))
    )
    if prescriber is not None:
        query = query.where(PharmacyVerification.prescriber == prescriber)
    if encounter_id is not None:
        query = query.where(PharmacyVerification.encounter_id == encounter_id)
    query = query.order_by(
        PharmacyVerification.priority_rank,
        PharmacyVerification.authored_at,
        PharmacyVerification.id,
    )
    return list(await session.scalars(query.offset(offset).limit(limit)))


async def entry_for(
    session: AsyncSession, tenant_id: uuid.UUID, order_id: str, *, lock: bool = False
) -> PharmacyVerification:
    query = sa.select(PharmacyVerification).where(
        PharmacyVerification.tenant_id == tenant_id,
        PharmacyVerification.medication_request_id == order_id,
    )
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotInQueueError("No signed medication order with this id is in the queue")
    return row


# --- claims ----------------------------------------------------------------------------------


async def claim(
    session: AsyncSession, tenant_id: uuid.UUID, order_id: str, actor: str, minutes: int
) -> PharmacyVerification:
    """Take the order for verification (renewing one's own claim); 409 while another
    pharmacist's claim holds."""
    row = await entry_for(session, tenant_id, order_id, lock=True)
    if row.state not in _OPEN:
        raise ClosedError(f"This order is {row.state}", extra={"state": row.state})
    now = datetime.now(UTC)
    if (
        row.claimed_by not in (None, actor)
        and row.claim_expires_at is not None
        and row.claim_expires_at > now
    ):
        raise ClaimedError(
            "Another pharmacist is verifying this order",
            extra={"claimed_by": row.claimed_by, "until": row.claim_expires_at.isoformat()},
        )
    row.claimed_by, row.claim_expires_at = actor, now + timedelta(minutes=minutes)
    row.updated_at = now
    await session.flush()
    return row


async def release(
    session: AsyncSession, tenant_id: uuid.UUID, order_id: str, actor: str
) -> PharmacyVerification:
    row = await entry_for(session, tenant_id, order_id, lock=True)
    if row.claimed_by == actor:
        row.claimed_by, row.claim_expires_at = None, None
        await session.flush()
    return row


def _holds(row: PharmacyVerification, actor: str) -> bool:
    return (
        row.claimed_by == actor
        and row.claim_expires_at is not None
        and row.claim_expires_at > datetime.now(UTC)
    )


# --- review ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    category: str
    severity: str
    display: str
    summary: str
    implicated: tuple[str, ...]
    new_since_signing: bool


@dataclass(frozen=True, slots=True)
class Review:
    order: dict[str, Any]
    findings: tuple[Finding, ...]
    complete: bool


_DATE_FIELDS: Final = ("authoredOn", "recordedDate", "dateAsserted", "onsetDateTime")


def _recorded(resource: Mapping[str, Any]) -> datetime | None:
    for name in _DATE_FIELDS:
        value = resource.get(name)
        if isinstance(value, str) and len(value) >= 10:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    last = (resource.get("meta") or {}).get("lastUpdated")
    if isinstance(last, str):
        return datetime.fromisoformat(last.replace("Z", "+00:00"))
    return None


async def review(
    fhir: TenantFhirClient, checks: MedicationChecks, row: PharmacyVerification
) -> Review:
    """The order now, and medication safety against the record now."""
    order = await fhir.read("MedicationRequest", row.medication_request_id)
    patient = await fhir.read("Patient", row.patient_id)
    record = await read_patient_record(fhir, patient)
    reference = f"MedicationRequest/{row.medication_request_id}"
    now = datetime.now(UTC)
    checked = await anyio.to_thread.run_sync(
        lambda: checks.check_orders(record, [order], selected=[reference], now=now)
    )
    signed_at = _authored(order)
    dates: dict[str, datetime | None] = {}
    for kind, resources in (
        ("MedicationRequest", record.requests),
        ("MedicationStatement", record.statements),
        ("AllergyIntolerance", record.allergies),
    ):
        for resource in resources:
            if resource.get("id"):
                dates[f"{kind}/{resource['id']}"] = _recorded(resource)
    findings: list[Finding] = []
    result = checked.result
    for issue in result.issues if result is not None else ():
        refs = tuple(item.reference or item.label for item in issue.implicated)
        newer = any(
            (when := dates.get(ref)) is not None and when > signed_at
            for ref in refs
            if ref != reference
        )
        display = issue.display.value if isinstance(issue.display, Display) else "passive"
        findings.append(
            Finding(
                rule=issue.rule_id,
                category=issue.category.value,
                severity=issue.severity.value,
                display=display,
                summary=issue_summary(issue, 200),
                implicated=refs,
                new_since_signing=newer,
            )
        )
    return Review(order=order, findings=tuple(findings), complete=record.complete)


# --- decisions -------------------------------------------------------------------------------


def _user(actor: str) -> dict[str, Any]:
    kind, _, value = actor.partition(":")
    if kind == "user":
        return {"identifier": {"system": USER_SYSTEM, "value": value}}
    return {"display": actor}


def _task(
    row: PharmacyVerification,
    order: Mapping[str, Any],
    decision: str,
    actor: str,
    reason: str | None,
    findings: Sequence[Finding],
    now: datetime,
) -> dict[str, Any]:
    code = CLARIFICATION_CODE if decision == "clarify" else VERIFICATION_CODE
    status = {"approve": "completed", "reject": "rejected", "clarify": "requested"}[decision]
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": status,
        "intent": "order",
        "priority": row.priority,
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": code}]},
        "businessStatus": {
            "text": {"approve": "verified", "reject": "rejected", "clarify": "clarification"}[
                decision
            ]
        },
        "focus": {"reference": f"MedicationRequest/{row.medication_request_id}"},
        "for": {"reference": f"Patient/{row.patient_id}"},
        "authoredOn": now.isoformat(),
        "lastModified": now.isoformat(),
        "requester": _user(actor),
    }
    if decision == "clarify" and isinstance(order.get("requester"), Mapping):
        task["owner"] = dict(order["requester"])  # the prescriber sees it in their worklist
    else:
        task["owner"] = _user(actor)
    if reason:
        task["note"] = [{"text": reason, "time": now.isoformat()}]
        if decision == "reject":
            task["statusReason"] = {"text": reason}
    if findings:
        task["input"] = [
            {
                "type": {"text": "medication-safety finding at verification"},
                "valueCodeableConcept": {"coding": [{"system": RULE_SYSTEM, "code": f.rule}]},
            }
            for f in findings
        ]
    return task


async def decide(
    session: AsyncSession,
    fhir: TenantFhirClient,
    checks: MedicationChecks,
    *,
    tenant_id: uuid.UUID,
    tenant: str,
    order_id: str,
    actor: str,
    decision: str,
    reason: str | None,
    acknowledge_findings: bool,
) -> tuple[PharmacyVerification, dict[str, Any], Review]:
    """Record the pharmacist's decision (the caller holds the claim): the Task in HAPI, then the
    row (committed with the request)."""
    row = await entry_for(session, tenant_id, order_id, lock=True)
    if row.state not in _OPEN:
        raise ClosedError(f"This order is {row.state}", extra={"state": row.state})
    if not _holds(row, actor):
        raise ClaimRequiredError("Claim the order (or renew the claim) before deciding")
    if decision in {"reject", "clarify"} and not reason:
        raise ReasonRequiredError(f"A reason is required to {decision}")
    checked = await review(fhir, checks, row)
    interruptive = [f for f in checked.findings if f.display == "interruptive"]
    if decision == "approve" and interruptive and not acknowledge_findings:
        raise FindingsNotAcknowledgedError(
            "Approve with acknowledge_findings once the interruptive findings are reviewed",
            extra={"rules": [f.rule for f in interruptive]},
        )
    now = datetime.now(UTC)
    task = await fhir.create(
        _task(row, checked.order, decision, actor, reason, checked.findings, now)
    )
    row.state = {"approve": "approved", "reject": "rejected", "clarify": "clarification"}[decision]
    row.decided_by, row.decided_at, row.task_id = actor, now, str(task.get("id") or "")[:64]
    row.claimed_by, row.claim_expires_at, row.updated_at = None, None, now
    await session.flush()
    events.emit(
        session,
        events.new_event(
            "medication.verified",
            tenant=tenant,
            subject=f"Patient/{row.patient_id}",
            resource=f"MedicationRequest/{row.medication_request_id}",
            data={"decision": decision, "task": f"Task/{row.task_id}"},
        ),
    )
    logger.info("pharmacy.verification.decided", decision=decision, findings=len(checked.findings))
    return row, task, checked
