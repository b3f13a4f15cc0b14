"""A patient's record as engine inputs: what counts, what is left out and why.

- **MedicationRequest**: ``on-hold`` counts as active (a suspended order is expected to resume
  and its interactions still matter); ``draft`` is not an order yet and
  ``completed``/``stopped``/``cancelled``/``entered-in-error``/``unknown`` are not active.
  Intent: ``proposal`` and ``option`` are skipped (suggestions nobody has decided on); ``plan``,
  ``order`` and its kinds (``original-order``, ``reflex-order``, ``filler-order``,
  ``instance-order``) count. ``doNotPerform: true`` is skipped (an order NOT to give it).
- **MedicationStatement**: skipped when ``effectivePeriod.end`` is in the past. A FHIR date
  without a time ends at the end of that day / month / year (``2025-03`` is still current during
  March 2025); a value we cannot parse does not exclude the statement.
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

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from ehr.fhir import (
    codings,
    concept_text,
    parse_fhir_date,
    period_of,
    reference_of,
    reference_parts,
    status_code,
)
from ehr.modules.medication_safety.dosing import dosage_from_fhir, weight_kg
from ehr.modules.medication_safety.issues import (
    SNOMED_SYSTEM,
    AllergyInput,
    Coding,
    MedicationInput,
    PatientContext,
)
from ehr.modules.medication_safety.knowledge import RouteCategory
from ehr.modules.medication_safety.record import (
    ACTIVE_REQUEST_STATUSES,
    ACTIVE_STATEMENT_STATUSES,
    PatientRecord,
)
from ehr.modules.medication_safety.schemas import MAX_CODINGS, SkipReason
from ehr.platform.auth.authorization import is_restricted

__all__ = [
    "NON_ORDER_INTENTS",
    "SNOMED_ROUTES",
    "CodingNamer",
    "PatientProfile",
    "Skipped",
    "allergy_from_fhir",
    "build_profile",
    "first_display",
    "medication_from_draft",
    "medication_from_request",
    "medication_from_statement",
    "patient_context",
    "period_has_ended",
]

NON_ORDER_INTENTS: Final = frozenset({"proposal", "option"})

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

# Names a list of codings (the RxNorm concept name of the first one the table resolves).
CodingNamer = Callable[[Sequence[Coding]], str | None]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A resource read from the record and left out of the check."""

    reference: str
    reason: SkipReason


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


def period_has_ended(end: object, now: dt.datetime) -> bool:
    """Whether a FHIR ``Period.end`` lies in the past (unparseable or absent: False)."""
    parsed = parse_fhir_date(end)
    return parsed is not None and parsed.has_passed(now)


def patient_context(
    patient: Mapping[str, Any], today: dt.date, weight: Mapping[str, Any] | None = None
) -> PatientContext:
    """Age (whole years, youngest possible for a partial birth date) and sex of a Patient, and
    the weight of its latest body-weight Observation (``weight``) in kg."""
    age: int | None = None
    parsed = parse_fhir_date(patient.get("birthDate"))
    if parsed is not None and parsed.moment is None:
        latest = parsed.last
        years = today.year - latest.year - ((today.month, today.day) < (latest.month, latest.day))
        age = years if years >= 0 else None
    gender = patient.get("gender")
    sex = gender if gender in ("female", "male", "other", "unknown") else None
    return PatientContext(age_years=age, sex=sex, weight_kg=weight_kg(weight))


def _codings(concept: object) -> list[Coding]:
    """The engine's codings of a ``CodeableConcept`` (at most :data:`MAX_CODINGS`)."""
    return [
        Coding(coding.system or "", coding.code, coding.display)
        for coding in codings(concept, limit=MAX_CODINGS)
    ]


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
    parts = reference_parts(target)
    if parts is None or parts.resource_type != "Medication":
        return None, display
    return medications.get(f"Medication/{parts.resource_id}"), display


def _medication_concept(
    resource: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Coding], str | None, str | None]:
    """Codings, free text and a display label of the medication an order/statement names."""
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        codings = _codings(concept)
        return codings, concept_text(concept), None
    medication, display = _referenced_medication(resource, medications)
    if medication is None:
        return [], display, display
    codings = _codings(medication.get("code"))
    if not codings:
        for ingredient in medication.get("ingredient") or []:
            if isinstance(ingredient, Mapping):
                codings += _codings(ingredient.get("itemCodeableConcept"))
        codings = codings[:MAX_CODINGS]
    return codings, concept_text(medication.get("code")) or display, display


def _route(resource: Mapping[str, Any]) -> RouteCategory | None:
    dosages = resource.get("dosageInstruction") or resource.get("dosage") or []
    first = dosages[0] if isinstance(dosages, list) and dosages else None
    if not isinstance(first, Mapping):
        return None
    for coding in _codings(first.get("route")):
        if coding.system == SNOMED_SYSTEM and coding.code in SNOMED_ROUTES:
            return SNOMED_ROUTES[coding.code]
    return None


def first_display(codings: Sequence[Coding]) -> str | None:
    return next((c.display for c in codings if c.display), None)


def _medication_input(
    resource: Mapping[str, Any],
    medications: Mapping[str, Mapping[str, Any]],
    name_of: CodingNamer | None,
) -> MedicationInput:
    reference = reference_of(resource)
    codings, text, display = _medication_concept(resource, medications)
    label = (
        text
        or first_display(codings)
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
        dosage=dosage_from_fhir(resource.get("dosageInstruction") or resource.get("dosage")),
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
    reference = reference_of(resource)
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
    reference = reference_of(resource)
    if resource.get("status") not in ACTIVE_STATEMENT_STATUSES:
        return Skipped(reference, "status-not-active")
    period = period_of(resource.get("effectivePeriod"))
    if period is not None and period.has_ended(now):
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
    reference = reference_of(resource)
    clinical = status_code(resource.get("clinicalStatus"))
    if clinical is not None and clinical != "active":
        return Skipped(reference, "clinical-status-not-active")
    verification = status_code(resource.get("verificationStatus"))
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
    text = concept_text(code)
    criticality = resource.get("criticality")
    return AllergyInput(
        id=reference,
        label=(
            text
            or first_display(codings)
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
            skipped.append(Skipped(reference_of(resource), "replaced-by-proposed"))
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
        context=patient_context(record.patient, now.astimezone(dt.UTC).date(), record.weight),
        active=tuple(active),
        allergies=tuple(allergies),
        skipped=tuple(skipped),
        complete=record.complete,
        used_break_glass=used_break_glass,
    )
