"""The CDS services: definitions (discovery), request checks, decision logic, feedback.

Services (id = hook name; discovery lists all but the legacy ones):

``patient-view``     reminders: care gaps (immunizations, screenings, monitoring), latest blood
                     pressure / HbA1c out of range, active high-criticality allergies, and
                     drug-drug / drug-allergy / duplicate issues already in the medication list.
``order-select``     medication safety of the selected draft orders (against the record and the
                     other drafts) and duplicate ServiceRequests of the last 24 hours.
``order-sign``       the same for every draft order; leaves out the cards order-select already
                     showed for the same draft and issue (remembered in Redis for
                     ``shown_card_ttl_seconds``; when Redis is down, cards are repeated rather
                     than lost).
``encounter-start``  the care gaps to close during the visit, with draft orders as suggestions.
``encounter-discharge`` issues in the current medication list and the care gaps still open.
``appointment-book`` the care gaps to plan into the appointment.
``allergyintolerance-create`` active medications against the allergy being recorded.
``medication-refill`` order-sign's medication checks for the refills (each replaces its own
                     active order, so a refill never "interacts" with itself).
``medication-prescribe`` (deprecated in 2.0) and ``order-review`` (withdrawn before 1.0): not
                     advertised; answered like order-sign for older clients.

Where the data comes from: :mod:`.prefetch`. Every call is audited (one record, the patient in
context); cards are counted per service and rule (Prometheus) and remembered by uuid so feedback
can be attributed to the rule (alert fatigue).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import anyio.to_thread
import structlog
from prometheus_client import Counter
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import CdsHooksSettings
from ehr.core.db.models import CdsFeedback
from ehr.core.errors import (
    BadRequestError,
    DependencyUnavailable,
    NotFoundError,
    PreconditionFailed,
)
from ehr.core.intake import parse_json
from ehr.fhir import TenantFhirClient, bundle_resources
from ehr.modules.care_gaps import OBSERVATION_CODES
from ehr.modules.cds_hooks.cards import (
    CARE_GAP_TOPIC_SYSTEM,
    IssuedCard,
    fingerprint_of,
    new_card_uuid,
)
from ehr.modules.cds_hooks.care_gap_cards import care_gap_cards
from ehr.modules.cds_hooks.chart import PatientChart
from ehr.modules.cds_hooks.client_auth import CdsClientIdentity
from ehr.modules.cds_hooks.orders import (
    MEDICATION_ORDER_TYPES,
    draft_reference,
    duplicate_order_cards,
    medication_cards,
)
from ehr.modules.cds_hooks.prefetch import (
    FhirSource,
    HapiSource,
    Prefetched,
    RemoteFhirSource,
    gather,
)
from ehr.modules.cds_hooks.schemas import (
    MAX_CARDS,
    MAX_DRAFT_ORDERS,
    MAX_PREFETCH_ENTRIES,
    MAX_SELECTIONS,
    Card,
    CdsRequest,
    CdsResponse,
    CdsService,
    Coding,
    Discovery,
    FeedbackRequest,
    Source,
)
from ehr.modules.medication_safety.engine import (
    AllergyInput,
    CheckResult,
    IssueCategory,
    MedicationInput,
    check,
)
from ehr.modules.medication_safety.service import (
    LoadedKnowledge,
    PatientProfile,
    PatientRecord,
    TenantPolicy,
    allergy_from_fhir,
    build_profile,
    medication_from_draft,
)

__all__ = [
    "CARDS_RETURNED",
    "CARDS_SUPPRESSED",
    "CARD_FEEDBACK",
    "SERVICES",
    "CdsHooksService",
    "FeedbackOutcome",
    "ServiceDefinition",
    "discovery",
    "parse_feedback",
    "parse_request",
    "service_definition",
    "store_feedback",
]

logger = structlog.get_logger(__name__)

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
CARD_FEEDBACK: Final = Counter(
    "ehr_cds_card_feedback",
    "CDS Hooks card feedback received, by service, rule and outcome (accepted | overridden).",
    ["service", "rule", "outcome"],
)
UNKNOWN_RULE: Final = "unknown"

# --------------------------------------------------------------------------- definitions

_P: Final = "{{context.patientId}}"
PREFETCH_TEMPLATES: Final[Mapping[str, str]] = {
    "patient": f"Patient/{_P}",
    "medicationRequests": (
        f"MedicationRequest?patient={_P}&status=active,on-hold"
        "&_include=MedicationRequest:medication&_count=100"
    ),
    "medicationStatements": (
        f"MedicationStatement?patient={_P}&status=active,intended,on-hold"
        "&_include=MedicationStatement:medication&_count=100"
    ),
    "allergies": f"AllergyIntolerance?patient={_P}&_count=100",
    "immunizations": f"Immunization?patient={_P}&_count=200",
    "observations": (
        f"Observation?patient={_P}&code={','.join(OBSERVATION_CODES)}&_sort=-date&_count=100"
    ),
    "procedures": f"Procedure?patient={_P}&_count=200",
    "conditions": f"Condition?patient={_P}&_count=100",
    "serviceRequests": f"ServiceRequest?patient={_P}&_sort=-authored&_count=50",
}


def _templates(*keys: str) -> dict[str, str]:
    return {key: PREFETCH_TEMPLATES[key] for key in keys}


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    # Context fields the hook requires (spec / hooks library) → expected JSON type.
    context: Mapping[str, type | tuple[type, ...]]
    advertised: bool = True
    usage_requirements: str | None = None

    def to_discovery(self) -> CdsService:
        return CdsService(
            hook=self.hook,
            id=self.id,
            title=self.title,
            description=self.description,
            prefetch=dict(self.prefetch),
            usage_requirements=self.usage_requirements,
        )


_ORDERS_PREFETCH: Final = _templates(
    "patient", "medicationRequests", "medicationStatements", "allergies", "serviceRequests"
)
_CARE_GAP_PREFETCH: Final = _templates(
    "patient", "immunizations", "observations", "procedures", "conditions"
)
_PATIENT_VIEW_PREFETCH: Final = _templates(
    "patient",
    "medicationRequests",
    "medicationStatements",
    "allergies",
    "immunizations",
    "observations",
    "procedures",
    "conditions",
)
SERVICES: Final[Mapping[str, ServiceDefinition]] = {
    s.id: s
    for s in (
        ServiceDefinition(
            id="patient-view",
            hook="patient-view",
            title="Patient reminders",
            description=(
                "Care gaps (immunizations, cancer screenings, diabetes monitoring), the latest "
                "blood pressure and HbA1c when out of range, active high-criticality allergies, "
                "and drug-drug, drug-allergy and duplicate-therapy issues in the current "
                "medication list."
            ),
            prefetch=_PATIENT_VIEW_PREFETCH,
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="order-select",
            hook="order-select",
            title="Medication safety and duplicate orders (selection)",
            description=(
                "Checks the selected draft orders: drug-drug interactions, drug-allergy "
                "(with cross-sensitivity) and duplicate therapy against the patient's active "
                "medications, allergies and the other drafts; lab and imaging orders repeating "
                "one placed in the last 24 hours. Suggests removing or replacing the order."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={
                "userId": str,
                "patientId": str,
                "selections": list,
                "draftOrders": dict,
            },
        ),
        ServiceDefinition(
            id="order-sign",
            hook="order-sign",
            title="Medication safety and duplicate orders (signing)",
            description=(
                "The checks of order-select on every draft order at signing, without repeating "
                "cards order-select already showed for the same draft."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={"userId": str, "patientId": str, "draftOrders": dict},
        ),
        ServiceDefinition(
            id="encounter-start",
            hook="encounter-start",
            title="Care gaps for this visit",
            description=(
                "Immunizations, cancer screenings and diabetes monitoring due, each with a "
                "draft order to close the gap during the visit."
            ),
            prefetch=_CARE_GAP_PREFETCH,
            context={"userId": str, "patientId": str, "encounterId": str},
        ),
        ServiceDefinition(
            id="encounter-discharge",
            hook="encounter-discharge",
            title="Discharge check",
            description=(
                "Before discharge: drug-drug, drug-allergy and duplicate-therapy issues in the "
                "current medication list, and the care gaps still open."
            ),
            prefetch=_PATIENT_VIEW_PREFETCH,
            context={"userId": str, "patientId": str, "encounterId": str},
        ),
        ServiceDefinition(
            id="appointment-book",
            hook="appointment-book",
            title="Care gaps to close at the appointment",
            description=(
                "Immunizations, cancer screenings and diabetes monitoring due, so they can be "
                "planned into the appointment being booked."
            ),
            prefetch=_CARE_GAP_PREFETCH,
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="allergyintolerance-create",
            hook="allergyintolerance-create",
            title="Active medications against a new allergy",
            description=(
                "When an allergy is recorded: the patient's active medications that contain "
                "the allergen or a cross-reacting drug."
            ),
            prefetch=_templates(
                "patient", "medicationRequests", "medicationStatements", "allergies"
            ),
            context={"userId": str, "patientId": str},
        ),
        ServiceDefinition(
            id="medication-refill",
            hook="medication-refill",
            title="Medication safety at refill",
            description=(
                "Checks the medications being refilled against the rest of the active "
                "medications and the allergies (drug-drug, drug-allergy, duplicate therapy)."
            ),
            prefetch=_ORDERS_PREFETCH,
            context={"userId": str, "patientId": str, "medications": dict},
        ),
        ServiceDefinition(
            id="medication-prescribe",
            hook="medication-prescribe",
            title="Medication safety (deprecated hook)",
            description="order-sign's medication checks for clients still on medication-prescribe.",
            prefetch=_ORDERS_PREFETCH,
            context={"patientId": str, "medications": (dict, list)},
            advertised=False,
        ),
        ServiceDefinition(
            id="order-review",
            hook="order-review",
            title="Order checks (withdrawn hook)",
            description="order-sign's checks for clients still on the pre-1.0 order-review hook.",
            prefetch=_ORDERS_PREFETCH,
            context={"patientId": str, "orders": dict},
            advertised=False,
        ),
    )
}


def service_definition(service_id: str) -> ServiceDefinition:
    found = SERVICES.get(service_id)
    if found is None:
        raise NotFoundError(f"No CDS service with id {service_id!r}")
    return found


def discovery() -> Discovery:
    return Discovery(services=[s.to_discovery() for s in SERVICES.values() if s.advertised])


# --------------------------------------------------------------------------- request checks


def _validation_message(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        location = ".".join(str(p) for p in item.get("loc", ()))
        message = str(item.get("msg", "invalid"))
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)[:1000]


def _json_object(body: bytes | Any) -> dict[str, Any]:
    """The call's JSON object: ``body`` as sent (parsed by the intake rules) or already parsed."""
    document = parse_json(body) if isinstance(body, bytes) else body
    if not isinstance(document, dict):
        raise BadRequestError("The request body must be a JSON object")
    return document


def _entry_count(value: object) -> int:
    if isinstance(value, dict):
        entries = value.get("entry")
        return len(entries) if isinstance(entries, list) else 0
    return len(value) if isinstance(value, list) else 0


def _check_bounds(document: Mapping[str, Any]) -> None:
    """Refuse a call larger than any clinical workflow needs, before any work is done on it.

    The work of a call grows with its orders (pairs of drugs) and prefetched entries: these
    counts are capped (:data:`~ehr.modules.cds_hooks.schemas.MAX_DRAFT_ORDERS` ...).
    """
    context = document.get("context")
    if isinstance(context, dict):
        for name in ("draftOrders", "medications", "orders"):
            count = _entry_count(context.get(name))
            if count > MAX_DRAFT_ORDERS:
                raise BadRequestError(
                    f"context.{name} holds {count} orders; at most {MAX_DRAFT_ORDERS} are "
                    "checked in one call",
                    extra={"limit": MAX_DRAFT_ORDERS},
                )
        selections = context.get("selections")
        if isinstance(selections, list) and len(selections) > MAX_SELECTIONS:
            raise BadRequestError(
                f"context.selections holds {len(selections)} references; at most {MAX_SELECTIONS}",
                extra={"limit": MAX_SELECTIONS},
            )
        allergies = context.get("allergyIntolerances")
        if _entry_count(allergies) > MAX_DRAFT_ORDERS:
            raise BadRequestError(
                f"context.allergyIntolerances holds more than {MAX_DRAFT_ORDERS} entries",
                extra={"limit": MAX_DRAFT_ORDERS},
            )
    prefetch = document.get("prefetch")
    if isinstance(prefetch, dict):
        for key, value in prefetch.items():
            count = _entry_count(value) if isinstance(value, dict) else 0
            if count > MAX_PREFETCH_ENTRIES:
                raise BadRequestError(
                    f"prefetch.{str(key)[:64]} holds {count} entries; at most "
                    f"{MAX_PREFETCH_ENTRIES} per prefetched Bundle",
                    extra={"limit": MAX_PREFETCH_ENTRIES},
                )


def parse_request(body: bytes | Any, definition: ServiceDefinition) -> CdsRequest:
    """The call, checked against the spec and the hook's context (400 with a clear message)."""
    document = _json_object(body)
    missing = [name for name in ("hook", "hookInstance", "context") if name not in document]
    if missing:
        raise BadRequestError(f"Missing required field(s): {', '.join(missing)}")
    _check_bounds(document)
    try:
        request = CdsRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequestError(f"Invalid CDS Hooks request: {_validation_message(exc)}") from None
    if request.hook != definition.hook:
        raise BadRequestError(
            f"hook {request.hook!r} does not match service {definition.id!r}, "
            f"which answers {definition.hook!r}"
        )
    for name, expected in definition.context.items():
        value = request.context.get(name)
        if value is None:
            raise BadRequestError(f"context.{name} is required for hook {definition.hook!r}")
        if not isinstance(value, expected) or (isinstance(value, str) and not value.strip()):
            raise BadRequestError(f"context.{name} has the wrong type for hook {definition.hook!r}")
    draft = request.context.get("draftOrders")
    if draft is not None and (not isinstance(draft, dict) or draft.get("resourceType") != "Bundle"):
        raise BadRequestError("context.draftOrders must be a FHIR Bundle")
    selections = request.context.get("selections")
    if selections is not None and not all(isinstance(s, str) for s in selections):
        raise BadRequestError("context.selections must be a list of references")
    return request


def parse_feedback(body: bytes | Any) -> FeedbackRequest:
    document = _json_object(body)
    try:
        return FeedbackRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequestError(f"Invalid CDS Hooks feedback: {_validation_message(exc)}") from None


# --------------------------------------------------------------------------- the chart


def _patient_id(request: CdsRequest) -> str:
    value = request.context.get("patientId")
    return str(value) if value is not None else ""


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


def _source_card(summary: str, detail: str, code: str, display: str) -> IssuedCard:
    card = Card(
        uuid=new_card_uuid(),
        summary=summary,
        indicator="info",
        detail=detail,
        source=Source(
            label="EHR clinical decision support",
            topic=Coding(system=CARE_GAP_TOPIC_SYSTEM, code=code, display=display),
        ),
    )
    return IssuedCard(card=card, rule_id=code, fingerprint=fingerprint_of(code, summary))


def _record_missing_card(patient_id: str) -> IssuedCard:
    return _source_card(
        "No record found for this patient: decision support is limited",
        (
            f"The FHIR server has no Patient/{patient_id} for this service, so medications, "
            "allergies and results on record could not be checked. Only what this request "
            "carried (e.g. the draft orders) was checked."
        ),
        "data:patient-not-found",
        "Patient record not found",
    )


def _restricted_card() -> IssuedCard:
    return _source_card(
        "Some restricted records were not checked",
        (
            "Records marked restricted (confidentiality R or V) are not read by decision "
            "support. Open the chart with emergency access (break-glass) to check against them."
        ),
        "data:restricted-not-checked",
        "Restricted records not checked",
    )


def _incomplete_card() -> IssuedCard:
    return _source_card(
        "Part of the record was not checked (too much data or a source failed)",
        (
            "A search returned more pages than decision support reads, or a prefetch page could "
            "not be followed. Cards reflect the data that was read."
        ),
        "data:incomplete",
        "Record read incompletely",
    )


_INDICATOR_RANK: Final = {"critical": 0, "warning": 1, "info": 2}


def _most_severe(result: CheckResult, limit: int = MAX_CARDS) -> tuple[CheckResult, int]:
    """``result`` with at most ``limit`` issues (they come most severe first), and how many
    were left out: no call renders more cards than a response can carry."""
    if len(result.issues) <= limit:
        return result, 0
    return replace(result, issues=result.issues[:limit]), len(result.issues) - limit


def capped_cards(
    issued: list[IssuedCard], *, omitted: int = 0, limit: int = MAX_CARDS
) -> list[IssuedCard]:
    """At most ``limit`` cards: the most severe first; what was left out (``omitted`` findings
    never rendered, plus cards over the limit) is counted on one summary card."""
    if len(issued) <= limit and not omitted:
        return issued
    ranked = sorted(issued, key=lambda i: _INDICATOR_RANK.get(i.card.indicator, 3))
    kept = ranked[: limit - 1]
    left_out = len(issued) - len(kept) + omitted
    logger.info("cds_hooks.cards.capped", cards=len(issued) + omitted, omitted=left_out)
    return [
        *kept,
        _source_card(
            f"{left_out} more findings not shown",
            (
                f"This call produced {len(kept) + left_out} findings; the {len(kept)} most "
                "severe are shown. Review the orders with the medication-safety check for the "
                "full list."
            ),
            "data:cards-capped",
            "More findings than shown",
        ),
    ]


# --------------------------------------------------------------------------- the service


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
    """One call's decision logic, bound to the client's tenant, policy and data sources."""

    def __init__(
        self,
        *,
        client: CdsClientIdentity,
        knowledge: LoadedKnowledge,
        policy: TenantPolicy,
        fhir: TenantFhirClient,
        redis: Redis,
        settings: CdsHooksSettings,
    ) -> None:
        self._client = client
        self._knowledge = knowledge
        self._policy = policy
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

    def _name_of(self, codings: Sequence[Any]) -> str | None:
        for coding in codings:
            resolution = self._knowledge.resolver.resolve(coding.system, coding.code)
            if resolution is not None:
                return resolution.name
        return None

    def _profile(self, chart: PatientChart, now: dt.datetime) -> PatientProfile:
        record = PatientRecord(
            patient=chart.patient,
            requests=chart.medication_requests,
            statements=chart.medication_statements,
            allergies=chart.allergies,
            medications=chart.medications,
            complete=chart.complete,
        )
        return build_profile(record, now=now, may_see_restricted=False, name_of=self._name_of)

    def _check(
        self,
        proposed: Sequence[MedicationInput],
        active: Sequence[MedicationInput],
        profile: PatientProfile | None,
    ) -> CheckResult:
        return check(
            proposed,
            active,
            profile.allergies if profile is not None else (),
            profile.context if profile is not None else None,
            kb=self._knowledge.kb,
            resolver=self._knowledge.resolver,
            policy=self._policy.policy,
        )

    # ---- hooks

    async def call(self, definition: ServiceDefinition, request: CdsRequest) -> CallOutcome:
        prefetched = await self._gather(definition, request)
        patient_id = _patient_id(request)
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
        (beyond :data:`MAX_CARDS`). Synchronous: runs in a worker thread."""
        chart = chart_from(prefetched)
        issued: list[IssuedCard] = []
        omitted = 0
        profile: PatientProfile | None = None
        if chart is None:
            issued.append(_record_missing_card(patient_id))
        elif not chart.complete:
            issued.append(_incomplete_card())
        if chart is not None and any(k in definition.prefetch for k in ("medicationRequests",)):
            profile = self._profile(chart, now)
            if any(s.reason == "restricted" for s in profile.skipped):
                issued.append(_restricted_card())
        if definition.hook in ("patient-view", "encounter-discharge"):
            if chart is not None and profile is not None:
                gap_hook: GapHook = (
                    "patient-view" if definition.hook == "patient-view" else "encounter-start"
                )
                issued += care_gap_cards(chart, today=now.date(), hook=gap_hook)
                if definition.hook == "patient-view":
                    issued += _allergy_cards(chart, patient_id)
                result, omitted = _most_severe(self._check(profile.active, (), profile))
                issued += medication_cards(
                    result, patient_id=patient_id, drafts={}, active_orders={}
                )
        elif definition.hook in ("encounter-start", "appointment-book"):
            if chart is not None:
                issued += care_gap_cards(chart, today=now.date(), hook="encounter-start")
        elif definition.hook == "allergyintolerance-create":
            issued += self._new_allergy_cards(request, profile, patient_id)
        else:
            cards, omitted = self._order_cards(definition, request, chart, profile, patient_id, now)
            issued += cards
        return issued, omitted

    def _order_cards(
        self,
        definition: ServiceDefinition,
        request: CdsRequest,
        chart: PatientChart | None,
        profile: PatientProfile | None,
        patient_id: str,
        now: dt.datetime,
    ) -> tuple[list[IssuedCard], int]:
        drafts = _legacy_medications(
            request.context.get(_DRAFTS_FIELD.get(definition.hook, "draftOrders"))
        )
        selected: set[str] | None = None
        if definition.hook == "order-select":
            selected = {str(s) for s in request.context.get("selections") or []}
        medication_drafts = [d for d in drafts if d.get("resourceType") in MEDICATION_ORDER_TYPES]
        by_reference = {ref: d for d in medication_drafts if (ref := draft_reference(d))}
        proposed: list[MedicationInput] = []
        others: list[MedicationInput] = []
        for index, draft in enumerate(medication_drafts):
            keyed = draft if draft_reference(draft) else {**draft, "id": f"draft-{index + 1}"}
            item = medication_from_draft(keyed, {}, name_of=self._name_of)
            if selected is None or draft_reference(draft) in selected:
                proposed.append(item)
            else:
                others.append(item)
        # A refill (or a re-sent order) replaces its own active order: not an interaction.
        renewed = set(by_reference)
        current = profile.active if profile is not None else ()
        active = [*(m for m in current if m.reference not in renewed), *others]
        cards: list[IssuedCard] = []
        omitted = 0
        if proposed:
            result, omitted = _most_severe(self._check(proposed, active, profile))
            active_orders = {
                f"MedicationRequest/{r['id']}": r
                for r in (chart.medication_requests if chart is not None else ())
                if isinstance(r.get("id"), str)
            }
            cards += medication_cards(
                result, patient_id=patient_id, drafts=by_reference, active_orders=active_orders
            )
        service_drafts = [d for d in drafts if d.get("resourceType") == "ServiceRequest"]
        if selected is not None:
            service_drafts = [d for d in service_drafts if draft_reference(d) in selected]
        if service_drafts:
            cards += duplicate_order_cards(
                service_drafts,
                chart.service_requests if chart is not None else (),
                patient_id=patient_id,
                now=now,
            )
        return cards, omitted

    def _new_allergy_cards(
        self, request: CdsRequest, profile: PatientProfile | None, patient_id: str
    ) -> list[IssuedCard]:
        resources = _new_allergies(request.context)
        if not resources:
            raise BadRequestError(
                "context.allergyIntolerance (an AllergyIntolerance) is required for hook "
                "'allergyintolerance-create'"
            )
        allergies = [
            found
            for index, resource in enumerate(resources)
            if isinstance(
                found := allergy_from_fhir(
                    resource if resource.get("id") else {**resource, "id": f"new-{index + 1}"},
                    may_see_restricted=True,
                    name_of=self._name_of,
                ),
                AllergyInput,
            )
        ]
        if profile is None or not profile.active or not allergies:
            return []
        result = check(
            profile.active,
            (),
            allergies,
            profile.context,
            kb=self._knowledge.kb,
            resolver=self._knowledge.resolver,
            policy=self._policy.policy,
        )
        relevant = CheckResult(
            issues=tuple(i for i in result.issues if i.category is IssueCategory.DRUG_ALLERGY),
            unresolved=result.unresolved,
            not_checkable=result.not_checkable,
            cleared=result.cleared,
            kb_version=result.kb_version,
        )
        return medication_cards(relevant, patient_id=patient_id, drafts={}, active_orders={})

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
            if seen is None or _is_data_card(card)
        ]
        for card, seen in zip(issued, shown, strict=True):
            if seen is not None and not _is_data_card(card):
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
                    if definition.hook == "order-select" and not _is_data_card(card):
                        pipe.set(
                            self._shown_key(card.fingerprint),
                            "1",
                            ex=self._settings.shown_card_ttl_seconds,
                        )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("cds_hooks.card_memory.unavailable", error=type(exc).__name__)


GapHook = Literal["patient-view", "encounter-start"]
DATA_CARD_PREFIX: Final = "data:"


def _is_data_card(card: IssuedCard) -> bool:
    """Cards about the data itself (record missing, incomplete): repeated on every call."""
    return card.rule_id.startswith(DATA_CARD_PREFIX)


# Context field holding the orders of each order-like hook (default draftOrders).
_DRAFTS_FIELD: Final = {
    "medication-prescribe": "medications",
    "medication-refill": "medications",
    "order-review": "orders",
}


def _new_allergies(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    single = context.get("allergyIntolerance")
    if isinstance(single, dict) and isinstance(single.get("resource"), dict):
        single = single["resource"]  # some published examples wrap it like a Bundle entry
    if isinstance(single, dict) and single.get("resourceType") == "AllergyIntolerance":
        return [single]
    return [
        r
        for r in _legacy_medications(context.get("allergyIntolerances"))
        if r.get("resourceType") == "AllergyIntolerance"
    ]


def _legacy_medications(value: object) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict) and isinstance(v.get("resourceType"), str)]
    return bundle_resources(value)


def _allergy_cards(chart: PatientChart, patient_id: str) -> list[IssuedCard]:
    cards: list[IssuedCard] = []
    for resource in chart.allergies:
        if resource.get("criticality") != "high":
            continue
        found = allergy_from_fhir(resource, may_see_restricted=False)
        if not isinstance(found, AllergyInput):
            continue
        reference = found.reference or found.id
        card = Card(
            uuid=new_card_uuid(),
            summary=f"High-criticality allergy: {found.label}"[:139],
            indicator="warning",
            detail=(
                "An active allergy or intolerance recorded with **high** criticality: exposure "
                "may cause a life-threatening reaction. Confirm it is still accurate and avoid "
                "the substance and cross-reacting drugs."
            ),
            source=Source(
                label="EHR clinical decision support",
                topic=Coding(
                    system=CARE_GAP_TOPIC_SYSTEM,
                    code="reminder:high-criticality-allergy",
                    display="Active high-criticality allergy",
                ),
            ),
        )
        cards.append(
            IssuedCard(
                card=card,
                rule_id="reminder:high-criticality-allergy",
                fingerprint=fingerprint_of(patient_id, "allergy", reference),
            )
        )
    return cards


# --------------------------------------------------------------------------- feedback


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    stored: int
    duplicates: int


async def store_feedback(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    *,
    client: CdsClientIdentity,
    definition: ServiceDefinition,
    feedback: FeedbackRequest,
) -> FeedbackOutcome:
    """Store every item (once per card, outcome and time) and count it per rule."""
    keys = [f"cds:card:{client.tenant}:{item.card}" for item in feedback.feedback]
    try:
        remembered: list[Any] = await redis.mget(keys)
    except (RedisError, OSError) as exc:
        logger.warning("cds_hooks.card_memory.unavailable", error=type(exc).__name__)
        remembered = [None] * len(keys)
    stored = 0
    async with sessionmaker() as session, session.begin():
        for item, memory in zip(feedback.feedback, remembered, strict=True):
            rule_id: str | None = None
            if memory is not None:
                text = memory.decode() if isinstance(memory, bytes) else str(memory)
                service, _, rule = text.partition("\x1f")
                rule_id = rule if service == definition.id and rule else None
            reason = item.override_reason
            statement = (
                pg_insert(CdsFeedback)
                .values(
                    tenant_id=client.tenant_id,
                    client_id=client.client_id,
                    service_id=definition.id,
                    card_uuid=item.card,
                    rule_id=rule_id,
                    outcome=item.outcome,
                    outcome_timestamp=item.outcome_timestamp,
                    accepted_suggestions=[s.id for s in item.accepted_suggestions or []],
                    override_reason=(
                        reason.reason.model_dump(by_alias=True, exclude_none=True)
                        if reason is not None and reason.reason is not None
                        else None
                    ),
                    user_comment=reason.user_comment if reason is not None else None,
                )
                .on_conflict_do_nothing()
                .returning(CdsFeedback.id)
            )
            inserted = (await session.execute(statement)).scalar_one_or_none()
            if inserted is not None:
                stored += 1
                CARD_FEEDBACK.labels(definition.id, rule_id or UNKNOWN_RULE, item.outcome).inc()
    return FeedbackOutcome(stored=stored, duplicates=len(feedback.feedback) - stored)
