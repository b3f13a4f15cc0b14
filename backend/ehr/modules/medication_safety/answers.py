"""The API's answers to a check: request lists → engine inputs, a :class:`~.issues.CheckResult`
→ the fields of a :class:`~.schemas.CheckResponse`.

An answer carries at most :data:`~.schemas.MAX_ISSUES` issues (the most severe; the rest are
counted in ``issues_omitted``) and, on request, each issue rendered as a FHIR DetectedIssue
(:mod:`.rendering`) and as a CDS Hooks card (by the card renderer the app was given: card
rendering belongs to CDS Hooks, see :class:`~.rendering.IssueCardRenderer`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from ehr.modules.medication_safety.dosing import administrations_per_day
from ehr.modules.medication_safety.issues import (
    AllergyInput,
    CheckResult,
    Coding,
    Dosage,
    DoseQuantity,
    MedicationInput,
)
from ehr.modules.medication_safety.knowledge import CitationRef
from ehr.modules.medication_safety.profile import CodingNamer, first_display
from ehr.modules.medication_safety.rendering import IssueCardRenderer, to_detected_issue
from ehr.modules.medication_safety.schemas import (
    MAX_ISSUES,
    AllergyIn,
    CitationOut,
    ClearedCheckOut,
    DosageIn,
    ImplicatedItemOut,
    Include,
    IngredientOut,
    IssueOut,
    ItemStatusOut,
    MedicationIn,
    NotCheckableOut,
    UnresolvedCodeOut,
)

__all__ = ["allergy_inputs", "answer_fields", "citations_out", "medication_inputs"]


def citations_out(citations: Iterable[CitationRef]) -> list[CitationOut]:
    return [CitationOut(id=c.id, text=c.text, url=c.url) for c in citations]


def answer_fields(
    result: CheckResult,
    include: Sequence[Include],
    *,
    patient_ref: str | None = None,
    card_renderer: IssueCardRenderer | None = None,
) -> dict[str, Any]:
    """The fields of a :class:`CheckResponse` for ``result``: at most :data:`MAX_ISSUES` issues
    (the most severe; the engine orders them so), the rest counted in ``issues_omitted``."""
    shown = result.issues[:MAX_ISSUES]
    fields: dict[str, Any] = {
        "kb_version": result.kb_version,
        "interruptive": result.interruptive,
        "issues_omitted": len(result.issues) - len(shown),
        "items": [
            ItemStatusOut(
                item_id=item.item_id,
                kind=item.kind,
                role=item.role,
                label=item.label,
                status=item.status,
                ingredients=[IngredientOut(rxcui=i.rxcui, name=i.name) for i in item.ingredients],
                without_rules=list(item.without_rules),
                screened_against=result.kb_version if item.status == "checked" else None,
                dose=item.dose,
            )
            for item in result.items
        ],
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
                citations=citations_out(issue.citations),
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
                citations=citations_out(c.citations),
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
        if card_renderer is None:
            raise RuntimeError("include=cds-card needs the card renderer (create_app wires it)")
        fields["cds_cards"] = [
            card_renderer(issue, kb_version=result.kb_version) for issue in shown
        ]
    return fields


def _label(item: MedicationIn | AllergyIn, codings: Sequence[Coding], name_of: CodingNamer) -> str:
    """The caller's label, else its text, a coding's display, the RxNorm name, ``system|code``."""
    if item.label:
        return item.label
    if item.text:
        return item.text
    named = first_display(codings) or name_of(codings)
    if named:
        return named
    first = codings[0]  # the schema requires a coding when there is no text
    return f"{first.system}|{first.code}"


def medication_inputs(
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
                dosage=_dosage(item.dosage),
            )
        )
    return inputs


_PERIOD_DAYS = {"h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0}


def _dosage(given: DosageIn | None) -> Dosage | None:
    if given is None:
        return None
    per_day = None
    if given.period is not None and given.period_unit is not None:
        per_day = administrations_per_day(
            given.frequency, given.period * _PERIOD_DAYS[given.period_unit]
        )
    dose = None if given.dose is None else DoseQuantity(given.dose.value, given.dose.unit)
    ceiling = given.max_per_day
    return Dosage(
        dose,
        per_day,
        given.as_needed,
        None if ceiling is None else DoseQuantity(ceiling.value, ceiling.unit),
    )


def allergy_inputs(items: Sequence[AllergyIn], name_of: CodingNamer) -> list[AllergyInput]:
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
