"""Engine issues as FHIR R4 ``DetectedIssue`` resources and CDS Hooks 2.0 cards (plain dicts).

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

CDS card (``to_cds_card``)
- ``summary`` (< 140 characters, ellipsised), ``indicator`` from the display after policy
  (interruptive → ``critical``, passive → ``warning``, informational → ``info``), ``detail``
  markdown (severity, consequence, mechanism, management, note, citations; free text escaped),
  ``source`` ``{label, url, topic}`` (topic = the rule id coding), ``uuid`` (random v4),
  ``links`` to cited URLs, and ``overrideReasons`` on interruptive cards only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from ehr.modules.medication_safety.engine import ImplicatedItem, Issue, IssueCategory
from ehr.modules.medication_safety.kb_sources import Display, Severity
from ehr.modules.medication_safety.normalisation import RXNORM_SYSTEM

__all__ = [
    "ACT_CODE_SYSTEM",
    "CLASS_SYSTEM",
    "OVERRIDE_REASON_SYSTEM",
    "RULE_SYSTEM",
    "SOURCE_LABEL",
    "to_cds_card",
    "to_detected_issue",
]

ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RULE_SYSTEM: Final = "urn:ehr:medication-safety:rule"
CLASS_SYSTEM: Final = "urn:ehr:medication-safety:class"
OVERRIDE_REASON_SYSTEM: Final = "urn:ehr:medication-safety:override-reason"
SOURCE_LABEL: Final = "EHR medication-safety knowledge base"
SUMMARY_MAX: Final = 139

_ACT_CODES: Final[Mapping[IssueCategory, tuple[str, str]]] = {
    IssueCategory.DRUG_DRUG: ("DRG", "Drug Interaction Alert"),
    IssueCategory.DRUG_ALLERGY: ("ALGY", "Allergy Alert"),
    IssueCategory.DUPLICATE_THERAPY: ("DUPTHPY", "Duplicate Therapy Alert"),
}
_FHIR_SEVERITY: Final[Mapping[Severity, str]] = {
    Severity.CONTRAINDICATED: "high",
    Severity.MAJOR: "high",
    Severity.MODERATE: "moderate",
    Severity.MINOR: "low",
}
_INDICATOR: Final[Mapping[Display, str]] = {
    Display.INTERRUPTIVE: "critical",
    Display.PASSIVE: "warning",
    Display.INFORMATIONAL: "info",
}
_COMMON_REASONS: Final = (
    ("benefit-outweighs-risk", "Benefit outweighs the risk"),
    ("will-monitor", "Will monitor or adjust the dose"),
    ("not-applicable", "Alert does not apply to this patient"),
)
_CATEGORY_REASONS: Final[Mapping[IssueCategory, tuple[tuple[str, str], ...]]] = {
    IssueCategory.DRUG_DRUG: (("tolerated-previously", "Patient has tolerated the combination"),),
    IssueCategory.DRUG_ALLERGY: (("tolerated-previously", "Patient has tolerated the drug"),),
    IssueCategory.DUPLICATE_THERAPY: (("intended-duplicate", "Duplicate therapy is intended"),),
}
_MARKDOWN_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>#|])")


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


def _citation_url(issue: Issue) -> str | None:
    return next((c.url for c in issue.citations if c.url), None)


def _detail_text(issue: Issue) -> str:
    parts = [p for p in (issue.consequence, issue.mechanism) if p]
    parts.append(f"Management: {issue.management}")
    if issue.note:
        parts.append(f"Note: {issue.note}")
    parts.append(f"Severity: {issue.severity.value} (rule {issue.rule_id}).")
    return " ".join(parts)


def to_detected_issue(
    issue: Issue, patient_ref: str | None = None, *, identified: str | None = None
) -> dict[str, Any]:
    """A FHIR R4 DetectedIssue for ``issue`` (``identified``: an ISO dateTime, optional)."""
    act_code, act_display = _ACT_CODES[issue.category]
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": {
            "coding": [
                {"system": ACT_CODE_SYSTEM, "code": act_code, "display": act_display},
                {"system": RULE_SYSTEM, "code": issue.rule_id},
            ],
            "text": issue.title,
        },
        "severity": _FHIR_SEVERITY[issue.severity],
    }
    if patient_ref:
        resource["patient"] = {"reference": patient_ref}
    if identified:
        resource["identifiedDateTime"] = identified
    resource["implicated"] = [_reference(i) for i in issue.implicated if i.kind == "medication"]
    resource["evidence"] = [_evidence(i) for i in issue.implicated]
    resource["detail"] = _detail_text(issue)
    url = _citation_url(issue)
    if url:
        resource["reference"] = url
    return resource


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _summary(issue: Issue) -> str:
    summary = " ".join(issue.title.split())
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
    return summary


def _card_detail(issue: Issue) -> str:
    lines = [
        f"**Severity:** {issue.severity.value} · **Rule:** {_md(issue.rule_id)}",
        "",
        "**Involves:** " + "; ".join(_md(i.label) for i in issue.implicated),
    ]
    if issue.consequence:
        lines += ["", f"**Consequence:** {_md(issue.consequence)}"]
    if issue.mechanism:
        lines += ["", f"**Mechanism:** {_md(issue.mechanism)}"]
    lines += ["", f"**Management:** {_md(issue.management)}"]
    if issue.note:
        lines += ["", f"**Note:** {_md(issue.note)}"]
    if issue.citations:
        lines += ["", "**Sources:**"]
        for citation in issue.citations:
            text = _md(citation.text)
            lines.append(f"- [{text}]({citation.url})" if citation.url else f"- {text}")
    return "\n".join(lines)


def to_cds_card(issue: Issue, *, kb_version: str | None = None) -> dict[str, Any]:
    """A CDS Hooks 2.0 card for ``issue`` (``kb_version`` is appended to the source label)."""
    url = _citation_url(issue)
    source: dict[str, Any] = {
        "label": f"{SOURCE_LABEL} {kb_version}" if kb_version else SOURCE_LABEL,
        "topic": {"system": RULE_SYSTEM, "code": issue.rule_id, "display": _summary(issue)},
    }
    if url:
        source["url"] = url
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(issue),
        "indicator": _INDICATOR[issue.display],
        "detail": _card_detail(issue),
        "source": source,
    }
    links = [
        {"label": _link_label(c.text), "url": c.url, "type": "absolute"}
        for c in issue.citations
        if c.url
    ]
    if links:
        card["links"] = links
    if issue.display is Display.INTERRUPTIVE:
        reasons = (*_COMMON_REASONS, *_CATEGORY_REASONS[issue.category])
        card["overrideReasons"] = [
            {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
            for code, display in reasons
        ]
    return card


def _link_label(text: str) -> str:
    return text if len(text) <= 80 else text[:79].rstrip() + "…"
