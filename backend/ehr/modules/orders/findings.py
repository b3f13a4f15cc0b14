"""The sign checks' findings, the block/override decision and what an override records (pure).

Findings come from two checks (ADR 0020): the medication-safety engine's issues (through
``MedicationChecks.check_orders``, the CDS order-sign entry point: one engine) and the
duplicate-order check (:func:`duplicate_findings`: a placed order of the patient with the same
code within the tenant's window). A finding is *interruptive* when the tenant's display policy
says so (medication safety: its display policy; duplicates: the order policy's
``duplicate_display``).

:func:`decide` — no interruptive finding: sign. Interruptive findings and no override: 409
``order-sign-blocked`` with the findings. An override (a reason, optionally the rules it
overrides): every interruptive finding must be covered (``rules`` absent = all of them), else
409 again naming the ones not covered. Each overridden finding becomes a DetectedIssue
(:func:`detected_issue`: code, severity, detail, ``implicated`` the order, ``mitigation`` with
the signer and the reason) written in the sign's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ehr.fhir import codings, concept_text, parse_fhir_date
from ehr.modules.medication_safety import (
    RULE_SYSTEM,
    CheckResult,
    Display,
    IssueCategory,
    issue_summary,
)
from ehr.modules.orders.errors import OrderSignBlocked
from ehr.modules.orders.schemas import Finding, Override

__all__ = [
    "DUPLICATE_ORDER_RULE",
    "ORDER_RULE_SYSTEM",
    "SignDecision",
    "decide",
    "detected_issue",
    "duplicate_findings",
    "medication_findings",
]

DUPLICATE_ORDER_RULE: Final = "order:duplicate-order"
ORDER_RULE_SYSTEM: Final = "urn:ehr:order-check"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MITIGATION_SYSTEM: Final = "urn:ehr:order-sign:mitigation"
# The placed orders a new one may duplicate (a draft or a revoked order is not placed).
PLACED_STATUSES: Final = frozenset({"active", "on-hold", "completed"})
_ACT_CODES: Final[Mapping[str, tuple[str, str]]] = {
    IssueCategory.DRUG_DRUG.value: ("DRG", "Drug Interaction Alert"),
    IssueCategory.DRUG_ALLERGY.value: ("ALGY", "Allergy Alert"),
    IssueCategory.DUPLICATE_THERAPY.value: ("DUPTHPY", "Duplicate Therapy Alert"),
    IssueCategory.DOSE_RANGE.value: ("DOSE", "Dosage problem"),
}
_SEVERITY: Final = {
    "contraindicated": "high",
    "major": "high",
    "moderate": "moderate",
    "minor": "low",
}


def medication_findings(result: CheckResult | None) -> list[Finding]:
    """The engine's issues as findings (most severe first, as the engine orders them)."""
    if result is None:
        return []
    findings: list[Finding] = []
    for issue in result.issues:
        detail = " ".join(
            part for part in (issue.consequence, f"Management: {issue.management}") if part
        )
        display = issue.display.value if isinstance(issue.display, Display) else "passive"
        findings.append(
            Finding(
                rule=issue.rule_id,
                category=issue.category.value,
                severity=issue.severity.value,
                display=display,
                summary=issue_summary(issue, 200),
                detail=detail[:2000],
                implicated=[item.reference or item.label for item in issue.implicated],
            )
        )
    return findings


def _codes(resource: Mapping[str, Any], field: str) -> set[tuple[str, str]]:
    return {(c.system, c.code) for c in codings(resource.get(field)) if c.system is not None}


def duplicate_findings(
    order: Mapping[str, Any],
    existing: Sequence[Mapping[str, Any]],
    *,
    code_field: str,
    window: dt.timedelta,
    display: str,
    now: dt.datetime,
) -> list[Finding]:
    """A finding when a placed order of the patient (``existing``) has the same code as
    ``order`` (``code_field``: ``code``; ``performerType`` for a referral) and was authored in
    ``window`` before ``now``; the order itself never counts."""
    codes = _codes(order, code_field)
    reference = f"{order.get('resourceType')}/{order.get('id')}"
    if not codes:
        return []
    matches: list[tuple[dt.datetime, str]] = []
    for resource in existing:
        other = f"{resource.get('resourceType')}/{resource.get('id')}"
        if other == reference or resource.get("status") not in PLACED_STATUSES:
            continue
        authored = parse_fhir_date(resource.get("authoredOn"))
        if authored is None or not (
            now - window <= authored.start <= now + dt.timedelta(minutes=5)
        ):
            continue
        if _codes(resource, code_field) & codes:
            matches.append((authored.start, other))
    if not matches:
        return []
    when = max(matches)[0]
    hours = max(0, int((now - when).total_seconds() // 3600))
    ago = "less than 1 hour ago" if hours == 0 else f"{hours} h ago"
    label = concept_text(order.get(code_field)) or sorted(codes)[0][1]
    window_hours = int(window.total_seconds() // 3600)
    return [
        Finding(
            rule=DUPLICATE_ORDER_RULE,
            category="duplicate-order",
            severity="moderate",
            display="interruptive" if display == "interruptive" else "passive",
            summary=f"Duplicate order: {label} was ordered {ago}"[:200],
            detail=(
                f"The same code was ordered for this patient within {window_hours} h "
                f"({len(matches)} order(s)). Repeat it only when clinically indicated."
            ),
            implicated=[reference, *sorted({ref for _, ref in matches})][:10],
        )
    ]


@dataclass(frozen=True, slots=True)
class SignDecision:
    """What signing may do: ``overridden`` are the interruptive findings the override covers."""

    findings: tuple[Finding, ...]
    overridden: tuple[Finding, ...]


def decide(findings: Sequence[Finding], override: Override | None) -> SignDecision:
    """Sign, or 409 ``order-sign-blocked`` (the module doc)."""
    blocking = [f for f in findings if f.display == "interruptive"]
    if not blocking:
        return SignDecision(findings=tuple(findings), overridden=())
    shown = [f.model_dump(mode="json") for f in findings]
    if override is None:
        raise OrderSignBlocked(
            f"{len(blocking)} interruptive finding(s); sign again with an override reason.",
            extra={"findings": shown, "blocking_rules": sorted({f.rule for f in blocking})},
        )
    if override.rules is not None:
        missing = sorted({f.rule for f in blocking} - set(override.rules))
        if missing:
            raise OrderSignBlocked(
                "The override does not cover every interruptive finding.",
                extra={"findings": shown, "blocking_rules": missing, "not_overridden": missing},
            )
    return SignDecision(findings=tuple(findings), overridden=tuple(blocking))


def detected_issue(
    finding: Finding,
    *,
    order_reference: str,
    patient_id: str,
    signer: Mapping[str, Any],
    reason: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """The DetectedIssue recording one overridden finding: its code (the v3 ActCode of the
    category and the rule), severity, detail, the order (and the other items) implicated, and
    the mitigation — overridden at signing by the signer, for the reason given."""
    when = now.isoformat(timespec="seconds")
    rule_system = ORDER_RULE_SYSTEM if finding.rule == DUPLICATE_ORDER_RULE else RULE_SYSTEM
    coding: list[dict[str, Any]] = []
    act = _ACT_CODES.get(finding.category)
    if act is not None:
        coding.append({"system": ACT_CODE, "code": act[0], "display": act[1]})
    coding.append({"system": rule_system, "code": finding.rule})
    implicated = [order_reference] + [
        ref for ref in finding.implicated if ref != order_reference and "/" in ref
    ]
    return {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": {"coding": coding, "text": finding.summary},
        "severity": _SEVERITY.get(finding.severity, "moderate"),
        "patient": {"reference": f"Patient/{patient_id}"},
        "identifiedDateTime": when,
        "author": dict(signer),
        "implicated": [{"reference": ref} for ref in implicated[:10]],
        "detail": (finding.detail or finding.summary)[:2000],
        "mitigation": [
            {
                "action": {
                    "coding": [
                        {
                            "system": MITIGATION_SYSTEM,
                            "code": "override",
                            "display": "Overridden at signing",
                        }
                    ],
                    "text": reason,
                },
                "date": when,
                "author": dict(signer),
            }
        ],
    }
