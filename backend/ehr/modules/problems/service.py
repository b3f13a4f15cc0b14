"""The problem list as FHIR Conditions (category ``problem-list-item``) in the tenant's HAPI.

Rules (each refusal is a 4xx problem with a stable ``code``):

- The Condition's subject is the path's patient. A body naming another patient is refused
  (422 ``patient_mismatch``); a Condition of another patient (or not on the problem list) is not
  found (404), as if missing. The patient is read first, through the patients module, so a
  portal principal's other-patient id is a 404 and a restricted patient needs break-glass.
- Codes: ICD-10-CM or SNOMED CT (:mod:`ehr.modules.problems.codes`).
- Dates: onset and abatement are not in the future; abatement is not before onset and only an
  inactive, remission or resolved problem has one (FHIR con-4: an abated condition is not
  active) — 422 ``date_in_future`` / ``abatement_before_onset`` / ``abatement_not_allowed``.
- Updates are versioned: the caller's ``If-Match`` must name the current version (checked here
  and again by HAPI, so a concurrent writer still loses with 412) and is required (428
  ``if_match_required``). An entered-in-error problem is final (409 ``problem_entered_in_error``).
- "Delete" is entered-in-error: ``verificationStatus`` entered-in-error and no
  ``clinicalStatus`` (FHIR con-5); the Condition stays in HAPI and its history.
- recorder and asserter: the user (``urn:ehr:user`` identifier and the username as display:
  principals carry no Practitioner); recordedDate: now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final, get_args

import structlog

from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.fhir import (
    FhirResourceNotFound,
    TenantFhirClient,
    codings,
    concept_text,
    reference_parts,
    status_code,
    version_id,
)
from ehr.modules import clinical_record
from ehr.modules.clinical_record import (
    SortKey,
    newest_first,
    newest_written_first,
    recorder_of,
    recorder_reference,
)
from ehr.modules.problems.codes import check_problem_code
from ehr.modules.problems.schemas import (
    ACTIVE_CLINICAL_STATUSES,
    ClinicalStatus,
    CodeOut,
    Problem,
    ProblemCreate,
    ProblemUpdate,
    VerificationStatus,
)
from ehr.platform.auth.principal import Principal

__all__ = [
    "CATEGORY_SYSTEM",
    "CLINICAL_STATUS_SYSTEM",
    "VERIFICATION_STATUS_SYSTEM",
    "AbatementBeforeOnset",
    "AbatementNotAllowed",
    "ProblemEnteredInError",
    "ProblemService",
    "check_problem",
    "problem_order",
    "sort_problems",
    "to_problem",
]

logger = structlog.get_logger(__name__)

CATEGORY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL_STATUS_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PROBLEM_LIST_ITEM: Final = "problem-list-item"
# Bound on one list read (pages x page size): a problem list is tens of entries, not thousands.
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 10
_CLINICAL_STATUSES: Final = frozenset(get_args(ClinicalStatus))
_VERIFICATION_STATUSES: Final = frozenset(get_args(VerificationStatus))
_ORDER: Final = {"active": 0, "recurrence": 0, "relapse": 0}
_STALE: Final = "The problem changed since the version given in If-Match"


class AbatementBeforeOnset(RequestValidationFailed):
    """The problem would end before it began."""

    code = "abatement_before_onset"
    title = "Abatement before onset"


class AbatementNotAllowed(RequestValidationFailed):
    """An active (recurrence, relapse) problem cannot have abated."""

    code = "abatement_not_allowed"
    title = "An active problem has no abatement"


class ProblemEnteredInError(ConflictError):
    """The problem was entered in error: it is final and cannot be updated."""

    code = "problem_entered_in_error"
    title = "The problem was entered in error"


def check_problem(
    payload: ProblemCreate | ProblemUpdate, *, patient_id: str, today: dt.date
) -> None:
    """The rules a create/update must pass beyond the schema (module doc)."""
    clinical_record.check_body_patient(payload.patient_id, patient_id)
    check_problem_code(payload.code.system, payload.code.code)
    clinical_record.check_not_in_future("onset", payload.onset, today=today)
    clinical_record.check_not_in_future("abatement", payload.abatement, today=today)
    if payload.abatement is not None:
        if payload.clinical_status in ACTIVE_CLINICAL_STATUSES:
            raise AbatementNotAllowed(
                "Only an inactive, remission or resolved problem has an abatement date."
            )
        if payload.onset is not None and payload.abatement < payload.onset:
            raise AbatementBeforeOnset("The abatement date is before the onset date.")


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _is_problem_of(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    parts = reference_parts(ref)
    if parts is None or (parts.resource_type, parts.resource_id) != ("Patient", patient_id):
        return False
    categories = resource.get("category")
    return any(
        c.system == CATEGORY_SYSTEM and c.code == PROBLEM_LIST_ITEM
        for concept in (categories if isinstance(categories, list) else [])
        for c in codings(concept)
    )


def _date_text(resource: Mapping[str, Any], prefix: str) -> str | None:
    value = resource.get(f"{prefix}DateTime")
    if isinstance(value, str):
        return value
    period = resource.get(f"{prefix}Period")
    if isinstance(period, Mapping) and isinstance(period.get("start"), str):
        return str(period["start"])
    return None


def to_problem(resource: Mapping[str, Any], patient_id: str) -> Problem:
    """The business view of a problem-list Condition."""
    code = resource.get("code")
    coded = codings(code, limit=1)
    notes = [
        str(n["text"])
        for n in resource.get("note") or []
        if isinstance(n, Mapping) and isinstance(n.get("text"), str)
    ]
    clinical = status_code(resource.get("clinicalStatus"))
    verification = status_code(resource.get("verificationStatus"))
    recorded = resource.get("recordedDate")
    return Problem(
        id=str(resource.get("id", "")),
        version=version_id(resource),
        patient_id=patient_id,
        code=CodeOut(system=coded[0].system, code=coded[0].code, display=coded[0].display)
        if coded
        else None,
        text=concept_text(code),
        clinical_status=clinical if clinical in _CLINICAL_STATUSES else None,
        verification_status=verification if verification in _VERIFICATION_STATUSES else None,
        onset=_date_text(resource, "onset"),
        abatement=_date_text(resource, "abatement"),
        recorded_date=recorded if isinstance(recorded, str) else None,
        recorder=recorder_of(resource),
        note="\n\n".join(notes) or None,
    )


def problem_order(resource: Mapping[str, Any]) -> SortKey:
    """The problem list's order as a key (the list's paging position): active (recurrence,
    relapse) first, then the others, entered-in-error last; newest recorded first within each
    group; the id breaks ties."""
    if status_code(resource.get("verificationStatus")) == "entered-in-error":
        group = 2
    else:
        group = _ORDER.get(status_code(resource.get("clinicalStatus")) or "", 1)
    return (
        group,
        *newest_first(resource.get("recordedDate")),
        *newest_written_first(resource),
        str(resource.get("id", "")),
    )


def sort_problems(resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active (recurrence, relapse) first, then the others, entered-in-error last; newest
    recorded first within each group."""

    def group(resource: Mapping[str, Any]) -> int:
        if status_code(resource.get("verificationStatus")) == "entered-in-error":
            return 2
        return _ORDER.get(status_code(resource.get("clinicalStatus")) or "", 1)

    by_recorded = sorted(resources, key=lambda r: str(r.get("recordedDate") or ""), reverse=True)
    return sorted(by_recorded, key=group)


class ProblemService:
    """The problem-list use cases for one tenant (the router has opened the patient's chart)."""

    def __init__(
        self,
        fhir: TenantFhirClient,
        *,
        principal: Principal,
    ) -> None:
        self._fhir = fhir
        self._principal = principal

    async def problems_of(
        self,
        patient_id: str,
        *,
        clinical_status: Sequence[str] = (),
        include_entered_in_error: bool = False,
    ) -> tuple[list[dict[str, Any]], bool]:
        """The patient's problem-list Conditions, sorted (:func:`sort_problems`), and whether
        the read was complete."""
        params: list[tuple[str, str]] = [
            ("subject", f"Patient/{patient_id}"),
            ("category", f"{CATEGORY_SYSTEM}|{PROBLEM_LIST_ITEM}"),
        ]
        if clinical_status:
            params.append(("clinical-status", ",".join(clinical_status)))
        if not include_entered_in_error:
            params.append(("verification-status:not", "entered-in-error"))
        found = await self._fhir.search_all(
            "Condition", params, page_size=_PAGE_SIZE, max_pages=_MAX_PAGES
        )
        mine = [r for r in found.matches if _is_problem_of(r, patient_id)]
        return sort_problems(mine), found.complete

    async def get(self, patient_id: str, problem_id: str) -> dict[str, Any]:
        """The problem ``problem_id`` of the patient (404 if it is another patient's)."""
        resource = await self._fhir.read("Condition", problem_id)
        if not _is_problem_of(resource, patient_id):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return resource

    async def create(self, patient_id: str, payload: ProblemCreate) -> dict[str, Any]:
        """Record a new problem (rules: module doc)."""
        check_problem(payload, patient_id=patient_id, today=_today())
        who = recorder_reference(self._principal)
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "category": [
                {
                    "coding": [
                        {
                            "system": CATEGORY_SYSTEM,
                            "code": PROBLEM_LIST_ITEM,
                            "display": "Problem List Item",
                        }
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{patient_id}"},
            "recordedDate": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "recorder": who,
            "asserter": who,
        }
        _apply(resource, payload)
        stored = await self._fhir.create(resource)
        logger.info("problems.create.completed", resource_id=stored.get("id"))
        return stored

    async def update(
        self, patient_id: str, problem_id: str, payload: ProblemUpdate, *, if_match: str | None
    ) -> dict[str, Any]:
        """Replace the problem's state; ``if_match`` must name the current version."""
        if_match = clinical_record.require_if_match(if_match)
        check_problem(payload, patient_id=patient_id, today=_today())
        current = await self._current(patient_id, problem_id, if_match)
        resource = dict(current)
        _apply(resource, payload)
        stored = await self._fhir.update(resource, if_match=if_match)
        logger.info("problems.update.completed", resource_id=problem_id)
        return stored

    async def mark_entered_in_error(
        self, patient_id: str, problem_id: str, *, if_match: str | None
    ) -> dict[str, Any]:
        """Mark the problem entered-in-error (idempotent: an entered-in-error one is returned).

        Without ``if_match`` the version just read is used, so a concurrent update still wins
        with 412 instead of being silently overwritten."""
        current = await self.get(patient_id, problem_id)
        stored, changed = await clinical_record.mark_verification_entered_in_error(
            self._fhir,
            current,
            if_match=if_match,
            verification_system=VERIFICATION_STATUS_SYSTEM,
            stale_detail=_STALE,
        )
        if changed:
            logger.info("problems.entered_in_error.completed", resource_id=problem_id)
        return stored

    async def _current(self, patient_id: str, problem_id: str, if_match: str) -> dict[str, Any]:
        current = await self.get(patient_id, problem_id)
        if clinical_record.is_entered_in_error(current):
            raise ProblemEnteredInError("An entered-in-error problem cannot be changed.")
        clinical_record.check_version(current, if_match, detail=_STALE)
        return current


def _apply(resource: dict[str, Any], payload: ProblemCreate | ProblemUpdate) -> None:
    """Write the payload's fields into ``resource`` (absent optional fields are removed)."""
    coding: dict[str, Any] = {"system": payload.code.system, "code": payload.code.code}
    if payload.code.display is not None:
        coding["display"] = payload.code.display
    code: dict[str, Any] = {"coding": [coding]}
    if payload.text is not None:
        code["text"] = payload.text
    resource["code"] = code
    resource["clinicalStatus"] = _status(CLINICAL_STATUS_SYSTEM, payload.clinical_status)
    resource["verificationStatus"] = _status(
        VERIFICATION_STATUS_SYSTEM, payload.verification_status
    )
    for key in ("onsetDateTime", "onsetPeriod", "onsetAge", "onsetRange", "onsetString"):
        resource.pop(key, None)
    for key in (
        "abatementDateTime",
        "abatementPeriod",
        "abatementAge",
        "abatementRange",
        "abatementString",
    ):
        resource.pop(key, None)
    if payload.onset is not None:
        resource["onsetDateTime"] = payload.onset.isoformat()
    if payload.abatement is not None:
        resource["abatementDateTime"] = payload.abatement.isoformat()
    if payload.note is not None:
        resource["note"] = [{"text": payload.note}]
    else:
        resource.pop("note", None)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
