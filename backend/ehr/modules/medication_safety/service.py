"""Medication-safety use cases: checks, the knowledge base and its rules, the tenant's policy.

Checks run the in-process engine (:func:`~.engine.check`) on the compiled knowledge base and the
RxNorm table, under the caller tenant's display policy. A check is given either explicit lists
(:meth:`MedicationSafetyService.check`) or a patient whose active medications and allergies are
read from the tenant's FHIR partition (:meth:`MedicationSafetyService.check_patient`).

Reading a patient's record (all reads bounded: :data:`PAGE_SIZE` per page, at most
:data:`MAX_PAGES` pages per resource type; beyond that the profile says ``complete: false``)

- **MedicationRequest** ``?subject=Patient/{id}&status=active,on-hold`` (with the referenced
  Medication resources ``_include``-d). ``on-hold`` counts as active (a suspended order is
  expected to resume and its interactions still matter); ``draft`` is not an order yet and
  ``completed``/``stopped``/``cancelled``/``entered-in-error``/``unknown`` are not active.
  Intent: ``proposal`` and ``option`` are skipped (suggestions nobody has decided on); ``plan``,
  ``order`` and its kinds (``original-order``, ``reflex-order``, ``filler-order``,
  ``instance-order``) count. ``doNotPerform: true`` is skipped (an order NOT to give it).
- **MedicationStatement** ``?subject=Patient/{id}&status=active,intended,on-hold``; skipped when
  ``effectivePeriod.end`` is in the past. A FHIR date without a time ends at the end of that
  day / month / year (``2025-03`` is still current during March 2025); a value we cannot parse
  does not exclude the statement.
- **Medication codes**: ``medicationCodeableConcept``; or ``medicationReference`` to a contained
  Medication (``#id``) or to ``Medication/{id}`` (returned by ``_include``): its ``code``, else
  the ``itemCodeableConcept`` codes of its ingredients. A reference we cannot follow leaves the
  item with its display text only: the engine reports it ``not_checkable`` (never dropped).
  Route: the first dosage instruction's SNOMED CT route when it is one of
  :data:`SNOMED_ROUTES`; otherwise the engine parses the dose form from the RxNorm name.
- **AllergyIntolerance** ``?patient=Patient/{id}``: counts when ``clinicalStatus`` is
  ``active`` or absent and ``verificationStatus`` is not ``refuted``/``entered-in-error``
  (``unconfirmed`` counts: an unconfirmed penicillin allergy still warrants the alert); skipped
  when ``category`` is given and does not include ``medication`` (food, environment, biologic).
- **Patient**: age in whole years from ``birthDate`` (a partial date counts from its latest
  possible day, i.e. the youngest possible age) and ``gender``.
- Orders or statements named in ``replaces`` are left out of the active list.
- A restricted resource (confidentiality R/V) is used only with break-glass (the caller holds
  ``break_glass:assert`` and gave a reason); otherwise it is skipped as ``restricted`` so the UI
  can offer break-glass instead of silently missing an interaction.

Every resource read and left out is listed in the profile's ``skipped`` with the reason.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import anyio.to_thread
import structlog
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import MedicationSafetyPolicy
from ehr.core.errors import RequestValidationFailed
from ehr.fhir import TenantFhirClient
from ehr.modules.medication_safety.engine import (
    BUILTIN_RULE_OUTCOMES,
    CROSS_SENSITIVITY_OUTCOMES,
    AllergyInput,
    CheckResult,
    Coding,
    IssueCategory,
    MedicationInput,
    PatientContext,
    Policy,
    check,
)
from ehr.modules.medication_safety.kb_compiler import SEVERITY_RANK, CitationRef, KnowledgeBase
from ehr.modules.medication_safety.kb_sources import (
    CrossSensitivityLevel,
    Display,
    RouteCategory,
    Severity,
)
from ehr.modules.medication_safety.normalisation import RxNormTable
from ehr.modules.medication_safety.rendering import to_cds_card, to_detected_issue
from ehr.modules.medication_safety.schemas import (
    MAX_CODINGS,
    MAX_ISSUES,
    AllergyIn,
    CheckRequest,
    CheckResponse,
    CitationOut,
    ClearedCheckOut,
    ImplicatedItemOut,
    Include,
    IngredientOut,
    IssueOut,
    KnowledgeBaseCounts,
    KnowledgeBaseOut,
    MedicationIn,
    NotCheckableOut,
    PatientCheckRequest,
    PatientCheckResponse,
    PolicyIn,
    PolicyOut,
    ProfileSummary,
    RuleList,
    RuleOut,
    RxNormTableOut,
    SkippedResource,
    SkipReason,
    SourceFileOut,
    SourceList,
    UnresolvedCodeOut,
)
from ehr.modules.patients import PatientService
from ehr.platform.auth.authorization import is_restricted

__all__ = [
    "ACTIVE_REQUEST_STATUSES",
    "ACTIVE_STATEMENT_STATUSES",
    "MAX_PAGES",
    "NON_ORDER_INTENTS",
    "PAGE_SIZE",
    "RXNORM_ATTRIBUTION",
    "SNOMED_ROUTES",
    "CodingNamer",
    "LoadedKnowledge",
    "MedicationSafetyService",
    "PatientCheck",
    "PatientProfile",
    "PatientRecord",
    "Skipped",
    "TenantPolicy",
    "allergy_from_fhir",
    "build_profile",
    "default_policy",
    "knowledge_base_summary",
    "known_rule_ids",
    "list_rules",
    "load_policy",
    "medication_from_draft",
    "medication_from_request",
    "medication_from_statement",
    "patient_context",
    "period_has_ended",
    "policy_audit_details",
    "read_patient_record",
    "save_policy",
]

logger = structlog.get_logger(__name__)

PAGE_SIZE: Final = 100
MAX_PAGES: Final = 3

ACTIVE_REQUEST_STATUSES: Final = frozenset({"active", "on-hold"})
ACTIVE_STATEMENT_STATUSES: Final = frozenset({"active", "intended", "on-hold"})
NON_ORDER_INTENTS: Final = frozenset({"proposal", "option"})

SNOMED: Final = "http://snomed.info/sct"
# SNOMED CT route of administration → route category (unambiguous ones only).
SNOMED_ROUTES: Final[Mapping[str, RouteCategory]] = MappingProxyType(
    {
        "26643006": RouteCategory.SYSTEMIC,  # oral
        "47625008": RouteCategory.SYSTEMIC,  # intravenous
        "78421000": RouteCategory.SYSTEMIC,  # intramuscular
        "34206005": RouteCategory.SYSTEMIC,  # subcutaneous
        "45890007": RouteCategory.SYSTEMIC,  # transdermal
        "37839007": RouteCategory.SYSTEMIC,  # sublingual
        "54471007": RouteCategory.SYSTEMIC,  # buccal
        "54485002": RouteCategory.OPHTHALMIC,  # ophthalmic
        "10547007": RouteCategory.OTIC,  # otic
        "46713006": RouteCategory.NASAL,  # nasal
        "6064005": RouteCategory.TOPICAL,  # topical
    }
)

RXNORM_ATTRIBUTION: Final = (
    "This product uses publicly available data courtesy of the U.S. National Library of "
    "Medicine (NLM), National Institutes of Health, Department of Health and Human Services; "
    "NLM is not responsible for the product and does not endorse or recommend this or any "
    "other product."
)

_FHIR_DATETIME: Final = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})(?P<time>T.+)?)?)?$"
)
_DISPLAYS: Final = frozenset(d.value for d in Display)
# Names a list of codings (the RxNorm concept name of the first one the table resolves).
CodingNamer = Callable[[Sequence[Coding]], str | None]

_MEDICATION_REFERENCE: Final = re.compile(
    r"^(?:.*/)?Medication/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$"
)


# --------------------------------------------------------------------------- knowledge


@dataclass(frozen=True, slots=True)
class LoadedKnowledge:
    """The compiled knowledge base and the RxNorm table, with when this process compiled them."""

    kb: KnowledgeBase
    resolver: RxNormTable
    compiled_at: dt.datetime | None = None


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """The policy a tenant's checks run under; ``updated_*`` are None for the default."""

    policy: Policy
    is_default: bool = True
    updated_by: str | None = None
    updated_at: dt.datetime | None = None

    def to_out(self) -> PolicyOut:
        return PolicyOut(
            interruptive_severities=sorted(self.policy.interruptive, key=SEVERITY_RANK.__getitem__),
            rule_display=dict(sorted(self.policy.rule_display.items())),
            is_default=self.is_default,
            updated_by=self.updated_by,
            updated_at=self.updated_at,
        )


def default_policy() -> TenantPolicy:
    return TenantPolicy(Policy())


def _policy_of(row: MedicationSafetyPolicy) -> TenantPolicy:
    severities = frozenset(Severity(s) for s in row.interruptive_severities)
    displays = {
        str(rule): Display(value)
        for rule, value in (row.rule_display or {}).items()
        if value in _DISPLAYS
    }
    return TenantPolicy(
        Policy(interruptive=severities, rule_display=MappingProxyType(displays)),
        is_default=False,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def load_policy(session: AsyncSession, tenant_id: uuid.UUID) -> TenantPolicy:
    """The tenant's saved policy, or the default (``Policy()``) when it has none."""
    row = await session.scalar(
        select(MedicationSafetyPolicy).where(MedicationSafetyPolicy.tenant_id == tenant_id)
    )
    return default_policy() if row is None else _policy_of(row)


def known_rule_ids(kb: KnowledgeBase) -> frozenset[str]:
    """Every rule id an issue can carry with this knowledge base."""
    return frozenset(
        {
            *kb.interactions,
            *kb.cross_sensitivities,
            *(dup.rule_id for dup in kb.duplicate_classes.values()),
            *BUILTIN_RULE_OUTCOMES,
        }
    )


async def save_policy(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    payload: PolicyIn,
    *,
    kb: KnowledgeBase,
    updated_by: str,
) -> TenantPolicy:
    """Validate ``payload`` against ``kb`` (unknown rule id → 422) and store it (upsert).

    Flushes only: the request owns the transaction.
    """
    unknown = sorted(set(payload.rule_display) - known_rule_ids(kb))
    if unknown:
        raise RequestValidationFailed(
            f"Unknown rule id(s) in rule_display: {', '.join(unknown[:20])}",
            extra={"unknown_rule_ids": unknown},
        )
    severities = sorted({s.value for s in payload.interruptive_severities})
    displays = {rule: display.value for rule, display in sorted(payload.rule_display.items())}
    values = {
        "interruptive_severities": severities,
        "rule_display": displays,
        "updated_by": updated_by,
        "updated_at": func.now(),
    }
    statement = (
        pg_insert(MedicationSafetyPolicy)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[MedicationSafetyPolicy.tenant_id], set_=values)
        .returning(MedicationSafetyPolicy)
        .execution_options(populate_existing=True)
    )
    row = (await session.scalars(statement)).one()
    return _policy_of(row)


# --------------------------------------------------------------------------- FHIR → inputs


@dataclass(frozen=True, slots=True)
class Skipped:
    """A resource read from the record and left out of the check."""

    reference: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """What was read from the FHIR server for one patient (raw resources)."""

    patient: Mapping[str, Any]
    requests: Sequence[Mapping[str, Any]] = ()
    statements: Sequence[Mapping[str, Any]] = ()
    allergies: Sequence[Mapping[str, Any]] = ()
    # "Medication/{id}" → the Medication resources the searches included.
    medications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    complete: bool = True


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """The engine inputs built from a :class:`PatientRecord`."""

    patient_id: str
    context: PatientContext
    active: tuple[MedicationInput, ...]
    allergies: tuple[AllergyInput, ...]
    skipped: tuple[Skipped, ...]
    complete: bool
    used_break_glass: bool


def _parse_fhir_date(value: str) -> tuple[dt.date, dt.date] | dt.datetime | None:
    """A FHIR date/dateTime: an aware datetime, or the (first, last) day a partial date covers."""
    match = _FHIR_DATETIME.match(value.strip())
    if match is None:
        return None
    try:
        year = int(match["year"])
        if match["time"]:
            parsed = dt.datetime.fromisoformat(value.strip())
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
        if match["day"]:
            day = dt.date(year, int(match["month"]), int(match["day"]))
            return day, day
        if match["month"]:
            month = int(match["month"])
            last = calendar.monthrange(year, month)[1]
            return dt.date(year, month, 1), dt.date(year, month, last)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    except ValueError:
        return None


def period_has_ended(end: object, now: dt.datetime) -> bool:
    """Whether a FHIR ``Period.end`` lies in the past (unparseable or absent: False)."""
    if not isinstance(end, str):
        return False
    parsed = _parse_fhir_date(end)
    if parsed is None:
        return False
    if isinstance(parsed, dt.datetime):
        return parsed < now
    return parsed[1] < now.astimezone(dt.UTC).date()


def patient_context(patient: Mapping[str, Any], today: dt.date) -> PatientContext:
    """Age (whole years, youngest possible for a partial birth date) and sex of a Patient."""
    age: int | None = None
    birth = patient.get("birthDate")
    parsed = _parse_fhir_date(birth) if isinstance(birth, str) else None
    if parsed is not None and not isinstance(parsed, dt.datetime):
        latest = parsed[1]
        years = today.year - latest.year - ((today.month, today.day) < (latest.month, latest.day))
        age = years if years >= 0 else None
    gender = patient.get("gender")
    sex = gender if gender in ("female", "male", "other", "unknown") else None
    return PatientContext(age_years=age, sex=sex)


def _reference_of(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _codings(concept: object) -> list[Coding]:
    if not isinstance(concept, Mapping):
        return []
    found: list[Coding] = []
    for coding in concept.get("coding") or []:
        if not isinstance(coding, Mapping):
            continue
        code = coding.get("code")
        if not isinstance(code, str) or not code.strip():
            continue
        system = coding.get("system")
        display = coding.get("display")
        found.append(
            Coding(
                system if isinstance(system, str) else "",
                code.strip(),
                display if isinstance(display, str) else None,
            )
        )
        if len(found) >= MAX_CODINGS:
            break
    return found


def _text(concept: object) -> str | None:
    if isinstance(concept, Mapping):
        text = concept.get("text")
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _status_code(concept: object) -> str | None:
    codings = _codings(concept)
    return codings[0].code if codings else None


def _referenced_medication(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The Medication ``medicationReference`` points at (contained or included), and its
    display text."""
    ref = resource.get("medicationReference")
    if not isinstance(ref, Mapping):
        return None, None
    display = ref.get("display") if isinstance(ref.get("display"), str) else None
    target = ref.get("reference")
    if not isinstance(target, str):
        return None, display
    if target.startswith("#"):
        for contained in resource.get("contained") or []:
            if (
                isinstance(contained, Mapping)
                and contained.get("resourceType") == "Medication"
                and contained.get("id") == target[1:]
            ):
                return contained, display
        return None, display
    match = _MEDICATION_REFERENCE.match(target)
    if match is None:
        return None, display
    return medications.get(f"Medication/{match[1]}"), display


def _medication_concept(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Coding], str | None, str | None]:
    """Codings, free text and a display label of the medication an order/statement names."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        codings = _codings(concept)
        return codings, _text(concept), None
    medication, display = _referenced_medication(resource, medications)
    if medication is None:
        return [], display, display
    codings = _codings(medication.get("code"))
    if not codings:
        for ingredient in medication.get("ingredient") or []:
            if isinstance(ingredient, Mapping):
                codings += _codings(ingredient.get("itemCodeableConcept"))
        codings = codings[:MAX_CODINGS]
    return codings, _text(medication.get("code")) or display, display


def _route(resource: Mapping[str, Any]) -> RouteCategory | None:
    dosages = resource.get("dosageInstruction") or resource.get("dosage") or []
    first = dosages[0] if isinstance(dosages, list) and dosages else None
    if not isinstance(first, Mapping):
        return None
    for coding in _codings(first.get("route")):
        if coding.system == SNOMED and coding.code in SNOMED_ROUTES:
            return SNOMED_ROUTES[coding.code]
    return None


def _first_display(codings: Sequence[Coding]) -> str | None:
    return next((c.display for c in codings if c.display), None)


def _medication_input(
    resource: Mapping[str, Any],
    medications: Mapping[str, Mapping[str, Any]],
    name_of: CodingNamer | None,
) -> MedicationInput:
    reference = _reference_of(resource)
    codings, text, display = _medication_concept(resource, medications)
    label = (
        text
        or _first_display(codings)
        or (name_of(codings) if name_of is not None else None)
        or display
        or reference
    )
    return MedicationInput(
        id=reference,
        label=label,
        codings=tuple(codings),
        text=text,
        route=_route(resource),
        reference=reference,
    )


def medication_from_request(
    resource: Mapping[str, Any],
    medications: Mapping[str, Mapping[str, Any]],
    *,
    may_see_restricted: bool,
    name_of: CodingNamer | None = None,
) -> MedicationInput | Skipped:
    """A MedicationRequest as an active medication, or why it is left out (module doc).

    The label: the concept's text, a coding's display, ``name_of(codings)`` (the RxNorm name),
    the reference's display, else the reference itself."""
    reference = _reference_of(resource)
    if resource.get("status") not in ACTIVE_REQUEST_STATUSES:
        return Skipped(reference, "status-not-active")
    if resource.get("intent") in NON_ORDER_INTENTS:
        return Skipped(reference, "intent-not-an-order")
    if resource.get("doNotPerform") is True:
        return Skipped(reference, "do-not-perform")
    if is_restricted(resource) and not may_see_restricted:
        return Skipped(reference, "restricted")
    return _medication_input(resource, medications, name_of)


def medication_from_draft(
    resource: Mapping[str, Any],
    medications: Mapping[str, Mapping[str, Any]],
    *,
    name_of: CodingNamer | None = None,
) -> MedicationInput:
    """A proposed order (e.g. a CDS Hooks draft MedicationRequest) as an engine input, whatever
    its status: the caller decided it is being ordered now. Same codes, label and route rules as
    :func:`medication_from_request`."""
    return _medication_input(resource, medications, name_of)


def medication_from_statement(
    resource: Mapping[str, Any],
    medications: Mapping[str, Mapping[str, Any]],
    *,
    now: dt.datetime,
    may_see_restricted: bool,
    name_of: CodingNamer | None = None,
) -> MedicationInput | Skipped:
    """A MedicationStatement as an active medication, or why it is left out (module doc)."""
    reference = _reference_of(resource)
    if resource.get("status") not in ACTIVE_STATEMENT_STATUSES:
        return Skipped(reference, "status-not-active")
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping) and period_has_ended(period.get("end"), now):
        return Skipped(reference, "effective-period-ended")
    if is_restricted(resource) and not may_see_restricted:
        return Skipped(reference, "restricted")
    return _medication_input(resource, medications, name_of)


def allergy_from_fhir(
    resource: Mapping[str, Any],
    *,
    may_see_restricted: bool,
    name_of: CodingNamer | None = None,
) -> AllergyInput | Skipped:
    """An AllergyIntolerance as an allergy to check, or why it is left out (module doc)."""
    reference = _reference_of(resource)
    clinical = _status_code(resource.get("clinicalStatus"))
    if clinical is not None and clinical != "active":
        return Skipped(reference, "clinical-status-not-active")
    verification = _status_code(resource.get("verificationStatus"))
    if verification == "refuted":
        return Skipped(reference, "verification-refuted")
    if verification == "entered-in-error":
        return Skipped(reference, "verification-entered-in-error")
    categories = resource.get("category")
    if isinstance(categories, list) and categories and "medication" not in categories:
        return Skipped(reference, "not-a-medication-allergy")
    if is_restricted(resource) and not may_see_restricted:
        return Skipped(reference, "restricted")
    code = resource.get("code")
    codings = _codings(code)
    text = _text(code)
    criticality = resource.get("criticality")
    return AllergyInput(
        id=reference,
        label=(
            text
            or _first_display(codings)
            or (name_of(codings) if name_of is not None else None)
            or reference
        ),
        codings=tuple(codings),
        text=text,
        criticality=criticality if criticality in ("low", "high", "unable-to-assess") else None,
        reference=reference,
    )


def build_profile(
    record: PatientRecord,
    *,
    replaces: Iterable[str] = (),
    now: dt.datetime,
    may_see_restricted: bool,
    name_of: CodingNamer | None = None,
) -> PatientProfile:
    """The engine inputs for ``record`` (see the module doc for what counts)."""
    replaced = frozenset(replaces)
    active: list[MedicationInput] = []
    allergies: list[AllergyInput] = []
    skipped: list[Skipped] = []
    used_break_glass = False

    def keep_medication(resource: Mapping[str, Any], found: MedicationInput | Skipped) -> None:
        nonlocal used_break_glass
        if isinstance(found, Skipped):
            skipped.append(found)
        elif found.reference in replaced:
            skipped.append(Skipped(_reference_of(resource), "replaced-by-proposed"))
        else:
            used_break_glass |= is_restricted(resource)
            active.append(found)

    for resource in record.requests:
        keep_medication(
            resource,
            medication_from_request(
                resource,
                record.medications,
                may_see_restricted=may_see_restricted,
                name_of=name_of,
            ),
        )
    for resource in record.statements:
        keep_medication(
            resource,
            medication_from_statement(
                resource,
                record.medications,
                now=now,
                may_see_restricted=may_see_restricted,
                name_of=name_of,
            ),
        )
    for resource in record.allergies:
        found = allergy_from_fhir(resource, may_see_restricted=may_see_restricted, name_of=name_of)
        if isinstance(found, Skipped):
            skipped.append(found)
        else:
            used_break_glass |= is_restricted(resource)
            allergies.append(found)
    return PatientProfile(
        patient_id=str(record.patient.get("id", "")),
        context=patient_context(record.patient, now.astimezone(dt.UTC).date()),
        active=tuple(active),
        allergies=tuple(allergies),
        skipped=tuple(skipped),
        complete=record.complete,
        used_break_glass=used_break_glass,
    )


# --------------------------------------------------------------------------- reading the record


@dataclass(slots=True)
class _Found:
    matches: list[dict[str, Any]] = field(default_factory=list)
    included: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True


async def _search_all(
    fhir: TenantFhirClient, resource_type: str, params: list[tuple[str, str]]
) -> _Found:
    """Matches of a search (and the resources it included), at most :data:`MAX_PAGES` pages."""
    found = _Found()
    bundle: dict[str, Any] | None = await fhir.search(
        resource_type, [*params, ("_count", str(PAGE_SIZE))]
    )
    pages = 0
    while bundle is not None:
        pages += 1
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if not isinstance(resource, dict):
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            if resource.get("resourceType") == resource_type and mode == "match":
                found.matches.append(resource)
            elif isinstance(resource.get("id"), str):
                found.included[_reference_of(resource)] = resource
        if pages >= MAX_PAGES:
            found.complete = not _has_next(bundle)
            break
        bundle = await fhir.next_page(bundle)
    return found


def _has_next(bundle: Mapping[str, Any]) -> bool:
    return any(
        isinstance(link, Mapping) and link.get("relation") == "next"
        for link in bundle.get("link") or []
    )


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def _search_concurrently(
    fhir: TenantFhirClient, subject: str
) -> tuple[_Found, _Found, _Found]:
    async with asyncio.TaskGroup() as group:
        requests = group.create_task(
            _search_all(
                fhir,
                "MedicationRequest",
                [
                    ("subject", subject),
                    ("status", ",".join(sorted(ACTIVE_REQUEST_STATUSES))),
                    ("_include", "MedicationRequest:medication"),
                ],
            )
        )
        statements = group.create_task(
            _search_all(
                fhir,
                "MedicationStatement",
                [
                    ("subject", subject),
                    ("status", ",".join(sorted(ACTIVE_STATEMENT_STATUSES))),
                    ("_include", "MedicationStatement:medication"),
                ],
            )
        )
        allergies = group.create_task(
            _search_all(fhir, "AllergyIntolerance", [("patient", subject)])
        )
    return requests.result(), statements.result(), allergies.result()


async def read_patient_record(fhir: TenantFhirClient, patient: Mapping[str, Any]) -> PatientRecord:
    """The patient's orders, statements, allergies and referenced Medications (bounded).

    The three searches run concurrently; if one fails the others are cancelled and its error
    (an :mod:`ehr.fhir.errors` error) is raised as itself.
    """
    subject = f"Patient/{patient['id']}"
    try:
        found = await _search_concurrently(fhir, subject)
    except ExceptionGroup as failed:
        raise _first_error(failed) from None
    medications = {
        ref: resource
        for part in found
        for ref, resource in part.included.items()
        if resource.get("resourceType") == "Medication"
    }
    return PatientRecord(
        patient=patient,
        requests=found[0].matches,
        statements=found[1].matches,
        allergies=found[2].matches,
        medications=medications,
        complete=all(part.complete for part in found),
    )


# --------------------------------------------------------------------------- answers


def _citations(citations: Iterable[CitationRef]) -> list[CitationOut]:
    return [CitationOut(id=c.id, text=c.text, url=c.url) for c in citations]


def _answer(
    result: CheckResult, include: Sequence[Include], *, patient_ref: str | None = None
) -> dict[str, Any]:
    """The fields of a :class:`CheckResponse` for ``result``: at most :data:`MAX_ISSUES` issues
    (the most severe; the engine orders them so), the rest counted in ``issues_omitted``."""
    shown = result.issues[:MAX_ISSUES]
    fields: dict[str, Any] = {
        "kb_version": result.kb_version,
        "interruptive": result.interruptive,
        "issues_omitted": len(result.issues) - len(shown),
        "issues": [
            IssueOut(
                category=issue.category,
                rule_id=issue.rule_id,
                severity=issue.severity,
                display=issue.display,
                kb_display=issue.kb_display,
                title=issue.title,
                implicated=[
                    ImplicatedItemOut(
                        kind=item.kind,
                        role=item.role,
                        id=item.id,
                        label=item.label,
                        reference=item.reference,
                        ingredients=[
                            IngredientOut(rxcui=i.rxcui, name=i.name) for i in item.ingredients
                        ],
                        class_id=item.class_id,
                        class_label=item.class_label,
                    )
                    for item in issue.implicated
                ],
                mechanism=issue.mechanism,
                consequence=issue.consequence,
                management=issue.management,
                note=issue.note,
                citations=_citations(issue.citations),
                source_list=issue.source_list,
            )
            for issue in shown
        ],
        "unresolved": [
            UnresolvedCodeOut(
                item_id=u.item_id,
                kind=u.kind,
                system=u.system,
                code=u.code,
                display=u.display,
                reason=u.reason,
            )
            for u in result.unresolved
        ],
        "not_checkable": [
            NotCheckableOut(item_id=u.item_id, kind=u.kind, label=u.label, reason=u.reason)
            for u in result.not_checkable
        ],
        "cleared": [
            ClearedCheckOut(
                rule_id=c.rule_id,
                medication_id=c.medication_id,
                allergy_id=c.allergy_id,
                rationale=c.rationale,
                citations=_citations(c.citations),
            )
            for c in result.cleared
        ],
    }
    if "detected-issue" in include:
        identified = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        fields["detected_issues"] = [
            to_detected_issue(issue, patient_ref, identified=identified) for issue in shown
        ]
    if "cds-card" in include:
        fields["cds_cards"] = [to_cds_card(issue, kb_version=result.kb_version) for issue in shown]
    return fields


def _label(item: MedicationIn | AllergyIn, codings: Sequence[Coding], name_of: CodingNamer) -> str:
    """The caller's label, else its text, a coding's display, the RxNorm name, ``system|code``."""
    if item.label:
        return item.label
    if item.text:
        return item.text
    named = _first_display(codings) or name_of(codings)
    if named:
        return named
    first = codings[0]  # the schema requires a coding when there is no text
    return f"{first.system}|{first.code}"


def _medications(
    items: Sequence[MedicationIn], prefix: str, name_of: CodingNamer
) -> list[MedicationInput]:
    inputs: list[MedicationInput] = []
    for position, item in enumerate(items, start=1):
        codings = tuple(Coding(c.system, c.code, c.display) for c in item.codings)
        inputs.append(
            MedicationInput(
                id=item.id or f"{prefix}-{position}",
                label=_label(item, codings, name_of),
                codings=codings,
                text=item.text,
                route=item.route,
            )
        )
    return inputs


def _allergies(items: Sequence[AllergyIn], name_of: CodingNamer) -> list[AllergyInput]:
    inputs: list[AllergyInput] = []
    for position, item in enumerate(items, start=1):
        codings = tuple(Coding(c.system, c.code, c.display) for c in item.codings)
        inputs.append(
            AllergyInput(
                id=item.id or f"allergy-{position}",
                label=_label(item, codings, name_of),
                codings=codings,
                text=item.text,
                criticality=item.criticality,
            )
        )
    return inputs


# --------------------------------------------------------------------------- use cases


@dataclass(frozen=True, slots=True)
class PatientCheck:
    """A patient check's answer and whether restricted resources were opened by break-glass."""

    response: PatientCheckResponse
    used_break_glass: bool


class MedicationSafetyService:
    """The medication-safety checks for one tenant, under its policy."""

    def __init__(
        self,
        knowledge: LoadedKnowledge,
        *,
        fhir: TenantFhirClient,
        patients: PatientService,
        policy: TenantPolicy,
    ) -> None:
        self._knowledge = knowledge
        self._fhir = fhir
        self._patients = patients
        self._policy = policy

    def _name_of(self, codings: Sequence[Coding]) -> str | None:
        """The RxNorm name of the first coding the table resolves (for labels)."""
        for coding in codings:
            resolution = self._knowledge.resolver.resolve(coding.system, coding.code)
            if resolution is not None:
                return resolution.name
        return None

    def _run(
        self,
        proposed: Sequence[MedicationInput],
        active: Sequence[MedicationInput],
        allergies: Sequence[AllergyInput],
        context: PatientContext | None,
    ) -> CheckResult:
        return check(
            proposed,
            active,
            allergies,
            context,
            kb=self._knowledge.kb,
            resolver=self._knowledge.resolver,
            policy=self._policy.policy,
        )

    def check(self, request: CheckRequest, include: Sequence[Include] = ()) -> CheckResponse:
        """Check explicit lists (no FHIR access)."""
        context = (
            PatientContext(age_years=request.patient.age_years, sex=request.patient.sex)
            if request.patient is not None
            else None
        )
        result = self._run(
            _medications(request.proposed, "proposed", self._name_of),
            _medications(request.active, "active", self._name_of),
            _allergies(request.allergies, self._name_of),
            context,
        )
        return CheckResponse(**_answer(result, include))

    async def read_patient(self, patient_id: str) -> dict[str, Any]:
        """The Patient (404 if unknown in this tenant or outside the caller's compartment)."""
        return await self._patients.get(patient_id)

    async def check_patient(
        self,
        patient: Mapping[str, Any],
        request: PatientCheckRequest,
        include: Sequence[Include] = (),
        *,
        may_see_restricted: bool,
    ) -> PatientCheck:
        """Check ``request.proposed`` against the patient's record read from FHIR."""
        record = await read_patient_record(self._fhir, patient)
        profile = build_profile(
            record,
            replaces=request.replaces,
            now=dt.datetime.now(dt.UTC),
            may_see_restricted=may_see_restricted,
            name_of=self._name_of,
        )
        # The engine is CPU work growing with the record: off the event loop.
        result = await anyio.to_thread.run_sync(
            self._run,
            _medications(request.proposed, "proposed", self._name_of),
            profile.active,
            profile.allergies,
            profile.context,
        )
        logger.info(
            "medication_safety.patient_check.completed",
            tenant=self._fhir.tenant,
            resource_type="Patient",
            resource_id=profile.patient_id,
            issues=len(result.issues),
            complete=profile.complete,
        )
        summary = ProfileSummary(
            patient_id=profile.patient_id,
            medications_considered=len(profile.active),
            allergies_considered=len(profile.allergies),
            skipped=[
                SkippedResource(reference=s.reference, reason=s.reason) for s in profile.skipped
            ],
            complete=profile.complete,
            age_years=profile.context.age_years,
            sex=profile.context.sex,
        )
        response = PatientCheckResponse(
            **_answer(result, include, patient_ref=f"Patient/{profile.patient_id}"),
            profile=summary,
        )
        return PatientCheck(response, profile.used_break_glass)


# --------------------------------------------------------------------------- knowledge base


def knowledge_base_summary(knowledge: LoadedKnowledge) -> KnowledgeBaseOut:
    """Version, provenance and counts of the knowledge base and the RxNorm table."""
    kb, table = knowledge.kb, knowledge.resolver
    interactions = list(kb.interactions.values())
    release = table.release
    label = release.get("rxnorm_release") or release.get("release")
    return KnowledgeBaseOut(
        version=kb.version,
        release=kb.release,
        content_hash=kb.content_hash,
        compiled_at=knowledge.compiled_at,
        sources=[SourceFileOut(file=s.name, sha256=s.sha256) for s in kb.sources],
        counts=KnowledgeBaseCounts(
            ingredients=len(kb.ingredients),
            classes=len(kb.classes),
            citations=len(kb.citations),
            interactions=len(interactions),
            interactions_by_severity=_counted(
                (r.severity.value for r in interactions), [s.value for s in Severity]
            ),
            interactions_by_source_list=_counted((r.source_list for r in interactions), []),
            allergen_groups=len(kb.allergen_groups),
            cross_sensitivities_by_level=_counted(
                (c.level.value for c in kb.cross_sensitivities.values()),
                [level.value for level in CrossSensitivityLevel],
            ),
            duplicate_classes=len(kb.duplicate_classes),
        ),
        rxnorm=RxNormTableOut(
            kind=str(release.get("kind") or "unknown"),
            release=str(label) if label else None,
            concepts=len(table),
            ndc_codes=table.ndc_count,
            attribution=RXNORM_ATTRIBUTION,
        ),
    )


def _counted(values: Iterable[str], order: Sequence[str]) -> dict[str, int]:
    counts = Counter(values)
    keys = [*order, *sorted(k for k in counts if k not in order)]
    return {key: counts.get(key, 0) for key in keys}


def _all_rules(kb: KnowledgeBase) -> list[RuleOut]:
    rules: list[RuleOut] = [
        RuleOut(
            id=rule.id,
            category=IssueCategory.DRUG_DRUG,
            severity=rule.severity,
            display=rule.display,
            sides=[rule.a.label, rule.b.label],
            source_list=rule.source_list,
            citations=_citations(rule.citations),
        )
        for rule in kb.interactions.values()
    ]
    for cross in kb.cross_sensitivities.values():
        outcome = CROSS_SENSITIVITY_OUTCOMES.get(cross.level)
        rules.append(
            RuleOut(
                id=cross.id,
                category=IssueCategory.DRUG_ALLERGY,
                severity=outcome[0] if outcome else None,
                display=outcome[1] if outcome else None,
                level=cross.level,
                sides=[cross.from_label, cross.target_label],
                citations=_citations(cross.citations),
            )
        )
    for dup in kb.duplicate_classes.values():
        rules.append(
            RuleOut(
                id=dup.rule_id,
                category=IssueCategory.DUPLICATE_THERAPY,
                severity=dup.severity,
                display=dup.display,
                sides=[dup.label],
                citations=_citations(dup.citations),
            )
        )
    builtin_sides = {
        IssueCategory.DRUG_ALLERGY: ["proposed medication", "allergy"],
        IssueCategory.DUPLICATE_THERAPY: ["proposed medication", "other medication"],
    }
    for rule_id, (category, severity, display) in BUILTIN_RULE_OUTCOMES.items():
        rules.append(
            RuleOut(
                id=rule_id,
                category=category,
                severity=severity,
                display=display,
                sides=builtin_sides.get(category, []),
                builtin=True,
                citations=[],
            )
        )
    rules.sort(key=lambda r: r.id)
    return rules


def list_rules(
    kb: KnowledgeBase,
    *,
    category: IssueCategory | None = None,
    severity: Severity | None = None,
    source_list: SourceList | None = None,
) -> RuleList:
    """Every rule of ``kb`` (and the engine's own), filtered; sorted by id."""
    items = [
        rule
        for rule in _all_rules(kb)
        if (category is None or rule.category == category)
        and (severity is None or rule.severity == severity)
        and (source_list is None or rule.source_list == source_list)
    ]
    return RuleList(kb_version=kb.version, total=len(items), items=items)


def policy_audit_details(before: TenantPolicy, after: TenantPolicy) -> dict[str, Any]:
    """What a policy change recorded on the audit trail carries (codes only)."""
    return {
        "interruptive_severities": [s.value for s in after.to_out().interruptive_severities],
        "rule_display": {k: v.value for k, v in after.to_out().rule_display.items()},
        "previous": {
            "default": before.is_default,
            "interruptive_severities": [s.value for s in before.to_out().interruptive_severities],
            "rule_display": {k: v.value for k, v in before.to_out().rule_display.items()},
        },
    }
