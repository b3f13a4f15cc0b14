"""Vital-sign Observations through the tenant-bound FHIR client.

A set of vitals is written as one FHIR transaction (all or nothing): one Observation per
measurement (a blood pressure is one Observation with systolic/diastolic components) and, when a
weight and a height are known, a derived BMI Observation whose ``derivedFrom`` names both (the
height may be one recorded for the patient within the last year). Every Observation follows the
FHIR R4 vital-signs profile: category ``vital-signs``, a LOINC code, status ``final``,
``effectiveDateTime``, the path's patient as subject and a UCUM ``valueQuantity`` in the
canonical unit.

Corrections replace the Observation (status ``amended``; versioned with ``If-Match``). Clinical
data is never deleted: ``entered-in-error`` marks a wrong one, and a BMI derived from it is
marked with it (same transaction). Paging follows HAPI's ``next`` links, sealed into an opaque
token bound to the tenant and the patient (:mod:`ehr.modules.vitals.paging`). The Observations
themselves are built and read in :mod:`ehr.modules.vitals.observations`, the derived BMIs in
:mod:`ehr.modules.vitals.bmi`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import structlog

from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.fhir import (
    FhirConflict,
    FhirPreconditionFailed,
    FhirResourceGone,
    FhirResourceNotFound,
    TenantFhirClient,
    bundle_resources,
    codings,
    create_entry,
    iter_entries,
    new_full_url,
    next_link,
    reference_parts,
    transaction_bundle,
    update_entry,
)
from ehr.modules import clinical_record
from ehr.modules.clinical_record import ENTERED_IN_ERROR
from ehr.modules.vitals.bmi import DerivedBmis
from ehr.modules.vitals.catalogue import LOINC_SYSTEM, VITALS
from ehr.modules.vitals.observations import (
    apply_values,
    is_patients_vital,
    loinc_code,
    observation,
    search_params,
    to_vital,
)
from ehr.modules.vitals.paging import InvalidPageTokenError, PageTokens, vitals_path
from ehr.modules.vitals.rules import Measured, measure, measure_all
from ehr.modules.vitals.schemas import VitalSignOut, VitalsRecord, VitalUpdate
from ehr.modules.vitals.units import units_ready

__all__ = [
    "EffectiveInFuture",
    "EncounterNotOfPatient",
    "InvalidPageTokenError",
    "VitalEnteredInError",
    "VitalsResults",
    "VitalsService",
    "latest_vitals",
    "to_vital",
    "vitals_path",
]

logger = structlog.get_logger(__name__)

# Clock skew between a device and the server allowed on ``effective``.
FUTURE_TOLERANCE: Final = dt.timedelta(minutes=5)
_LATEST_SCAN: Final = 200


class EncounterNotOfPatient(RequestValidationFailed):
    """The encounter does not exist in this tenant or is another patient's."""

    code = "encounter_not_of_patient"
    title = "Encounter is not this patient's"


class VitalEnteredInError(ConflictError):
    """An Observation marked entered-in-error is not corrected any more (record a new one)."""

    code = "vital_entered_in_error"
    title = "Vital sign was entered in error"


class EffectiveInFuture(RequestValidationFailed):
    """Vitals cannot have been taken in the future (a clock or typing error)."""

    code = "effective_in_future"
    title = "Effective time in the future"


def _check_not_in_future(effective: dt.datetime) -> None:
    if effective > _now() + FUTURE_TOLERANCE:
        raise EffectiveInFuture("The vitals' effective time is in the future")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class VitalsResults:
    """One page of a patient's vitals and the ``next`` link (our API's, sealed)."""

    resources: list[dict[str, Any]]
    next: str | None


async def latest_vitals(fhir: TenantFhirClient, patient_id: str) -> list[VitalSignOut]:
    """The latest valid measurement of each vital sign of ``patient_id``, latest first.

    For the chart summary: one bounded search (the newest 200 vital-sign Observations, entered-in-
    error ones excluded). The caller has already checked access to the patient and audits.
    """
    found = await fhir.search_all(
        "Observation",
        [*search_params(patient_id), ("_sort", "-date")],
        page_size=_LATEST_SCAN,
        max_pages=1,
    )
    latest: dict[str, VitalSignOut] = {}
    for resource in found.matches:
        vital = to_vital(resource)
        if vital.code and vital.code not in latest:
            latest[vital.code] = vital
    return list(latest.values())


# --------------------------------------------------------------------------- the service


class VitalsService:
    """The vitals use cases for one tenant. The router has already checked the patient exists
    and the caller may see it (compartment, break-glass)."""

    def __init__(self, fhir: TenantFhirClient, *, page_token_key: bytes) -> None:
        self._fhir = fhir
        self._bmis = DerivedBmis(fhir)
        self._tokens = PageTokens(page_token_key, fhir.tenant)

    # --- record -------------------------------------------------------------------------------

    async def record(self, patient_id: str, payload: VitalsRecord) -> list[dict[str, Any]]:
        """Store the set (and a derived BMI) in one transaction; the stored Observations."""
        await units_ready()
        effective = payload.effective or _now()
        _check_not_in_future(effective)
        measured = measure_all(
            (m.code, m.unit, m.value, m.systolic, m.diastolic) for m in payload.measurements
        )
        if payload.encounter_id is not None:
            await self._check_encounter(patient_id, payload.encounter_id)
        entries: list[dict[str, Any]] = []
        by_code: dict[str, tuple[str, Measured]] = {}
        for one in measured:
            full_url = new_full_url()
            by_code[one.vital.code] = (full_url, one)
            resource = observation(
                patient_id, one, effective=effective, encounter_id=payload.encounter_id
            )
            entries.append(create_entry(resource, full_url=full_url))
        bmi_entry = await self._bmis.for_new_set(
            patient_id, by_code, effective, payload.encounter_id
        )
        if bmi_entry is not None:
            entries.append(bmi_entry)
        response = await self._fhir.transaction(transaction_bundle(entries), return_resources=True)
        stored = [entry.resource for entry in iter_entries(response) if entry.resource]
        logger.info(
            "vitals.record.completed",
            tenant=self._fhir.tenant,
            resource_type="Observation",
            count=len(stored),
            bmi_derived=bmi_entry is not None,
        )
        return stored

    async def _check_encounter(self, patient_id: str, encounter_id: str) -> None:
        try:
            encounter = await self._fhir.read("Encounter", encounter_id)
        except (FhirResourceNotFound, FhirResourceGone):
            encounter = {}
        subject = reference_parts(encounter.get("subject"))
        if subject is None or (subject.resource_type, subject.resource_id) != (
            "Patient",
            patient_id,
        ):
            raise EncounterNotOfPatient(
                "The encounter does not exist or is not this patient's",
                extra={"encounter_id": encounter_id},
            )

    # --- read ---------------------------------------------------------------------------------

    async def get(self, patient_id: str, vital_id: str) -> dict[str, Any]:
        """The vital-sign Observation ``vital_id`` of ``patient_id`` (else 404, whatever it is)."""
        resource = await self._fhir.read("Observation", vital_id)
        if not is_patients_vital(resource, patient_id):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return resource

    async def search(
        self,
        patient_id: str,
        *,
        code: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        count: int = 20,
        include_entered_in_error: bool = False,
    ) -> VitalsResults:
        """The first page of the patient's vitals, latest first."""
        params = search_params(patient_id)
        if include_entered_in_error:
            params = [p for p in params if p[0] != "status:not"]
        if code is not None:
            params.append(("code", f"{LOINC_SYSTEM}|{code}"))
        if since is not None:
            params.append(("date", f"ge{since.isoformat()}"))
        if until is not None:
            params.append(("date", f"le{until.isoformat()}"))
        params += [("_sort", "-date"), ("_count", str(count))]
        bundle = await self._fhir.search("Observation", params)
        return self._results(patient_id, bundle)

    async def next_page(self, patient_id: str, page_token: str) -> VitalsResults:
        url = self._tokens.open(patient_id, page_token)
        bundle = await self._fhir.next_page({"link": [{"relation": "next", "url": url}]})
        if bundle is None:  # pragma: no cover - we always pass a next link
            return VitalsResults(resources=[], next=None)
        return self._results(patient_id, bundle)

    # --- correct ------------------------------------------------------------------------------

    async def update(
        self, patient_id: str, vital_id: str, payload: VitalUpdate, *, if_match: str | None
    ) -> dict[str, Any]:
        """Correct the values (status ``amended``); a stale ``if_match`` is 412."""
        if_match = clinical_record.require_if_match(
            if_match, "Send the version you corrected in If-Match"
        )
        current = await self.get(patient_id, vital_id)
        if current.get("status") == ENTERED_IN_ERROR:
            raise VitalEnteredInError("This vital sign was entered in error; record a new one")
        clinical_record.check_version(
            current, if_match, detail="The vital sign changed since the version given in If-Match"
        )
        if payload.effective is not None:
            _check_not_in_future(payload.effective)
        await units_ready()
        code = loinc_code(current)
        submitted = next(
            (c.code for c in codings(current.get("code")) if c.code != code and c.code in VITALS),
            code,
        )
        measured = measure(
            submitted,
            payload.unit,
            value=payload.value,
            systolic=payload.systolic,
            diastolic=payload.diastolic,
        )
        resource = dict(current)
        apply_values(resource, measured)
        resource["status"] = "amended"
        if payload.effective is not None:
            resource["effectiveDateTime"] = payload.effective.isoformat()
        derived = await self._bmis.recomputed(patient_id, vital_id, measured)
        if not derived:
            stored = await self._fhir.update(resource, if_match=if_match)
        else:
            # The correction and the BMIs derived from it change together, or not at all.
            response = await self._versioned_transaction(
                [update_entry(resource, if_match=if_match), *derived]
            )
            stored = next(
                (
                    entry.resource
                    for entry in iter_entries(response)
                    if entry.resource and entry.resource.get("id") == vital_id
                ),
                resource,
            )
        logger.info(
            "vitals.update.completed",
            tenant=self._fhir.tenant,
            resource_type="Observation",
            resource_id=vital_id,
            derived=len(derived),
        )
        return stored

    async def _versioned_transaction(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Run versioned updates as one transaction; a lost version race is 412 (HAPI answers a
        transaction's failed ``ifMatch`` with 409)."""
        try:
            return await self._fhir.transaction(transaction_bundle(entries), return_resources=True)
        except (FhirConflict, FhirPreconditionFailed) as exc:
            raise FhirPreconditionFailed(
                "The FHIR resource changed since the version it was read at (If-Match)",
                extra=exc.extra,
            ) from exc

    async def mark_entered_in_error(
        self, patient_id: str, vital_id: str, *, if_match: str | None
    ) -> list[dict[str, Any]]:
        """Mark the Observation (and BMIs derived from it) entered-in-error, in one transaction.

        Idempotent: one already marked is returned as it is. ``if_match`` (optional) makes the
        change conditional on the version the caller saw.
        """
        current = await self.get(patient_id, vital_id)
        if current.get("status") == ENTERED_IN_ERROR:
            return [current]
        version = (current.get("meta") or {}).get("versionId")
        entries = [
            update_entry(
                {**current, "status": ENTERED_IN_ERROR},
                if_match=if_match if if_match is not None else version,
            )
        ]
        for resource in await self._bmis.derived_from(patient_id, vital_id):
            entries.append(
                update_entry(
                    {**resource, "status": ENTERED_IN_ERROR},
                    if_match=(resource.get("meta") or {}).get("versionId"),
                )
            )
        response = await self._versioned_transaction(entries)
        logger.info(
            "vitals.entered_in_error.completed",
            tenant=self._fhir.tenant,
            resource_type="Observation",
            resource_id=vital_id,
            derived=len(entries) - 1,
        )
        return [entry.resource for entry in iter_entries(response) if entry.resource]

    # --- paging -------------------------------------------------------------------------------

    def _results(self, patient_id: str, bundle: Mapping[str, Any]) -> VitalsResults:
        resources = [
            r for r in bundle_resources(bundle, "Observation") if is_patients_vital(r, patient_id)
        ]
        next_url = next_link(bundle)
        next_page = (
            f"{vitals_path(patient_id)}?page_token={quote(self._tokens.seal(patient_id, next_url))}"
            if next_url is not None
            else None
        )
        return VitalsResults(resources=resources, next=next_page)
