"""Engine issues as FHIR R4 ``DetectedIssue`` resources (plain dicts); the texts every rendering
of an issue shares; the port through which the CDS Hooks card rendering is plugged in.

DetectedIssue (``to_detected_issue``)
- ``status`` ``final``; ``code``: v3-ActCode ``DRG`` / ``ALGY`` / ``DUPTHPY`` plus the rule id
  (system :data:`RULE_SYSTEM`), text = the issue title; ``severity``: contraindicated and major →
  ``high``, moderate → ``moderate``, minor → ``low`` (the KB severity is also in ``detail``).
- ``implicated``: the medications (``reference`` when the input had one, always ``display``); the
  allergy of a drug-allergy issue is evidence, not implicated.
- ``evidence``: one entry per implicated item and allergy: its matched RxNorm ingredients and the
  class / allergen group / duplicate class that matched, ``detail`` = the item.
- ``detail``: consequence, mechanism, management, member-override note, KB severity.
- ``reference``: the first citation with a URL.
- No ``mitigation``: it records an action taken (``action`` is required); the KB's management
  advice is not one, so it is in ``detail``. The service adds a mitigation when a clinician acts.

Shared texts: :func:`issue_summary` (the title on one line, ellipsised to a length),
:func:`citation_url` (the first cited URL), :data:`RULE_SYSTEM` (the coding system of rule ids).

The API's ``include=cds-card`` representation is a CDS Hooks 2.0 card. Card rendering belongs to
CDS Hooks (``ehr.modules.cds_hooks``), which depends on this module; so this module only declares
the renderer it needs (:class:`IssueCardRenderer`) and the app hands it the implementation
(``app.state.medication_safety_card_renderer``, set in ``ehr.entrypoints.api.create_app``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from ehr.modules.medication_safety.issues import ImplicatedItem, Issue, IssueCategory
from ehr.modules.medication_safety.knowledge import RXNORM_SYSTEM, Severity

__all__ = [
    "ACT_CODE_SYSTEM",
    "CLASS_SYSTEM",
    "RULE_SYSTEM",
    "IssueCardRenderer",
    "citation_url",
    "issue_summary",
    "to_detected_issue",
]

ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RULE_SYSTEM: Final = "urn:ehr:medication-safety:rule"
CLASS_SYSTEM: Final = "urn:ehr:medication-safety:class"

# v3 ActCode detected-issue codes; an unscreened medication has none (our rule coding only).
_ACT_CODES: Final[Mapping[IssueCategory, tuple[str, str]]] = {
    IssueCategory.DRUG_DRUG: ("DRG", "Drug Interaction Alert"),
    IssueCategory.DRUG_ALLERGY: ("ALGY", "Allergy Alert"),
    IssueCategory.DUPLICATE_THERAPY: ("DUPTHPY", "Duplicate Therapy Alert"),
    IssueCategory.DOSE_RANGE: ("DOSE", "Dosage problem"),
}
_FHIR_SEVERITY: Final[Mapping[Severity, str]] = {
    Severity.CONTRAINDICATED: "high",
    Severity.MAJOR: "high",
    Severity.MODERATE: "moderate",
    Severity.MINOR: "low",
}


class IssueCardRenderer(Protocol):
    """Renders an issue as a CDS Hooks 2.0 card (a JSON object); ``kb_version`` is appended to
    the card's source label."""

    def __call__(self, issue: Issue, *, kb_version: str | None = None) -> dict[str, Any]: ...


def citation_url(issue: Issue) -> str | None:
    """The first URL the issue's citations give (``None`` when none has one)."""
    return next((c.url for c in issue.citations if c.url), None)


def issue_summary(issue: Issue, max_length: int) -> str:
    """The issue's title on one line, at most ``max_length`` characters (ellipsised)."""
    summary = " ".join(issue.title.split())
    if len(summary) > max_length:
        summary = summary[: max_length - 1].rstrip() + "…"
    return summary


def _reference(item: ImplicatedItem) -> dict[str, str]:
    ref = {"display": item.label}
    if item.reference:
        ref["reference"] = item.reference
    return ref


def _evidence(item: ImplicatedItem) -> dict[str, Any]:
    codes: list[dict[str, Any]] = [
        {
            "coding": [{"system": RXNORM_SYSTEM, "code": ing.rxcui, "display": ing.name}],
            "text": ing.name,
        }
        for ing in item.ingredients
    ]
    if item.class_id is not None:
        codes.append(
            {
                "coding": [
                    {"system": CLASS_SYSTEM, "code": item.class_id, "display": item.class_label}
                ],
                "text": item.class_label or item.class_id,
            }
        )
    evidence: dict[str, Any] = {"detail": [_reference(item)]}
    if codes:
        evidence["code"] = codes
    return evidence


def _detail_text(issue: Issue) -> str:
    parts = [p for p in (issue.consequence, issue.mechanism) if p]
    parts.append(f"Management: {issue.management}")
    if issue.note:
        parts.append(f"Note: {issue.note}")
    parts.append(f"Severity: {issue.severity.value} (rule {issue.rule_id}).")
    return " ".join(parts)


def _act_code(issue: Issue) -> tuple[str, str] | None:
    return _ACT_CODES.get(issue.category)


def to_detected_issue(
    issue: Issue, patient_ref: str | None = None, *, identified: str | None = None
) -> dict[str, Any]:
    """A FHIR R4 DetectedIssue for ``issue`` (``identified``: an ISO dateTime, optional)."""
    coding: list[dict[str, str]] = []
    act = _act_code(issue)
    if act is not None:
        coding.append({"system": ACT_CODE_SYSTEM, "code": act[0], "display": act[1]})
    coding.append({"system": RULE_SYSTEM, "code": issue.rule_id})
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": {"coding": coding, "text": issue.title},
        "severity": _FHIR_SEVERITY[issue.severity],
    }
    if patient_ref:
        resource["patient"] = {"reference": patient_ref}
    if identified:
        resource["identifiedDateTime"] = identified
    resource["implicated"] = [_reference(i) for i in issue.implicated if i.kind == "medication"]
    resource["evidence"] = [_evidence(i) for i in issue.implicated]
    resource["detail"] = _detail_text(issue)
    url = citation_url(issue)
    if url:
        resource["reference"] = url
    return resource
