"""The CDS services' decision logic: one call, from the chart it gathers to the cards it answers.

A call gathers its chart (:mod:`.prefetch`: what the client sent, its ``fhirServer``, or HAPI),
decides in a worker thread — data cards (:mod:`.data_cards`), care-gap reminders
(:mod:`.care_gap_cards`), medication safety (:mod:`.flows`), duplicate orders (:mod:`.orders`) —
and coordinates with earlier calls: ``order-sign`` leaves out the cards ``order-select`` already
showed for the same draft and issue (remembered in Redis for ``shown_card_ttl_seconds``; when Redis
is down, cards are repeated rather than lost). What each service does: :mod:`.definitions`.

Every call is audited (one record, the patient in context); cards are counted per service and
rule (Prometheus) and remembered by uuid so feedback (:mod:`.feedback`) can be attributed to the
rule (alert fatigue).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Final, Literal

import anyio.to_thread
import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.config import CdsHooksSettings
from ehr.core.errors import BadRequestError, DependencyUnavailable, PreconditionFailed
from ehr.fhir import TenantFhirClient
from ehr.modules.cds_hooks.cards import IssuedCard
from ehr.modules.cds_hooks.care_gap_cards import care_gap_cards
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.client_auth import CdsClientIdentity
from ehr.modules.cds_hooks.data_cards import (
    capped_cards,
    incomplete_card,
    is_data_card,
    record_missing_card,
)
from ehr.modules.cds_hooks.definitions import ServiceDefinition
from ehr.modules.cds_hooks.dispatch_cards import dispatch_cards
from ehr.modules.cds_hooks.flows import (
    MEDICATION_LIST_HOOKS,
    ORDER_HOOKS,
    medication_safety_cards,
)
from ehr.modules.cds_hooks.hook_requests import order_drafts, patient_id_of
from ehr.modules.cds_hooks.orders import draft_reference, duplicate_order_cards
from ehr.modules.cds_hooks.prefetch import (
    FhirSource,
    HapiSource,
    Prefetched,
    RemoteFhirSource,
    gather,
)
from ehr.modules.cds_hooks.problem_cards import duplicate_problem_cards, new_conditions
from ehr.modules.cds_hooks.schemas import CdsRequest, CdsResponse
from ehr.modules.medication_safety import MedicationChecks

__all__ = [
    "CARDS_RETURNED",
    "CARDS_SUPPRESSED",
    "CallOutcome",
    "CdsHooksService",
    "chart_from",
]

logger = structlog.get_logger(__name__)

GapHook = Literal["patient-view", "encounter-start"]

CARDS_RETURNED: Final = Counter(
    "ehr_cds_cards",
    "CDS Hooks cards returned, by service and rule (or care gap).",
    ["service", "rule"],
)
CARDS_SUPPRESSED: Final = Counter(
    "ehr_cds_cards_suppressed",
    "order-sign cards not repeated because order-select showed them for the same draft.",
    ["service", "rule"],
)


def chart_from(prefetched: Prefetched) -> PatientChart | None:
    patient = prefetched.first("patient", "Patient")
    if patient is None:
        return None
    medications = {
        f"Medication/{r['id']}": r
        for key in ("medicationRequests", "medicationStatements")
        for r in prefetched.resources(key, "Medication")
        if isinstance(r.get("id"), str)
    }
    return PatientChart(
        patient=patient,
        immunizations=prefetched.resources("immunizations", "Immunization"),
        observations=prefetched.resources("observations", "Observation"),
        procedures=prefetched.resources("procedures", "Procedure"),
        conditions=prefetched.resources("conditions", "Condition"),
        allergies=prefetched.resources("allergies", "AllergyIntolerance"),
        medication_requests=prefetched.resources("medicationRequests", "MedicationRequest"),
        medication_statements=prefetched.resources("medicationStatements", "MedicationStatement"),
        medications=medications,
        service_requests=prefetched.resources("serviceRequests", "ServiceRequest"),
        complete=prefetched.complete,
    )


@dataclass(slots=True)
class CallOutcome:
    response: CdsResponse
    patient_id: str
    issued: list[IssuedCard] = field(default_factory=list)
    suppressed: int = 0
    prefetch_sent: int = 0
    prefetch_fetched: int = 0
    source: str = "prefetch"


class CdsHooksService:
    """One call's decision logic, bound to the client's tenant, its medication-safety checks (the
    tenant's policy) and data sources."""

    def __init__(
        self,
        *,
        client: CdsClientIdentity,
        checks: MedicationChecks,
        fhir: TenantFhirClient,
        redis: Redis,
        settings: CdsHooksSettings,
    ) -> None:
        self._client = client
        self._checks = checks
        self._fhir = fhir
        self._redis = redis
        self._settings = settings

    # ---- data

    def _source(self, request: CdsRequest) -> tuple[FhirSource | None, str | None]:
        if request.fhir_server is not None:
            base = str(request.fhir_server).rstrip("/")
            if base not in {s.rstrip("/") for s in self._client.fhir_servers}:
                return None, "fhirServer is not registered for this CDS client"
            token = (
                request.fhir_authorization.access_token.get_secret_value()
                if request.fhir_authorization is not None
                else None
            )
            return (
                RemoteFhirSource(
                    base, token, timeout_seconds=self._settings.fhir_server_timeout_seconds
                ),
                None,
            )
        if self._client.first_party:
            return HapiSource(self._fhir), None
        return None, "send it in prefetch, or send fhirServer and fhirAuthorization"

    async def _gather(self, definition: ServiceDefinition, request: CdsRequest) -> Prefetched:
        source, hint = self._source(request)
        try:
            async with asyncio.timeout(self._settings.fhir_server_timeout_seconds):
                return await gather(
                    definition.prefetch, request.context, request.prefetch, source, hint=hint
                )
        except TimeoutError:
            if isinstance(source, HapiSource):
                raise DependencyUnavailable(
                    "The FHIR server did not answer in time; decision support is unavailable"
                ) from None
            raise PreconditionFailed(
                "The CDS client's FHIR server did not answer in time; "
                "the data this service needs could not be obtained"
            ) from None
        finally:
            if isinstance(source, RemoteFhirSource):
                await source.aclose()

    # ---- medication safety

    # ---- hooks

    async def call(self, definition: ServiceDefinition, request: CdsRequest) -> CallOutcome:
        prefetched = await self._gather(definition, request)
        patient_id = patient_id_of(request)
        now = dt.datetime.now(dt.UTC)
        # The checks are CPU work that grows with the (capped) orders and records: a worker
        # thread keeps the event loop (health checks, other calls) answering meanwhile.
        issued, omitted = await anyio.to_thread.run_sync(
            self._decide, definition, request, prefetched, patient_id, now
        )
        outcome = CallOutcome(
            response=CdsResponse(),
            patient_id=patient_id,
            prefetch_sent=len(prefetched.sent),
            prefetch_fetched=len(prefetched.fetched),
            source=(
                "prefetch"
                if not prefetched.fetched
                else ("fhir_server" if request.fhir_server is not None else "hapi")
            ),
        )
        if definition.hook == "order-sign":
            issued, outcome.suppressed = await self._without_shown(definition, issued)
        issued = capped_cards(issued, omitted=omitted)
        outcome.issued = issued
        outcome.response = CdsResponse(cards=[i.card for i in issued])
        await self._remember(definition, issued)
        for card in issued:
            CARDS_RETURNED.labels(definition.id, card.rule_id).inc()
        return outcome

    def _decide(
        self,
        definition: ServiceDefinition,
        request: CdsRequest,
        prefetched: Prefetched,
        patient_id: str,
        now: dt.datetime,
    ) -> tuple[list[IssuedCard], int]:
        """The cards of one call before coordination, and how many findings were left out
        (beyond :data:`~.schemas.MAX_CARDS`). Synchronous: runs in a worker thread."""
        chart = chart_from(prefetched)
        issued: list[IssuedCard] = []
        if chart is None:
            issued.append(record_missing_card(patient_id))
        elif not chart.complete:
            issued.append(incomplete_card())
        medication = medication_safety_cards(
            self._checks, definition, request, chart, patient_id=patient_id, now=now
        )
        issued += medication.notices
        if chart is not None and definition.hook in MEDICATION_LIST_HOOKS:
            gap_hook: GapHook = (
                "patient-view" if definition.hook == "patient-view" else "encounter-start"
            )
            issued += care_gap_cards(chart, today=now.date(), hook=gap_hook)
        elif chart is not None and definition.hook in ("encounter-start", "appointment-book"):
            issued += care_gap_cards(chart, today=now.date(), hook="encounter-start")
        issued += medication.cards
        if definition.hook in ORDER_HOOKS:
            issued += self._duplicate_order_cards(definition, request, chart, patient_id, now)
        if definition.hook == "order-dispatch":
            issued += dispatch_cards(request.context, chart, patient_id=patient_id)
        if definition.hook == "problem-list-item-create":
            drafts = new_conditions(request.context)
            if not drafts:
                raise BadRequestError(
                    "context.conditions (a Bundle of Conditions) is required for hook "
                    "'problem-list-item-create'"
                )
            issued += duplicate_problem_cards(
                drafts, chart.conditions if chart is not None else (), patient_id=patient_id
            )
        return issued, medication.omitted

    def _duplicate_order_cards(
        self,
        definition: ServiceDefinition,
        request: CdsRequest,
        chart: PatientChart | None,
        patient_id: str,
        now: dt.datetime,
    ) -> list[IssuedCard]:
        drafts, selected = order_drafts(definition.hook, request)
        service_drafts = [d for d in drafts if d.get("resourceType") == "ServiceRequest"]
        if selected is not None:
            service_drafts = [d for d in service_drafts if draft_reference(d) in selected]
        if not service_drafts:
            return []
        return duplicate_order_cards(
            service_drafts,
            chart.service_requests if chart is not None else (),
            patient_id=patient_id,
            now=now,
        )

    # ---- coordination and memory (Redis: a helper; failures never lose a card)

    def _shown_key(self, fingerprint: str) -> str:
        return f"cds:shown:{self._client.tenant}:{fingerprint}"

    def _card_key(self, card_uuid: str) -> str:
        return f"cds:card:{self._client.tenant}:{card_uuid}"

    async def _without_shown(
        self, definition: ServiceDefinition, issued: list[IssuedCard]
    ) -> tuple[list[IssuedCard], int]:
        if not issued:
            return issued, 0
        try:
            shown = await self._redis.mget([self._shown_key(i.fingerprint) for i in issued])
        except (RedisError, OSError) as exc:
            logger.warning("cds_hooks.coordination.unavailable", error=type(exc).__name__)
            return issued, 0
        kept = [
            card
            for card, seen in zip(issued, shown, strict=True)
            if seen is None or is_data_card(card)
        ]
        for card, seen in zip(issued, shown, strict=True):
            if seen is not None and not is_data_card(card):
                CARDS_SUPPRESSED.labels(definition.id, card.rule_id).inc()
        return kept, len(issued) - len(kept)

    async def _remember(self, definition: ServiceDefinition, issued: list[IssuedCard]) -> None:
        if not issued:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for card in issued:
                    if card.card.uuid:
                        pipe.set(
                            self._card_key(card.card.uuid),
                            f"{definition.id}\x1f{card.rule_id}",
                            ex=self._settings.card_memory_seconds,
                        )
                    if definition.hook == "order-select" and not is_data_card(card):
                        pipe.set(
                            self._shown_key(card.fingerprint),
                            "1",
                            ex=self._settings.shown_card_ttl_seconds,
                        )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("cds_hooks.card_memory.unavailable", error=type(exc).__name__)
