"""What the knowledge base holds, as the API shows it: its summary and its rules.

:func:`knowledge_base_summary`: version, provenance and counts of the knowledge base and the
RxNorm table (with NLM's attribution); :func:`list_rules`: every rule (drug-drug,
cross-sensitivity, duplicate-therapy and the engine's own), filtered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

from ehr.modules.medication_safety.answers import citations_out
from ehr.modules.medication_safety.engine import CROSS_SENSITIVITY_OUTCOMES
from ehr.modules.medication_safety.issues import BUILTIN_RULE_OUTCOMES, IssueCategory
from ehr.modules.medication_safety.knowledge import (
    CrossSensitivityLevel,
    KnowledgeBase,
    LoadedKnowledge,
    Severity,
)
from ehr.modules.medication_safety.schemas import (
    KnowledgeBaseCounts,
    KnowledgeBaseOut,
    RuleList,
    RuleOut,
    RxNormTableOut,
    SourceFileOut,
    SourceList,
)

__all__ = ["RXNORM_ATTRIBUTION", "knowledge_base_summary", "list_rules"]

RXNORM_ATTRIBUTION: Final = (
    "This product uses publicly available data courtesy of the U.S. National Library of "
    "Medicine (NLM), National Institutes of Health, Department of Health and Human Services; "
    "NLM is not responsible for the product and does not endorse or recommend this or any "
    "other product."
)


def knowledge_base_summary(knowledge: LoadedKnowledge) -> KnowledgeBaseOut:
    """Version, provenance and counts of the knowledge base and the RxNorm table."""
    kb, table = knowledge.kb, knowledge.resolver
    interactions = list(kb.interactions.values())
    release = table.release
    label = release.get("rxnorm_release") or release.get("release")
    return KnowledgeBaseOut(
        version=kb.version,
        release=kb.release,
        content_hash=kb.content_hash,
        compiled_at=knowledge.compiled_at,
        sources=[SourceFileOut(file=s.name, sha256=s.sha256) for s in kb.sources],
        counts=KnowledgeBaseCounts(
            ingredients=len(kb.ingredients),
            classes=len(kb.classes),
            citations=len(kb.citations),
            interactions=len(interactions),
            interactions_by_severity=_counted(
                (r.severity.value for r in interactions), [s.value for s in Severity]
            ),
            interactions_by_source_list=_counted((r.source_list for r in interactions), []),
            allergen_groups=len(kb.allergen_groups),
            cross_sensitivities_by_level=_counted(
                (c.level.value for c in kb.cross_sensitivities.values()),
                [level.value for level in CrossSensitivityLevel],
            ),
            duplicate_classes=len(kb.duplicate_classes),
        ),
        rxnorm=RxNormTableOut(
            kind=str(release.get("kind") or "unknown"),
            release=str(label) if label else None,
            concepts=len(table),
            ndc_codes=table.ndc_count,
            attribution=RXNORM_ATTRIBUTION,
        ),
    )


def _counted(values: Iterable[str], order: Sequence[str]) -> dict[str, int]:
    counts = Counter(values)
    keys = [*order, *sorted(k for k in counts if k not in order)]
    return {key: counts.get(key, 0) for key in keys}


def _all_rules(kb: KnowledgeBase) -> list[RuleOut]:
    rules: list[RuleOut] = [
        RuleOut(
            id=rule.id,
            category=IssueCategory.DRUG_DRUG,
            severity=rule.severity,
            display=rule.display,
            sides=[rule.a.label, rule.b.label],
            source_list=rule.source_list,
            citations=citations_out(rule.citations),
        )
        for rule in kb.interactions.values()
    ]
    for cross in kb.cross_sensitivities.values():
        outcome = CROSS_SENSITIVITY_OUTCOMES.get(cross.level)
        rules.append(
            RuleOut(
                id=cross.id,
                category=IssueCategory.DRUG_ALLERGY,
                severity=outcome[0] if outcome else None,
                display=outcome[1] if outcome else None,
                level=cross.level,
                sides=[cross.from_label, cross.target_label],
                citations=citations_out(cross.citations),
            )
        )
    for dup in kb.duplicate_classes.values():
        rules.append(
            RuleOut(
                id=dup.rule_id,
                category=IssueCategory.DUPLICATE_THERAPY,
                severity=dup.severity,
                display=dup.display,
                sides=[dup.label],
                citations=citations_out(dup.citations),
            )
        )
    for limit in kb.dose_limits.values():
        rules.append(
            RuleOut(
                id=limit.id,
                category=IssueCategory.DOSE_RANGE,
                severity=limit.severity,
                display=limit.display,
                sides=[limit.ingredient.name],
                citations=citations_out(limit.citations),
            )
        )
    builtin_sides = {
        IssueCategory.DRUG_ALLERGY: ["proposed medication", "allergy"],
        IssueCategory.DUPLICATE_THERAPY: ["proposed medication", "other medication"],
        IssueCategory.DOSE_RANGE: ["proposed medication"],
        IssueCategory.UNABLE_TO_CHECK: ["proposed medication"],
    }
    for rule_id, (category, severity, display) in BUILTIN_RULE_OUTCOMES.items():
        rules.append(
            RuleOut(
                id=rule_id,
                category=category,
                severity=severity,
                display=display,
                sides=builtin_sides.get(category, []),
                builtin=True,
                citations=[],
            )
        )
    rules.sort(key=lambda r: r.id)
    return rules


def list_rules(
    kb: KnowledgeBase,
    *,
    category: IssueCategory | None = None,
    severity: Severity | None = None,
    source_list: SourceList | None = None,
) -> RuleList:
    """Every rule of ``kb`` (and the engine's own), filtered; sorted by id."""
    items = [
        rule
        for rule in _all_rules(kb)
        if (category is None or rule.category == category)
        and (severity is None or rule.severity == severity)
        and (source_list is None or rule.source_list == source_list)
    ]
    return RuleList(kb_version=kb.version, total=len(items), items=items)
