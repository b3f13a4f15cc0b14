"""Converting stored messages to FHIR, in the background (ADR 0033).

``hl7v2.convert`` (one job per inbox row, run by ``ehr worker``) reads the raw message, maps it
with ``to_fhir`` and posts ONE transaction Bundle to the tenant's partition. Every entry is a
conditional update on a business identifier (PID-3, visit number, order numbers), and the
MessageHeader/Provenance have fixed ids per message, so running the job again — a retry after
a crash, a replay after a fix — changes nothing that was already right: effects exactly once.

Jobs of one sender run one at a time (``exclusive`` per sender), in the order they were queued,
so an A08 is applied after the A01 before it. HAPI down or slow: the row is ``failed`` and the
job retries with backoff; after ``EHR_HL7__CONVERT_MAX_ATTEMPTS`` attempts, or at once when
HAPI refuses the Bundle (4xx) or the mapping cannot take the message, it is a dead letter
(``status='dead'``, ``error`` says why); ``replay`` queues it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import Hl7Message, Tenant
from ehr.core.errors import AppError, DependencyUnavailable
from ehr.fhir import FhirClient, FhirUpstreamError, TenantFhirClient
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.acks import AckError, build_ack
from ehr.modules.hl7v2.flows import apply_results_rules
from ehr.modules.hl7v2.outbound import source_of
from ehr.modules.hl7v2.parsing import MessageRejected, parse_message
from ehr.modules.hl7v2.to_fhir import ConversionContext, ConversionError, to_transaction
from ehr.platform import jobs

__all__ = ["CONVERT", "convert_message", "defer_conversion", "replay"]

logger = structlog.get_logger(__name__)

_REPLAYABLE: Final = frozenset({"dead", "failed", "rejected", "converted"})


async def defer_conversion(session: AsyncSession, row: Hl7Message) -> None:
    """Queue the conversion of ``row`` in the caller's transaction."""
    await jobs.defer(
        session,
        CONVERT,
        tenant_id=row.tenant_id,
        owner=f"hl7_sender:{row.sender_id}",
        args={"message": str(row.id), "sender": str(row.sender_id)},
    )


async def _convert_job(run: jobs.JobRun) -> Mapping[str, Any] | None:
    message_id = uuid.UUID(str(run.args["message"]))
    settings = get_settings()
    async with run.sessionmaker() as session:
        outcome = await convert_message(session, settings, message_id)
        await session.commit()
    if outcome == "retry":
        raise _RetryLaterError(f"hl7v2 message {message_id} not converted yet")
    return {"outcome": outcome}


class _RetryLaterError(Exception):
    """HAPI was unavailable: the job runs again after its backoff."""


async def convert_message(session: AsyncSession, settings: Settings, message_id: uuid.UUID) -> str:
    """Convert one inbox row; returns ``converted``, ``dead``, ``retry`` or ``skipped`` (not
    waiting for conversion). The row's new state is in ``session`` (the caller commits)."""
    row = await session.get(Hl7Message, message_id, with_for_update=True)
    if row is None or row.status not in {"accepted", "failed"}:
        return "skipped"
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
        async with FhirClient(settings.fhir, http_backend=settings.fhir.http_backend) as fhir:
            tenant_fhir = fhir.for_tenant(slug)
            response = await tenant_fhir.transaction(conversion.bundle)
            for old, survivor in _merges(conversion.bundle, response):
                merged.append(await _move_references(tenant_fhir, old, survivor))
    except (DependencyUnavailable, FhirUpstreamError) as exc:  # HAPI down, slow or failing
        if row.attempts >= settings.hl7.convert_max_attempts:
            return _dead(row, f"HAPI failed {row.attempts} times ({type(exc).__name__})")
        row.status = "failed"
        row.error = f"HAPI failed ({type(exc).__name__}); retrying"
        metrics.CONVERSIONS.labels(row.message_type, "retrying").inc()
        logger.warning("hl7v2.convert.retrying", message_id=str(row.id), attempts=row.attempts)
        return "retry"
    except AppError as exc:
        # HAPI refused the Bundle: the same Bundle would be refused again.
        return _dead(row, f"HAPI refused the transaction: {exc.code}")
    row.status = "converted"
    row.error = None
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
            .values(status="accepted", attempts=0, error=None)
        )
        await defer_conversion(session, row)
    return [row.id for row in rows]


CONVERT: Final = jobs.define(
    "hl7v2.convert",
    _convert_job,
    # Our own attempt count decides when a message is a dead letter (EHR_HL7__CONVERT_MAX_ATTEMPTS).
    max_attempts=50,
    retry_base_seconds=2.0,
    retry_max_seconds=300.0,
    exclusive=lambda tenant, args: f"hl7v2:{args['sender']}",
    description="Convert one received HL7 v2 message to a FHIR transaction",
)
