"""problem-list-item-create: a problem the list already holds gives one warning card."""

from __future__ import annotations

from typing import Any

from ehr.modules.cds_hooks.definitions import SERVICES, discovery
from ehr.modules.cds_hooks.problem_cards import (
    DUPLICATE_PROBLEM_RULE,
    duplicate_problem_cards,
    new_conditions,
)

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


def _condition(
    ident: str,
    code: str,
    *,
    clinical: str = "active",
    system: str = SNOMED,
    verification: str = "confirmed",
    text: str = "Asthma",
) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": ident,
        "clinicalStatus": {"coding": [{"code": clinical}]},
        "verificationStatus": {"coding": [{"code": verification}]},
        "code": {"coding": [{"system": system, "code": code}], "text": text},
        "onsetDateTime": "2019-04-02",
    }


def test_a_problem_already_listed_gives_a_warning_with_a_removal_suggestion() -> None:
    cards = duplicate_problem_cards(
        [_condition("draft-1", "195967001")],
        [_condition("c1", "195967001"), _condition("c2", "38341003", text="Hypertension")],
        patient_id="p1",
    )
    assert len(cards) == 1
    card = cards[0].card
    assert cards[0].rule_id == DUPLICATE_PROBLEM_RULE
    assert card.indicator == "warning"
    assert card.summary == "Already on the problem list: Asthma"
    assert "since 2019-04-02" in (card.detail or "")
    assert card.suggestions is not None
    assert card.suggestions[0].actions[0].resource_id == "Condition/draft-1"


def test_resolved_refuted_and_erroneous_entries_and_other_codes_do_not_count() -> None:
    listed = [
        _condition("r", "195967001", clinical="resolved"),
        _condition("x", "195967001", verification="refuted"),
        _condition("e", "195967001", verification="entered-in-error"),
        _condition("i", "J45.909", system=ICD10),  # another system: not the same coding
    ]
    assert duplicate_problem_cards([_condition("d", "195967001")], listed, patient_id="p") == []


def test_the_same_problem_twice_in_one_request() -> None:
    cards = duplicate_problem_cards(
        [_condition("d1", "195967001"), _condition("d2", "195967001")], [], patient_id="p"
    )
    assert [c.card.summary for c in cards] == ["Already on the problem list: Asthma"]
    assert "twice in this request" in (cards[0].card.detail or "")


def test_the_hook_is_served_and_reads_its_bundle() -> None:
    assert SERVICES["problem-list-item-create"].prefetch.keys() == {"patient", "conditions"}
    assert "problem-list-item-create" in {s.hook for s in discovery().services}
    context = {
        "conditions": {"resourceType": "Bundle", "entry": [{"resource": _condition("a", "1")}]}
    }
    assert [c["id"] for c in new_conditions(context)] == ["a"]
    assert new_conditions({"conditions": "not a bundle"}) == []
