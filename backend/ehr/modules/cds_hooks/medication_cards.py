"""Medication-safety findings as CDS Hooks 2.0 cards.

The issues come from :mod:`ehr.modules.medication_safety` (``CheckResult``); this module renders
them (the order hooks, ``patient-view``, ``encounter-discharge``, ``allergyintolerance-create``
and the medication-safety API's ``include=cds-card``, which is handed :func:`to_cds_card` by the
app).

Card (``to_cds_card``)
- ``summary`` (< 140 characters, ellipsised), ``indicator`` from the display after policy
  (interruptive → ``critical``, passive → ``warning``, informational → ``info``), ``detail``
  markdown (severity, consequence, mechanism, management, note, citations; free text escaped),
  ``source`` ``{label, url, topic}`` (topic = the rule id coding), ``uuid`` (random v4),
  ``links`` to cited URLs, and ``overrideReasons`` on interruptive cards only.

:func:`medication_cards`: one card per issue of a call, with the suggestions of
:mod:`.medication_suggestions` (remove or replace the draft, stop a duplicated active order) and a
fingerprint of what it is about (the rule and the implicated items, not their roles: at
order-select the other drafts are context, at order-sign proposed). :func:`allergy_reminder_cards`:
``patient-view``'s reminder of each active high-criticality allergy.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.modules.cds_hooks.cards import (
    CARE_GAP_TOPIC_SYSTEM,
    IssuedCard,
    fingerprint_of,
    new_card_uuid,
)
from ehr.modules.cds_hooks.medication_suggestions import suggestions_for
from ehr.modules.cds_hooks.schemas import SUMMARY_MAX_CHARS, Card, Coding, Source
from ehr.modules.medication_safety import (
    RULE_SYSTEM,
    AllergyInput,
    CheckResult,
    Display,
    Issue,
    IssueCategory,
    allergy_from_fhir,
    citation_url,
    issue_summary,
)

__all__ = [
    "OVERRIDE_REASON_SYSTEM",
    "SOURCE_LABEL",
    "allergy_reminder_cards",
    "medication_cards",
    "to_cds_card",
]

OVERRIDE_REASON_SYSTEM: Final = "urn:ehr:medication-safety:override-reason"
SOURCE_LABEL: Final = "EHR medication-safety knowledge base"

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
    IssueCategory.DOSE_RANGE: (("dose-verified", "Dose verified for this patient and indication"),),
    IssueCategory.UNABLE_TO_CHECK: (("checked-manually", "Checked the medication by hand"),),
}
_MARKDOWN_SPECIAL: Final = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


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
    url = citation_url(issue)
    source: dict[str, Any] = {
        "label": f"{SOURCE_LABEL} {kb_version}" if kb_version else SOURCE_LABEL,
        "topic": {
            "system": RULE_SYSTEM,
            "code": issue.rule_id,
            "display": issue_summary(issue, SUMMARY_MAX_CHARS),
        },
    }
    if url:
        source["url"] = url
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": issue_summary(issue, SUMMARY_MAX_CHARS),
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
        reasons = (*_COMMON_REASONS, *_CATEGORY_REASONS.get(issue.category, ()))
        card["overrideReasons"] = [
            {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
            for code, display in reasons
        ]
    return card


def _link_label(text: str) -> str:
    return text if len(text) <= 80 else text[:79].rstrip() + "…"


def _issue_fingerprint(issue: Issue, patient_id: str) -> str:
    # Not the roles: at order-select the other drafts are context, at order-sign proposed.
    items = sorted({i.reference or i.id for i in issue.implicated})
    return fingerprint_of(patient_id, issue.rule_id, *items)


def medication_cards(
    result: CheckResult,
    *,
    patient_id: str,
    drafts: Mapping[str, Mapping[str, Any]],
    active_orders: Mapping[str, Mapping[str, Any]],
) -> list[IssuedCard]:
    """One card per issue (suggestions as in the module doc); ``drafts`` and ``active_orders``
    map references (``MedicationRequest/1``) to the resources."""
    issued: list[IssuedCard] = []
    for issue in result.issues:
        data = to_cds_card(issue, kb_version=result.kb_version)
        suggestions = suggestions_for(issue, drafts, active_orders)
        if suggestions:
            data["suggestions"] = [
                s.model_dump(by_alias=True, exclude_none=True) for s in suggestions
            ]
            data["selectionBehavior"] = "at-most-one"
        issued.append(
            IssuedCard(
                card=Card.model_validate(data),
                rule_id=issue.rule_id,
                fingerprint=_issue_fingerprint(issue, patient_id),
            )
        )
    return issued


def allergy_reminder_cards(
    allergies: Sequence[Mapping[str, Any]], patient_id: str
) -> list[IssuedCard]:
    """A reminder card for each active high-criticality AllergyIntolerance of the chart."""
    cards: list[IssuedCard] = []
    for resource in allergies:
        if resource.get("criticality") != "high":
            continue
        found = allergy_from_fhir(resource, may_see_restricted=False)
        if not isinstance(found, AllergyInput):
            continue
        reference = found.reference or found.id
        card = Card(
            uuid=new_card_uuid(),
            summary=f"High-criticality allergy: {found.label}"[:139],
            indicator="warning",
            detail=(
                "An active allergy or intolerance recorded with **high** criticality: exposure "
                "may cause a life-threatening reaction. Confirm it is still accurate and avoid "
                "the substance and cross-reacting drugs."
            ),
            source=Source(
                label="EHR clinical decision support",
                topic=Coding(
                    system=CARE_GAP_TOPIC_SYSTEM,
                    code="reminder:high-criticality-allergy",
                    display="Active high-criticality allergy",
                ),
            ),
        )
        cards.append(
            IssuedCard(
                card=card,
                rule_id="reminder:high-criticality-allergy",
                fingerprint=fingerprint_of(patient_id, "allergy", reference),
            )
        )
    return cards
