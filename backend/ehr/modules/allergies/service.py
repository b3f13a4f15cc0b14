"""A patient's allergies and intolerances as FHIR AllergyIntolerances in the tenant's HAPI.

What is written is what the medication-safety engine reads (``ehr.modules.medication_safety``,
profile ``allergy_from_fhir``): ``patient`` (its search ``?patient=Patient/{id}``),
``clinicalStatus`` / ``verificationStatus`` (active and not refuted / entered-in-error counts),
``category`` (medication, or none, counts) and ``code`` (RxNorm / SNOMED CT codings; free text
cannot be matched: the answer says so with ``checkable_by_medication_safety: false``).

Rules (each refusal is a 4xx problem with a stable ``code``):

- ``patient`` is the path's patient (a body naming another: 422 ``patient_mismatch``); an
  AllergyIntolerance of another patient is not found (404). The patient is read first, through
  the patients module (compartment, break-glass).
- Substance: RxNorm (digits) or SNOMED CT (concept id with Verhoeff digit), or free text; one of
  the two is required (422 ``substance_required``); other systems 422 ``unknown_code_system``,
  malformed codes 422 ``invalid_code``. Reaction manifestations: SNOMED CT and/or text
  (``manifestation_required`` without either). Onset not in the future (``date_in_future``).
- Updates need ``If-Match`` (428 ``if_match_required``; stale: 412); entered-in-error is final
  (409 ``allergy_entered_in_error``) and is a status (no ``clinicalStatus``, FHIR ait-2), never a
  hard delete.
- recorder and asserter: the user (``urn:ehr:user`` identifier, username display);
  recordedDate: now.
"""

# Error class names say what happened in the domain's words (as in ehr.core.errors).

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, get_args

import structlog

from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.fhir import (
    Coding,
    FhirResourceNotFound,
    TenantFhirClient,
    codings,
    concept_text,
    reference_parts,
    status_code,
    version_id,
)
from ehr.modules import clinical_record
from ehr.modules.allergies.schemas import (
    Allergy,
    AllergyCategory,
    AllergyCreate,
    AllergyType,
    AllergyUpdate,
    ClinicalStatus,
    CodeIn,
    CodeOut,
    Criticality,
    Reaction,
    ReactionIn,
    Severity,
    VerificationStatus,
)
from ehr.modules.clinical_record import (
    InvalidCode,
    SortKey,
    UnknownCodeSystem,
    is_snomed_ct_concept,
    newest_first,
    newest_written_first,
)
from ehr.platform.auth.principal import Principal

__all__ = [
    "CLINICAL_STATUS_SYSTEM",
    "RXNORM_SYSTEM",
    "SNOMED_SYSTEM",
    "VERIFICATION_STATUS_SYSTEM",
    "AllergyEnteredInError",
    "AllergyService",
    "ManifestationRequired",
    "SubstanceRequired",
    "allergy_order",
    "check_allergy",
    "fill_resource",
    "sort_allergies",
    "to_allergy",
]

logger = structlog.get_logger(__name__)

CLINICAL_STATUS_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION_STATUS_SYSTEM: Final = (
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
)
RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED_SYSTEM: Final = clinical_record.SNOMED_SYSTEM
SUBSTANCE_SYSTEMS: Final = frozenset({RXNORM_SYSTEM, SNOMED_SYSTEM})
_RXCUI: Final = re.compile(r"^[1-9][0-9]{0,9}$")
# Bound on one list read (pages x page size).
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 10
_CLINICAL: Final = frozenset(get_args(ClinicalStatus))
_VERIFICATION: Final = frozenset(get_args(VerificationStatus))
_TYPES: Final = frozenset(get_args(AllergyType))
_CATEGORIES: Final = frozenset(get_args(AllergyCategory))
_CRITICALITIES: Final = frozenset(get_args(Criticality))
_SEVERITIES: Final = frozenset(get_args(Severity))
_FREE_TEXT_NOTE: Final = (
    "The substance is free text: medication safety checks cannot match it against orders."
)
_CATEGORY_NOTE: Final = "Not a medication allergy: medication safety checks do not use it."
_STALE: Final = "The allergy changed since the version given in If-Match"


class SubstanceRequired(RequestValidationFailed):
    """Neither a coded substance nor its text."""

    code = "substance_required"
    title = "A substance is required"


class ManifestationRequired(RequestValidationFailed):
    """A reaction without a manifestation (code or text)."""

    code = "manifestation_required"
    title = "A reaction needs a manifestation"


class AllergyEnteredInError(ConflictError):
    """The allergy was entered in error: it is final and cannot be updated."""

    code = "allergy_entered_in_error"
    title = "The allergy was entered in error"


def _check_substance(substance: CodeIn) -> None:
    if substance.system not in SUBSTANCE_SYSTEMS:
        raise UnknownCodeSystem(
            "A substance is coded in RxNorm or SNOMED CT (or given as text).",
            extra={"allowed_systems": sorted(SUBSTANCE_SYSTEMS)},
        )
    if substance.system == RXNORM_SYSTEM and not _RXCUI.match(substance.code):
        raise InvalidCode("The code is not an RxNorm concept id (digits).")
    if substance.system == SNOMED_SYSTEM and not is_snomed_ct_concept(substance.code):
        raise InvalidCode("The code is not a SNOMED CT concept id (digits, check digit).")


def check_allergy(
    payload: AllergyCreate | AllergyUpdate, *, patient_id: str, today: dt.date
) -> None:
    """The rules a create/update must pass beyond the schema (module doc)."""
    clinical_record.check_body_patient(payload.patient_id, patient_id)
    if payload.substance is None and payload.substance_text is None:
        raise SubstanceRequired("Give the substance as a code (RxNorm, SNOMED CT) or as text.")
    if payload.substance is not None:
        _check_substance(payload.substance)
    clinical_record.check_not_in_future("onset", payload.onset, today=today)
    for index, reaction in enumerate(payload.reactions):
        if reaction.manifestation is None and reaction.manifestation_text is None:
            raise ManifestationRequired(
                "Each reaction needs a manifestation (SNOMED CT code or text).",
                extra={"reaction": index},
            )
        coded = reaction.manifestation
        if coded is not None and coded.system != SNOMED_SYSTEM:
            raise UnknownCodeSystem(
                "A reaction's manifestation is coded in SNOMED CT.",
                extra={"reaction": index, "allowed_systems": [SNOMED_SYSTEM]},
            )
        if coded is not None and not is_snomed_ct_concept(coded.code):
            raise InvalidCode(
                "The manifestation is not a SNOMED CT concept id.", extra={"reaction": index}
            )


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _coding(code: CodeIn) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": code.system, "code": code.code}
    if code.display is not None:
        coding["display"] = code.display
    return coding


def _code_out(found: Sequence[Coding]) -> CodeOut | None:
    if not found:
        return None
    return CodeOut(system=found[0].system, code=found[0].code, display=found[0].display)


def _is_allergy_of(resource: Mapping[str, Any], patient_id: str) -> bool:
    patient = resource.get("patient")
    parts = reference_parts(patient.get("reference") if isinstance(patient, Mapping) else None)
    return parts is not None and (parts.resource_type, parts.resource_id) == (
        "Patient",
        patient_id,
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def to_allergy(resource: Mapping[str, Any], patient_id: str) -> Allergy:
    """The business view of an AllergyIntolerance."""
    code = resource.get("code")
    coded = codings(code, limit=1)
    raw_categories = resource.get("category")
    categories = [
        c for c in (raw_categories if isinstance(raw_categories, list) else []) if c in _CATEGORIES
    ]
    checkable = bool(coded) and (not categories or "medication" in categories)
    reactions: list[Reaction] = []
    for item in resource.get("reaction") or []:
        if not isinstance(item, Mapping):
            continue
        manifestations = item.get("manifestation")
        first = manifestations[0] if isinstance(manifestations, list) and manifestations else None
        severity = item.get("severity")
        reactions.append(
            Reaction(
                manifestation=_code_out(codings(first, limit=1)),
                manifestation_text=concept_text(first),
                severity=severity if severity in _SEVERITIES else None,
            )
        )
    notes = [
        str(n["text"])
        for n in resource.get("note") or []
        if isinstance(n, Mapping) and isinstance(n.get("text"), str)
    ]
    clinical = status_code(resource.get("clinicalStatus"))
    verification = status_code(resource.get("verificationStatus"))
    kind = resource.get("type")
    criticality = resource.get("criticality")
    return Allergy(
        id=str(resource.get("id", "")),
        version=version_id(resource),
        patient_id=patient_id,
        substance=_code_out(coded),
        substance_text=concept_text(code),
        checkable_by_medication_safety=checkable,
        medication_safety_note=None
        if checkable
        else (_FREE_TEXT_NOTE if not coded else _CATEGORY_NOTE),
        clinical_status=clinical if clinical in _CLINICAL else None,
        verification_status=verification if verification in _VERIFICATION else None,
        type=kind if kind in _TYPES else None,
        category=categories,
        criticality=criticality if criticality in _CRITICALITIES else None,
        onset=_str(resource.get("onsetDateTime")),
        reactions=reactions,
        recorded_date=_str(resource.get("recordedDate")),
        recorder=clinical_record.recorder_of(resource),
        note="\n\n".join(notes) or None,
    )


def allergy_order(resource: Mapping[str, Any]) -> SortKey:
    """The allergy list's order as a key (the list's paging position): active first (high
    criticality first within), then inactive/resolved, entered-in-error last; newest recorded
    first within each group; the id breaks ties."""
    if status_code(resource.get("verificationStatus")) == "entered-in-error":
        group: tuple[int, int] = (2, 0)
    else:
        active = 0 if status_code(resource.get("clinicalStatus")) == "active" else 1
        group = (active, 0 if resource.get("criticality") == "high" else 1)
    return (
        *group,
        *newest_first(resource.get("recordedDate")),
        *newest_written_first(resource),
        str(resource.get("id", "")),
    )


def sort_allergies(resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active first (high criticality first within), then inactive/resolved, entered-in-error
    last; newest recorded first within each group."""

    def key(resource: Mapping[str, Any]) -> tuple[int, int]:
        if status_code(resource.get("verificationStatus")) == "entered-in-error":
            return (2, 0)
        group = 0 if status_code(resource.get("clinicalStatus")) == "active" else 1
        return (group, 0 if resource.get("criticality") == "high" else 1)

    by_recorded = sorted(resources, key=lambda r: str(r.get("recordedDate") or ""), reverse=True)
    return sorted(by_recorded, key=key)


class AllergyService:
    """The allergy use cases for one tenant (the router has opened the patient's chart)."""

    def __init__(
        self,
        fhir: TenantFhirClient,
        *,
        principal: Principal,
    ) -> None:
        self._fhir = fhir
        self._principal = principal

    async def allergies_of(
        self,
        patient_id: str,
        *,
        clinical_status: Sequence[str] = (),
        include_entered_in_error: bool = False,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The patient's AllergyIntolerances, sorted (:func:`sort_allergies`), and whether the
        read was complete."""
        params: list[tuple[str, str]] = [("patient", f"Patient/{patient_id}")]
        if clinical_status:
            params.append(("clinical-status", ",".join(clinical_status)))
        if not include_entered_in_error:
            params.append(("verification-status:not", "entered-in-error"))
        found = await self._fhir.search_all(
            "AllergyIntolerance", params, page_size=_PAGE_SIZE, max_pages=_MAX_PAGES
        )
        mine = [r for r in found.matches if _is_allergy_of(r, patient_id)]
        return sort_allergies(mine), found.complete

    async def get(self, patient_id: str, allergy_id: str) -> dict[str, Any]:
        """The allergy ``allergy_id`` of the patient (404 if it is another patient's)."""
        resource = await self._fhir.read("AllergyIntolerance", allergy_id)
        if not _is_allergy_of(resource, patient_id):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return resource

    async def create(self, patient_id: str, payload: AllergyCreate) -> dict[str, Any]:
        """Record a new allergy or intolerance (rules: module doc)."""
        check_allergy(payload, patient_id=patient_id, today=_today())
        who = clinical_record.recorder_reference(self._principal)
        resource: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": f"Patient/{patient_id}"},
            "recordedDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "recorder": who,
            "asserter": who,
        }
        fill_resource(resource, payload)
        stored = await self._fhir.create(resource)
        logger.info("allergies.create.completed", resource_id=stored.get("id"))
        return stored

    async def update(
        self, patient_id: str, allergy_id: str, payload: AllergyUpdate, *, if_match: str | None
    ) -> dict[str, Any]:
        """Replace the allergy's state; ``if_match`` must name the current version."""
        if_match = clinical_record.require_if_match(if_match)
        check_allergy(payload, patient_id=patient_id, today=_today())
        current = await self.get(patient_id, allergy_id)
        if clinical_record.is_entered_in_error(current):
            raise AllergyEnteredInError("An entered-in-error allergy cannot be changed.")
        clinical_record.check_version(current, if_match, detail=_STALE)
        resource = dict(current)
        fill_resource(resource, payload)
        stored = await self._fhir.update(resource, if_match=if_match)
        logger.info("allergies.update.completed", resource_id=allergy_id)
        return stored

    async def mark_entered_in_error(
        self, patient_id: str, allergy_id: str, *, if_match: str | None
    ) -> dict[str, Any]:
        """Mark the allergy entered-in-error (idempotent). Without ``if_match`` the version
        just read is used, so a concurrent update still wins with 412."""
        current = await self.get(patient_id, allergy_id)
        stored, changed = await clinical_record.mark_verification_entered_in_error(
            self._fhir,
            current,
            if_match=if_match,
            verification_system=VERIFICATION_STATUS_SYSTEM,
            stale_detail=_STALE,
        )
        if changed:
            logger.info("allergies.entered_in_error.completed", resource_id=allergy_id)
        return stored


def fill_resource(resource: dict[str, Any], payload: AllergyCreate | AllergyUpdate) -> None:
    """Write the payload's fields into ``resource`` (absent optional fields are removed)."""
    code: dict[str, Any] = {}
    if payload.substance is not None:
        code["coding"] = [_coding(payload.substance)]
    if payload.substance_text is not None:
        code["text"] = payload.substance_text
    resource["code"] = code
    resource["clinicalStatus"] = _status(CLINICAL_STATUS_SYSTEM, payload.clinical_status)
    resource["verificationStatus"] = _status(
        VERIFICATION_STATUS_SYSTEM, payload.verification_status
    )
    optional: dict[str, Any] = {
        "type": payload.type,
        "category": list(dict.fromkeys(payload.category)) or None,
        "criticality": payload.criticality,
        "onsetDateTime": payload.onset.isoformat() if payload.onset is not None else None,
        "note": [{"text": payload.note}] if payload.note is not None else None,
        "reaction": [_reaction(r) for r in payload.reactions] or None,
    }
    for key in ("onsetAge", "onsetPeriod", "onsetRange", "onsetString"):
        resource.pop(key, None)
    for key, value in optional.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value


def _reaction(reaction: ReactionIn) -> dict[str, Any]:
    manifestation: dict[str, Any] = {}
    if reaction.manifestation is not None:
        manifestation["coding"] = [_coding(reaction.manifestation)]
    if reaction.manifestation_text is not None:
        manifestation["text"] = reaction.manifestation_text
    item: dict[str, Any] = {"manifestation": [manifestation]}
    if reaction.severity is not None:
        item["severity"] = reaction.severity
    return item


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
