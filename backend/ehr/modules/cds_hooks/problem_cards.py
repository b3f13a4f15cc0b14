"""``problem-list-item-create``: a problem being added that the problem list already holds.

The hook's ``context.conditions`` is a Bundle of the Condition(s) being recorded. Each is
compared, by its codings (system and code, exact), with the patient's problem list from the
prefetch (``conditions``): an active, recurring or relapsed problem with a shared coding — not
entered-in-error, not refuted — gives a warning card naming it and since when, with a suggestion
to remove the draft (the clinician may keep it: override reasons). A draft repeated within the
same call gives the same card. Drafts without a coded concept are not compared (free text is not
matched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ehr.fhir import bundle_resources, codings, concept_text, status_code
from ehr.modules.cds_hooks.cards import IssuedCard, fingerprint_of, new_card_uuid
from ehr.modules.cds_hooks.orders import draft_reference
from ehr.modules.cds_hooks.schemas import Action, Card, Coding, Source, Suggestion

__all__ = ["DUPLICATE_PROBLEM_RULE", "duplicate_problem_cards", "new_conditions"]

DUPLICATE_PROBLEM_RULE: Final = "problem:duplicate-problem-list-item"
_TOPIC_SYSTEM: Final = "urn:ehr:cds:problem-list"
_SOURCE: Final = "EHR problem list checks"
_CURRENT: Final = frozenset({"active", "recurrence", "relapse"})
_NOT_A_PROBLEM: Final = frozenset({"entered-in-error", "refuted"})
_OVERRIDE_REASONS: Final = (
    ("new-episode", "A new episode of the problem"),
    ("different-laterality-or-site", "Different site or laterality"),
    ("existing-entry-wrong", "The existing entry is wrong and will be corrected"),
)


def new_conditions(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Conditions of ``context.conditions`` (a Bundle)."""
    return [
        r
        for r in bundle_resources(context.get("conditions"))
        if r.get("resourceType") == "Condition"
    ]


def _codes(resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(c.system, c.code) for c in codings(resource.get("code")) if c.system and c.code}


def _label(resource: Mapping[str, Any]) -> str:
    code = resource.get("code")
    text = concept_text(code)
    if text:
        return text
    first = next(iter(codings(code, limit=1)), None)
    return (first.display or first.code or "this problem") if first else "this problem"


def _on_list(resource: Mapping[str, Any]) -> bool:
    if resource.get("resourceType") != "Condition":
        return False
    if status_code(resource.get("verificationStatus")) in _NOT_A_PROBLEM:
        return False
    return status_code(resource.get("clinicalStatus")) in _CURRENT


def _since(resource: Mapping[str, Any]) -> str:
    for name in ("onsetDateTime", "recordedDate"):
        value = resource.get(name)
        if isinstance(value, str) and value:
            return f" since {value[:10]}"
    return ""


def _card(draft: Mapping[str, Any], existing: str, patient_id: str, key: str) -> IssuedCard:
    label = _label(draft)
    summary = f"Already on the problem list: {label}"
    if len(summary) > 139:
        summary = summary[:138].rstrip() + "…"
    reference = draft_reference(draft)
    suggestions = (
        [
            Suggestion(
                label="Do not add the duplicate problem",
                uuid=new_card_uuid(),
                is_recommended=True,
                actions=[
                    Action(
                        type="delete",
                        description=f"Remove the draft problem {label}",
                        resource_id=reference,
                    )
                ],
            )
        ]
        if reference is not None
        else None
    )
    card = Card(
        uuid=new_card_uuid(),
        summary=summary,
        indicator="warning",
        detail=f"{existing}. Update the existing entry instead of adding a second one.",
        source=Source(
            label=_SOURCE,
            topic=Coding(
                system=_TOPIC_SYSTEM,
                code=DUPLICATE_PROBLEM_RULE,
                display="Duplicate problem-list item",
            ),
        ),
        suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=[
            Coding(system=_TOPIC_SYSTEM, code=code, display=display)
            for code, display in _OVERRIDE_REASONS
        ],
    )
    return IssuedCard(
        card=card,
        rule_id=DUPLICATE_PROBLEM_RULE,
        fingerprint=fingerprint_of(patient_id, DUPLICATE_PROBLEM_RULE, key),
    )


def duplicate_problem_cards(
    drafts: Sequence[Mapping[str, Any]],
    problem_list: Sequence[Mapping[str, Any]],
    *,
    patient_id: str,
) -> list[IssuedCard]:
    """Cards for drafts the problem list already holds (see the module doc)."""
    draft_refs = {draft_reference(d) for d in drafts}
    listed = [
        (resource, _codes(resource))
        for resource in problem_list
        if _on_list(resource) and draft_reference(resource) not in draft_refs
    ]
    cards: list[IssuedCard] = []
    seen: list[set[tuple[str, str]]] = []
    for draft in drafts:
        codes = _codes(draft)
        if not codes:
            continue
        key = draft_reference(draft) or ",".join(sorted(f"{s}|{c}" for s, c in codes))
        match = next((r for r, listed_codes in listed if listed_codes & codes), None)
        if match is not None:
            existing = f"{_label(match)} is on the problem list{_since(match)}"
            cards.append(_card(draft, existing, patient_id, key))
        elif any(prior & codes for prior in seen):
            cards.append(
                _card(draft, "The same problem is added twice in this request", patient_id, key)
            )
        seen.append(codes)
    return cards
