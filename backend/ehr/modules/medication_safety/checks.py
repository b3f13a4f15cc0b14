"""The checks under one tenant's policy, for callers that already hold the patient's record.

:class:`MedicationChecks` binds the knowledge base and the RxNorm table to a tenant's display
policy. It does no I/O and is synchronous (callers run it off the event loop): the record is
given as a :class:`~.record.PatientRecord` of raw FHIR resources, read from FHIR by this
module's service or gathered by another module (a CDS Hooks call's prefetch).

Entry points for other modules (CDS Hooks):

- :meth:`MedicationChecks.check_orders` — draft medication orders (order-select, order-sign,
  medication-refill ...) against the record and each other;
- :meth:`MedicationChecks.check_medication_list` — the current medication list against itself
  (patient-view, encounter-discharge);
- :meth:`MedicationChecks.check_new_allergies` — the active medications against allergies being
  recorded (allergyintolerance-create).

Each builds the record's :class:`~.profile.PatientProfile` (restricted resources are never used:
these callers cannot assert break-glass) and answers a :class:`RecordCheck`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ehr.fhir import reference_of
from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    AllergyInput,
    CheckResult,
    Coding,
    IssueCategory,
    MedicationInput,
    PatientContext,
)
from ehr.modules.medication_safety.knowledge import LoadedKnowledge
from ehr.modules.medication_safety.policy import TenantPolicy
from ehr.modules.medication_safety.profile import (
    PatientProfile,
    allergy_from_fhir,
    build_profile,
    medication_from_draft,
)
from ehr.modules.medication_safety.record import PatientRecord

__all__ = ["MedicationChecks", "RecordCheck"]


@dataclass(frozen=True, slots=True)
class RecordCheck:
    """What a check of a held record found.

    ``result`` is None when there was nothing to check (no proposed order, no active medication
    or no allergy); ``profile`` is None when there was no record (no Patient).
    """

    result: CheckResult | None
    profile: PatientProfile | None


class MedicationChecks:
    """The engine on one knowledge base under one tenant's policy (no FHIR access)."""

    def __init__(self, knowledge: LoadedKnowledge, policy: TenantPolicy) -> None:
        self._knowledge = knowledge
        self._policy = policy

    def name_of(self, codings: Sequence[Coding]) -> str | None:
        """The RxNorm name of the first coding the table resolves (for labels)."""
        for coding in codings:
            resolution = self._knowledge.resolver.resolve(coding.system, coding.code)
            if resolution is not None:
                return resolution.name
        return None

    def run(
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

    def profile(
        self,
        record: PatientRecord,
        *,
        now: dt.datetime,
        replaces: Iterable[str] = (),
        may_see_restricted: bool = False,
    ) -> PatientProfile:
        """The engine inputs of ``record`` (:func:`~.profile.build_profile`); restricted
        resources are used only with ``may_see_restricted`` (break-glass)."""
        return build_profile(
            record,
            replaces=replaces,
            now=now,
            may_see_restricted=may_see_restricted,
            name_of=self.name_of,
        )

    def check_orders(
        self,
        record: PatientRecord | None,
        orders: Sequence[Mapping[str, Any]],
        *,
        selected: Collection[str] | None = None,
        now: dt.datetime,
    ) -> RecordCheck:
        """Check draft medication orders against the record (its active medications, allergies,
        age and sex) and the other drafts.

        ``orders`` are draft MedicationRequests, whatever their status (the caller decided they
        are being ordered now); one without an id is named ``draft-<n>`` (its position). With
        ``selected`` (references such as ``MedicationRequest/1``) only those drafts are proposed
        and the others count as active. A draft with an id replaces the active order of the same
        reference (a refill or a re-sent order never "interacts" with itself).
        """
        profile = self.profile(record, now=now) if record is not None else None
        proposed: list[MedicationInput] = []
        others: list[MedicationInput] = []
        renewed: set[str] = set()
        for index, draft in enumerate(orders):
            has_id = isinstance(draft.get("id"), str) and bool(draft["id"])
            reference = reference_of(draft) if has_id else None
            if reference is not None:
                renewed.add(reference)
            keyed = draft if reference else {**draft, "id": f"draft-{index + 1}"}
            item = medication_from_draft(keyed, {}, name_of=self.name_of)
            if selected is None or reference in selected:
                proposed.append(item)
            else:
                others.append(item)
        if not proposed:
            return RecordCheck(result=None, profile=profile)
        current = profile.active if profile is not None else ()
        active = [*(m for m in current if m.reference not in renewed), *others]
        result = self.run(
            proposed,
            active,
            profile.allergies if profile is not None else (),
            profile.context if profile is not None else None,
        )
        return RecordCheck(result=result, profile=profile)

    def check_medication_list(self, record: PatientRecord, *, now: dt.datetime) -> RecordCheck:
        """Check the record's active medications against each other and its allergies."""
        profile = self.profile(record, now=now)
        result = self.run(profile.active, (), profile.allergies, profile.context)
        return RecordCheck(result=result, profile=profile)

    def check_new_allergies(
        self,
        record: PatientRecord | None,
        allergies: Sequence[Mapping[str, Any]],
        *,
        now: dt.datetime,
    ) -> RecordCheck:
        """Check the record's active medications against AllergyIntolerances being recorded
        (drug-allergy issues only); one without an id is named ``new-<n>`` (its position)."""
        profile = self.profile(record, now=now) if record is not None else None
        found = [
            item
            for index, resource in enumerate(allergies)
            if isinstance(
                item := allergy_from_fhir(
                    resource if resource.get("id") else {**resource, "id": f"new-{index + 1}"},
                    may_see_restricted=True,
                    name_of=self.name_of,
                ),
                AllergyInput,
            )
        ]
        if profile is None or not profile.active or not found:
            return RecordCheck(result=None, profile=profile)
        result = self.run(profile.active, (), found, profile.context)
        relevant = CheckResult(
            issues=tuple(i for i in result.issues if i.category is IssueCategory.DRUG_ALLERGY),
            unresolved=result.unresolved,
            not_checkable=result.not_checkable,
            cleared=result.cleared,
            kb_version=result.kb_version,
        )
        return RecordCheck(result=relevant, profile=profile)
