"""Converting stored messages to FHIR, in the background (ADR 0033).

``hl7v2.convert`` (run by ``ehr worker``; one waiting and never two running per sender)
converts a sender's waiting messages in arrival order, so an A08 is applied after the A01
before it; a run drains the queue (no wait between messages). Each message: the raw text is
mapped with ``to_fhir`` into ONE transaction Bundle for the tenant's partition. Every entry is
a conditional write on a business identifier (PID-3, visit number, order numbers), and the
MessageHeader/Provenance are keyed on the message, so converting again — after a crash
mid-run, a replay after a fix — changes nothing that was already right: effects exactly once.

HAPI down, slow or failing: the head message is ``failed`` with ``next_attempt_at`` (backoff up
to 5 minutes), the next run is scheduled then and nothing behind it goes first — for as long as
the outage lasts (the message is not at fault). A write conflict (another writer raced it) is
retried the same way, up to ``EHR_HL7__CONVERT_MAX_ATTEMPTS``. HAPI refusing the Bundle (other
4xx) or the mapping refusing the message: a dead letter at once (``status='dead'``, ``error``
says why) and the queue goes on; ``replay`` queues it again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import Hl7Message, Tenant
from ehr.core.errors import AppError, DependencyUnavailable
from ehr.fhir import FhirClient, FhirConflict, FhirUpstreamError, TenantFhirClient
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.acks import AckError, build_ack
from ehr.modules.hl7v2.flows import apply_results_rules
from ehr.modules.hl7v2.outbound import queue_application_ack, source_of
from ehr.modules.hl7v2.parsing import MessageRejected, parse_message
from ehr.modules.hl7v2.to_fhir import ConversionContext, ConversionError, to_transaction
from ehr.platform import jobs

__all__ = ["CONVERT", "convert_message", "convert_queue", "defer_conversion", "replay"]

logger = structlog.get_logger(__name__)

_REPLAYABLE: Final = frozenset({"dead", "failed", "rejected", "converted"})


async def defer_conversion(
    session: AsyncSession, row: Hl7Message, *, at: datetime | None = None
) -> None:
    """Make sure a conversion job for the row's sender is waiting (in the caller's
    transaction); one waiting job per sender is enough — it converts the sender's queue."""
    await _wake(session, row.tenant_id, row.sender_id, at)


async def _wake(
    session: AsyncSession, tenant_id: uuid.UUID, sender_id: uuid.UUID, at: datetime | None
) -> None:
    try:
        async with session.begin_nested():
            await jobs.defer(
                session,
                CONVERT,
                tenant_id=tenant_id,
                owner=f"hl7_sender:{sender_id}",
                args={"sender": str(sender_id)},
                schedule_at=at,
            )
    except jobs.JobAlreadyQueuedError:
        pass


async def convert_queue(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, sender_id: uuid.UUID
) -> dict[str, int]:
    """Convert the sender's waiting messages in arrival order until none is left, or the head
    must wait for HAPI (then the next run is scheduled after a backoff and nothing behind it
    goes first). Counts by outcome."""
    counts: dict[str, int] = {}
    async with FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir:
        while True:
            outcome = await _convert_head(sessions, settings, sender_id, fhir)
            if outcome is None:
                return counts
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "retry":
                return counts


async def _convert_head(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    sender_id: uuid.UUID,
    fhir: FhirClient,
) -> str | None:
    """Convert the sender's oldest waiting message; None when there is none."""
    async with sessions() as session:
        head = await session.scalar(
            select(Hl7Message)
            .where(
                Hl7Message.sender_id == sender_id,
                Hl7Message.status.in_(("accepted", "failed")),
            )
            .order_by(Hl7Message.received_at, Hl7Message.id)
            .limit(1)
        )
        if head is None:
            return None
        if head.next_attempt_at is not None and head.next_attempt_at > datetime.now(UTC):
            await _wake(session, head.tenant_id, sender_id, head.next_attempt_at)
            await session.commit()
            return "retry"
        outcome = await convert_message(session, settings, head.id, fhir=fhir)
        if outcome == "retry":
            await _wake(session, head.tenant_id, sender_id, head.next_attempt_at)
        await session.commit()
    return outcome


async def _convert_job(run: jobs.JobRun) -> Mapping[str, Any] | None:
    return await convert_queue(run.sessionmaker, get_settings(), uuid.UUID(str(run.args["sender"])))


async def convert_message(
    session: AsyncSession,
    settings: Settings,
    message_id: uuid.UUID,
    *,
    fhir: FhirClient | None = None,
) -> str:
    """Convert one inbox row; returns ``converted``, ``dead``, ``retry`` or ``skipped`` (not
    waiting for conversion). The row's new state is in ``session`` (the caller commits),
    with the application ACK the message asked for queued to its sender (MSH-16)."""
    row = await session.get(Hl7Message, message_id, with_for_update=True)
    if row is None or row.status not in {"accepted", "failed"}:
        return "skipped"
    before = row.application_ack
    outcome = await _convert(session, settings, row, fhir)
    if row.application_ack is not None and row.application_ack != before:
        await queue_application_ack(session, row)
    return outcome


async def _convert(
    session: AsyncSession, settings: Settings, row: Hl7Message, fhir: FhirClient | None
) -> str:
    slug = await session.scalar(select(Tenant.slug).where(Tenant.id == row.tenant_id))
    if slug is None:
        return "skipped"
    row.attempts += 1
    try:
        message = parse_message(row.raw)
        conversion = to_transaction(
            message,
            ConversionContext(message_id=row.id.hex, received_at=row.received_at, tenant=slug),
        )
    except MessageRejected as exc:
        return _dead(row, f"{exc.code}: {exc.reason}")
    except ConversionError as exc:
        where = f" at {exc.location}" if exc.location else ""
        return _dead(row, f"mapping{where}: {exc.reason}")
    _mark_source(
        conversion.bundle, message.header.sending_application, message.header.sending_facility
    )
    critical = 0
    if message.header.message_type == "ORU":
        critical = await apply_results_rules(
            session,
            row.tenant_id,
            conversion.bundle,
            sender=f"{message.header.sending_application}^{message.header.sending_facility}",
            authored=datetime.now(UTC),
        )
    merged: list[str] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            if fhir is None:
                fhir = await stack.enter_async_context(
                    FhirClient(settings.fhir, http_backend=settings.fhir.http_backend)
                )
            tenant_fhir = fhir.for_tenant(slug)
            response = await tenant_fhir.transaction(conversion.bundle)
            for old, survivor in _merges(conversion.bundle, response):
                merged.append(await _move_references(tenant_fhir, old, survivor))
    except (DependencyUnavailable, FhirUpstreamError, FhirConflict) as exc:
        # HAPI down, slow or failing: the message is not at fault — retried (backoff up to
        # 5 minutes) until HAPI is back, never a dead letter. A conflict racing another writer
        # (two senders creating the same Practitioner at once) can succeed on a later attempt:
        # retried, a dead letter after EHR_HL7__CONVERT_MAX_ATTEMPTS.
        conflict = isinstance(exc, FhirConflict)
        if conflict and row.attempts >= settings.hl7.convert_max_attempts:
            return _dead(row, f"HAPI conflict {row.attempts} times ({exc.code})")
        row.status = "failed"
        row.error = f"HAPI {'conflict' if conflict else 'failed'} ({type(exc).__name__}); retrying"
        delay = min(300.0, 2.0 ** min(row.attempts, 9))
        row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
        metrics.CONVERSIONS.labels(row.message_type, "retrying").inc()
        logger.warning("hl7v2.convert.retrying", message_id=str(row.id), attempts=row.attempts)
        return "retry"
    except AppError as exc:
        # HAPI refused the Bundle: the same Bundle would be refused again.
        return _dead(row, f"HAPI refused the transaction: {exc.code}")
    row.status = "converted"
    row.error = None
    row.next_attempt_at = None
    row.converted_at = datetime.now(UTC)
    row.resources = {
        "summary": conversion.summary,
        "locations": sorted(_locations(response)),
    }
    if merged:
        row.resources["merges"] = merged
    if critical:
        row.resources["critical_reports"] = critical
    header = message.header
    if header.accept_ack_type and header.application_ack_type in {"AL", "SU"}:
        row.application_ack = build_ack(
            header,
            "AA",
            control_id=uuid.uuid4().hex[:20],
            receiving_app=settings.hl7.receiving_application,
            receiving_facility=settings.hl7.receiving_facility,
            application=True,
        )
    metrics.CONVERSIONS.labels(row.message_type, "converted").inc()
    logger.info(
        "hl7v2.convert.done",
        message_id=str(row.id),
        message_type=row.message_type,
        entries=sum(conversion.summary.values()),
    )
    return "converted"


def _dead(row: Hl7Message, reason: str) -> str:
    row.status = "dead"
    row.error = reason[:1000]
    metrics.CONVERSIONS.labels(row.message_type, "dead").inc()
    logger.warning(
        "hl7v2.convert.dead_letter", message_id=str(row.id), message_type=row.message_type
    )
    try:
        header = parse_message(row.raw).header
    except MessageRejected:
        return "dead"
    if header.accept_ack_type and header.application_ack_type in {"AL", "ER"}:
        settings = get_settings()
        row.application_ack = build_ack(
            header,
            "AE",
            control_id=uuid.uuid4().hex[:20],
            text=reason[:80],
            errors=(AckError(code="207", text=reason[:200], location=None, severity="E"),),
            receiving_app=settings.hl7.receiving_application,
            receiving_facility=settings.hl7.receiving_facility,
            application=True,
        )
    return "dead"


def _mark_source(bundle: dict[str, Any], application: str, facility: str) -> None:
    """``meta.source`` of every resource the message writes: the sending system
    (``urn:ehr:hl7v2:<MSH-3>:<MSH-4>``), so outbound interfaces never echo it back."""
    source = source_of(application, facility)
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource")
        if isinstance(resource, dict):
            resource.setdefault("meta", {})["source"] = source


def _merges(bundle: Mapping[str, Any], response: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(replaced, surviving) Patient references of an A40's merge, from the Bundle's
    ``link`` entries and the ids HAPI assigned (entries answer in the Bundle's order)."""
    entries = list(bundle.get("entry") or ())
    answers = list(response.get("entry") or ())
    stored: dict[str, str] = {}
    for entry, answer in zip(entries, answers, strict=False):
        location = (answer.get("response") or {}).get("location")
        if isinstance(location, str) and isinstance(entry.get("fullUrl"), str):
            stored[entry["fullUrl"]] = "/".join(location.split("/")[:2])
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Patient" or resource.get("active") is not False:
            continue
        for link in resource.get("link") or ():
            other = (link.get("other") or {}).get("reference")
            if link.get("type") == "replaced-by" and isinstance(other, str):
                old, survivor = stored.get(entry.get("fullUrl", "")), stored.get(other, other)
                if old and survivor.startswith("Patient/"):
                    pairs.append((old, survivor))
    return pairs


async def _move_references(tenant_fhir: TenantFhirClient, old: str, survivor: str) -> str:
    """Point what refers to the replaced Patient at the surviving one (HAPI's
    ``$hapi.fhir.replace-references``); what could not be moved is flagged in the answer."""
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-reference-id", "valueString": old},
            {"name": "target-reference-id", "valueString": survivor},
        ],
    }
    try:
        await tenant_fhir.operation("$hapi.fhir.replace-references", body=parameters, method="POST")
        # That moved the survivor's own "replaces" link too (it referred to the replaced
        # Patient): put it back.
        patient = await tenant_fhir.read("Patient", survivor.split("/", 1)[1])
        links = [
            link
            for link in patient.get("link") or ()
            if (link.get("other") or {}).get("reference") != survivor
        ]
        if not any((link.get("other") or {}).get("reference") == old for link in links):
            links.append({"other": {"reference": old}, "type": "replaces"})
            patient["link"] = links
            await tenant_fhir.update(patient, if_match=str(patient["meta"]["versionId"]))
    except AppError as exc:
        if isinstance(exc, (DependencyUnavailable, FhirUpstreamError)):
            raise
        logger.warning("hl7v2.convert.references_not_moved", error=exc.code)
        return f"{old} -> {survivor}: references NOT moved ({exc.code}); review"
    return f"{old} -> {survivor}: references moved"


def _locations(response: Mapping[str, Any]) -> Iterable[str]:
    for entry in response.get("entry") or ():
        location = (entry.get("response") or {}).get("location")
        if isinstance(location, str):
            # "Patient/123/_history/2" → "Patient/123"
            yield "/".join(location.split("/")[:2])


async def replay(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    message_ids: Iterable[uuid.UUID] = (),
    status: str | None = None,
) -> list[uuid.UUID]:
    """Queue messages for conversion again: the given ids, or every message in ``status``
    (``dead`` after a fix); within ``tenant_id`` when given. Returns the ids queued."""
    query = select(Hl7Message).where(Hl7Message.status.in_(_REPLAYABLE))
    ids = list(message_ids)
    if ids:
        query = query.where(Hl7Message.id.in_(ids))
    elif status is not None:
        query = query.where(Hl7Message.status == status)
    else:
        return []
    if tenant_id is not None:
        query = query.where(Hl7Message.tenant_id == tenant_id)
    rows = list(await session.scalars(query.order_by(Hl7Message.received_at).with_for_update()))
    for row in rows:
        await session.execute(
            update(Hl7Message)
            .where(Hl7Message.id == row.id)
            .values(status="accepted", attempts=0, error=None, next_attempt_at=None)
        )
        await defer_conversion(session, row)
    return [row.id for row in rows]


CONVERT: Final = jobs.define(
    "hl7v2.convert",
    _convert_job,
    # A run converts its sender's whole queue; HAPI being down reschedules it (convert_queue).
    max_attempts=5,
    exclusive=lambda tenant, args: f"hl7v2:{args['sender']}",
    queueing_lock=lambda tenant, args: f"hl7v2:{args['sender']}",
    description="Convert a sender's received HL7 v2 messages to FHIR transactions, in order",
)
