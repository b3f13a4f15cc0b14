"""Encounter list, read, start and status transitions through the tenant-bound FHIR client.

Only the FHIR R4 Encounter workflow is allowed (:data:`ALLOWED_TRANSITIONS`); anything else is a
409 ``encounter_transition_not_allowed`` naming ``from`` and ``to``. Every transition is a
versioned update on the version the caller read: ``If-Match`` is required (428
``if_match_required``), checked against the version just read and again by HAPI (412
``fhir_precondition_failed``), so two concurrent changes cannot both win and nothing is lost.
The status left is kept in ``statusHistory`` with the period it lasted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

import structlog

from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.fhir import FhirResourceNotFound, TenantFhirClient
from ehr.modules import clinical_record
from ehr.modules.encounters.schemas import (
    ACT_CODE_SYSTEM,
    CodingIn,
    CodingOut,
    EncounterDischarge,
    EncounterStart,
    EncounterSummary,
    StatusHistoryItem,
    utc_now,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "EncounterNotFound",
    "EncounterService",
    "EncounterTransitionError",
    "check_transition",
    "encounter_order",
    "to_summary",
    "with_status",
]

logger = structlog.get_logger(__name__)

# Bound on one list read (pages x page size); the answer says when it was reached.
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 10
_CLASS_DISPLAY: Final = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}

# FHIR R4 Encounter.status workflow (entered-in-error is reachable from anywhere, handled apart).
ALLOWED_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "planned": frozenset({"arrived", "triaged", "in-progress", "cancelled"}),
    "arrived": frozenset({"triaged", "in-progress", "cancelled"}),
    "triaged": frozenset({"in-progress", "cancelled"}),
    "in-progress": frozenset({"onleave", "finished", "cancelled"}),
    "onleave": frozenset({"in-progress", "finished"}),
    "finished": frozenset(),
    "cancelled": frozenset(),
    "entered-in-error": frozenset(),
    "unknown": frozenset(),
}


class EncounterTransitionError(ConflictError):
    """The FHIR Encounter workflow does not lead from the current status to the asked one."""

    code = "encounter_transition_not_allowed"
    title = "Encounter status transition not allowed"


class EncounterNotFound(FhirResourceNotFound):
    """The encounter does not exist, or belongs to another patient (told apart from nothing)."""


class EncounterStartInvalid(RequestValidationFailed):
    """A start that cannot be (e.g. an encounter starting in the future that is not planned)."""

    code = "encounter_start_invalid"
    title = "Invalid encounter start"


def check_transition(current: str, target: str) -> None:
    """Raise :class:`EncounterTransitionError` unless FHIR allows ``current`` → ``target``."""
    if target == "entered-in-error" and current != "entered-in-error":
        return
    if target not in ALLOWED_TRANSITIONS.get(current, frozenset()):
        raise EncounterTransitionError(
            f"An encounter cannot go from {current!r} to {target!r}.",
            extra={"from": current, "to": target},
        )


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _coding(coding: CodingIn) -> dict[str, Any]:
    out: dict[str, Any] = {"system": coding.system, "code": coding.code}
    if coding.display:
        out["display"] = coding.display
    return out


def _status_since(resource: Mapping[str, Any]) -> str | None:
    """When the current status began: the end of the last history item, else period.start."""
    history = resource.get("statusHistory")
    if isinstance(history, list) and history:
        last = history[-1]
        period = last.get("period") if isinstance(last, Mapping) else None
        if isinstance(period, Mapping) and isinstance(period.get("end"), str):
            return str(period["end"])
    period = resource.get("period")
    if isinstance(period, Mapping) and isinstance(period.get("start"), str):
        return str(period["start"])
    return None


def with_status(
    resource: Mapping[str, Any], target: str, *, at: dt.datetime | None = None
) -> dict[str, Any]:
    """A copy of ``resource`` moved to ``target`` (checked), the status left kept in history."""
    current = str(resource.get("status", "unknown"))
    check_transition(current, target)
    when = _instant(at or utc_now())
    updated = dict(resource)
    left: dict[str, Any] = {"status": current, "period": {"end": when}}
    since = _status_since(resource)
    if since is not None:
        left["period"] = {"start": since, "end": when}
    updated["statusHistory"] = [*(resource.get("statusHistory") or []), left]
    updated["status"] = target
    if target == "in-progress":
        period = dict(resource.get("period") or {})
        # Arrival of a planned encounter: the period starts when it really began.
        if current in {"planned", "arrived", "triaged"}:
            period["start"] = when
        updated["period"] = period
    return updated


def _coding_out(value: object) -> CodingOut | None:
    if not isinstance(value, Mapping):
        return None
    return CodingOut(
        system=value.get("system") if isinstance(value.get("system"), str) else None,
        code=value.get("code") if isinstance(value.get("code"), str) else None,
        display=value.get("display") if isinstance(value.get("display"), str) else None,
    )


def to_summary(resource: Mapping[str, Any], patient_id: str) -> EncounterSummary:
    """The summary of a FHIR Encounter."""
    meta = resource.get("meta") or {}
    period = resource.get("period") or {}
    klass = _coding_out(resource.get("class"))
    types: list[CodingOut] = []
    for concept in resource.get("type") or []:
        for coding in (concept.get("coding") or []) if isinstance(concept, Mapping) else []:
            out = _coding_out(coding)
            if out is not None:
                types.append(out)
    reason = None
    for concept in resource.get("reasonCode") or []:
        if isinstance(concept, Mapping) and isinstance(concept.get("text"), str):
            reason = concept["text"]
            break
    disposition = None
    hospitalization = resource.get("hospitalization")
    if isinstance(hospitalization, Mapping):
        concept = hospitalization.get("dischargeDisposition")
        coding_list = concept.get("coding") if isinstance(concept, Mapping) else None
        if isinstance(coding_list, list) and coding_list:
            disposition = _coding_out(coding_list[0])
    history = []
    for item in resource.get("statusHistory") or []:
        if isinstance(item, Mapping):
            item_period = item.get("period") or {}
            history.append(
                StatusHistoryItem(
                    status=str(item.get("status")),
                    start=item_period.get("start"),
                    end=item_period.get("end"),
                )
            )
    return EncounterSummary(
        id=str(resource.get("id", "")),
        version=meta.get("versionId") if isinstance(meta, Mapping) else None,
        patient_id=patient_id,
        status=str(resource.get("status", "unknown")),
        class_code=klass.code if klass is not None else None,
        type=types,
        reason=reason,
        start=period.get("start") if isinstance(period, Mapping) else None,
        end=period.get("end") if isinstance(period, Mapping) else None,
        discharge_disposition=disposition,
        status_history=history,
    )


class EncounterService:
    """The encounters use cases for one tenant (the router has already checked the patient)."""

    def __init__(self, fhir: TenantFhirClient) -> None:
        self._fhir = fhir

    async def list(
        self, patient_id: str, *, status: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """The patient's encounters, newest first (:func:`encounter_order`; the read bounded to
        :data:`_MAX_PAGES` pages of :data:`_PAGE_SIZE`), and whether the read was complete."""
        params: list[tuple[str, str]] = [("subject", f"Patient/{patient_id}"), ("_sort", "-date")]
        if status is not None:
            params.append(("status", status))
        found = await self._fhir.search_all(
            "Encounter", params, page_size=_PAGE_SIZE, max_pages=_MAX_PAGES
        )
        mine = [r for r in found.matches if _subject_is(r, patient_id)]
        return sorted(mine, key=encounter_order), found.complete

    async def get(self, patient_id: str, encounter_id: str) -> dict[str, Any]:
        """The encounter, if it is this patient's (else 404 as if missing)."""
        resource = await self._fhir.read("Encounter", encounter_id)
        if not _subject_is(resource, patient_id):
            raise EncounterNotFound("The encounter does not exist")
        return resource

    async def start(self, patient_id: str, payload: EncounterStart) -> dict[str, Any]:
        """Create the encounter in status ``planned``, ``arrived`` or ``in-progress``."""
        now = utc_now()
        start = payload.start or now
        if payload.status != "planned" and start > now + dt.timedelta(minutes=5):
            raise EncounterStartInvalid(
                "Only a planned encounter may start in the future.",
                extra={"status": payload.status},
            )
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "status": payload.status,
            "class": {
                "system": ACT_CODE_SYSTEM,
                "code": payload.class_code,
                "display": _CLASS_DISPLAY[payload.class_code],
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": _instant(start)},
        }
        if payload.type:
            resource["type"] = [{"coding": [_coding(c)]} for c in payload.type]
        if payload.reason:
            resource["reasonCode"] = [{"text": payload.reason}]
        stored = await self._fhir.create(resource)
        logger.info(
            "encounters.start.completed",
            resource_id=stored.get("id"),
            status=payload.status,
            tenant=self._fhir.tenant,
        )
        return stored

    async def transition(
        self,
        patient_id: str,
        encounter_id: str,
        target: str,
        *,
        if_match: str | None = None,
        discharge: EncounterDischarge | None = None,
    ) -> dict[str, Any]:
        """Move the encounter to ``target`` along the FHIR workflow, as one versioned update."""
        if_match = clinical_record.require_if_match(if_match)
        current = await self.get(patient_id, encounter_id)
        clinical_record.check_version(
            current,
            if_match,
            detail="The encounter changed since the version given in If-Match.",
            strict=True,
        )
        moment = utc_now()
        if discharge is not None and discharge.end is not None:
            moment = discharge.end
        updated = with_status(current, target, at=moment)
        if target == "finished":
            period = dict(updated.get("period") or {})
            start = period.get("start")
            end = _instant(moment)
            began = _parse_instant(start) if isinstance(start, str) else None
            if began is not None and moment < began:
                raise EncounterStartInvalid(
                    "The discharge time is before the encounter's start.",
                    extra={"start": start, "end": end},
                )
            period["end"] = end
            updated["period"] = period
            if discharge is not None and discharge.discharge_disposition is not None:
                hospitalization = dict(updated.get("hospitalization") or {})
                hospitalization["dischargeDisposition"] = {
                    "coding": [_coding(discharge.discharge_disposition)]
                }
                updated["hospitalization"] = hospitalization
        elif target in {"cancelled", "entered-in-error"}:
            period = dict(updated.get("period") or {})
            if "start" in period and "end" not in period and target == "cancelled":
                period["end"] = _instant(moment)
            updated["period"] = period
        stored = await self._fhir.update(updated, if_match=if_match)
        logger.info(
            "encounters.transition.completed",
            resource_id=encounter_id,
            from_status=current.get("status"),
            to_status=target,
            tenant=self._fhir.tenant,
        )
        return stored


def encounter_order(resource: Mapping[str, Any]) -> clinical_record.SortKey:
    """The encounter list's order as a key (its paging position): newest start first, those
    without a start last; the id breaks ties."""
    period = resource.get("period")
    start = period.get("start") if isinstance(period, Mapping) else None
    return (
        *clinical_record.newest_first(start),
        *clinical_record.newest_written_first(resource),
        str(resource.get("id", "")),
    )


def _subject_is(resource: Mapping[str, Any], patient_id: str) -> bool:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    if not isinstance(reference, str):
        return False
    return reference == f"Patient/{patient_id}" or reference.endswith(f"/Patient/{patient_id}")


def _parse_instant(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
