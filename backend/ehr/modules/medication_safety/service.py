"""Medication-safety use cases of the API: checks of explicit lists and of a patient's record.

Checks run the in-process engine (:func:`~.engine.check`) on the compiled knowledge base and the
RxNorm table, under the caller tenant's display policy (:class:`~.checks.MedicationChecks`). A
check is given either explicit lists (:meth:`MedicationSafetyService.check`) or a patient whose
active medications and allergies are read from the tenant's FHIR partition
(:meth:`MedicationSafetyService.check_patient`: :mod:`.record` reads it, :mod:`.profile` says
what counts). The answers are built by :mod:`.answers`; the knowledge base and its rules are
shown by :mod:`.catalogue`; the tenant's policy is kept by :mod:`.policy`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog

from ehr.fhir import TenantFhirClient
from ehr.modules.medication_safety.answers import allergy_inputs, answer_fields, medication_inputs
from ehr.modules.medication_safety.checks import MedicationChecks
from ehr.modules.medication_safety.issues import PatientContext
from ehr.modules.medication_safety.knowledge import LoadedKnowledge
from ehr.modules.medication_safety.policy import TenantPolicy
from ehr.modules.medication_safety.record import read_patient_record
from ehr.modules.medication_safety.rendering import IssueCardRenderer
from ehr.modules.medication_safety.schemas import (
    CheckRequest,
    CheckResponse,
    Include,
    PatientCheckRequest,
    PatientCheckResponse,
    ProfileSummary,
    SkippedResource,
)
from ehr.modules.patients import PatientService

__all__ = ["MedicationSafetyService", "PatientCheck"]

logger = structlog.get_logger(__name__)


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
        card_renderer: IssueCardRenderer | None = None,
    ) -> None:
        self._checks = MedicationChecks(knowledge, policy)
        self._fhir = fhir
        self._patients = patients
        self._card_renderer = card_renderer

    def check(self, request: CheckRequest, include: Sequence[Include] = ()) -> CheckResponse:
        """Check explicit lists (no FHIR access)."""
        context = (
            PatientContext(
                age_years=request.patient.age_years,
                sex=request.patient.sex,
                weight_kg=request.patient.weight_kg,
            )
            if request.patient is not None
            else None
        )
        name_of = self._checks.name_of
        result = self._checks.run(
            medication_inputs(request.proposed, "proposed", name_of),
            medication_inputs(request.active, "active", name_of),
            allergy_inputs(request.allergies, name_of),
            context,
        )
        return CheckResponse(**answer_fields(result, include, card_renderer=self._card_renderer))

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
        profile = self._checks.profile(
            record,
            now=dt.datetime.now(dt.UTC),
            replaces=request.replaces,
            may_see_restricted=may_see_restricted,
        )
        # The engine is CPU work growing with the record: off the event loop.
        result = await anyio.to_thread.run_sync(
            self._checks.run,
            medication_inputs(request.proposed, "proposed", self._checks.name_of),
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
            weight_kg=profile.context.weight_kg,
        )
        response = PatientCheckResponse(
            **answer_fields(
                result,
                include,
                patient_ref=f"Patient/{profile.patient_id}",
                card_renderer=self._card_renderer,
            ),
            profile=summary,
        )
        return PatientCheck(response, profile.used_break_glass)
