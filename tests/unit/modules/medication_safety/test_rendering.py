"""FHIR R4 DetectedIssue and CDS Hooks 2.0 card rendering, validated structurally."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tiny_kb import IN, DictResolver, med

from ehr.modules.medication_safety.engine import (
    AllergyInput,
    Coding,
    ImplicatedItem,
    Issue,
    IssueCategory,
    MatchedIngredient,
    MedicationInput,
    Policy,
    check,
)
from ehr.modules.medication_safety.kb_compiler import CitationRef, KnowledgeBase
from ehr.modules.medication_safety.kb_sources import Display, Severity
from ehr.modules.medication_safety.normalisation import RXNORM_SYSTEM
from ehr.modules.medication_safety.rendering import (
    ACT_CODE_SYSTEM,
    OVERRIDE_REASON_SYSTEM,
    RULE_SYSTEM,
    to_cds_card,
    to_detected_issue,
)

# FHIR R4 DetectedIssue elements (http://hl7.org/fhir/R4/detectedissue.html).
DETECTED_ISSUE_ELEMENTS = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "status", "code", "severity", "patient",
    "identifiedDateTime", "identifiedPeriod", "author", "implicated", "evidence", "detail",
    "reference", "mitigation",
}  # fmt: skip
DETECTED_ISSUE_STATUS = {"registered", "preliminary", "final", "amended", "corrected",
                         "cancelled", "entered-in-error", "unknown"}  # fmt: skip
# CDS Hooks 2.0 Card fields (https://cds-hooks.hl7.org/2.0/#card-attributes).
CARD_FIELDS = {"uuid", "summary", "detail", "indicator", "source", "suggestions",
               "selectionBehavior", "overrideReasons", "links"}  # fmt: skip


def _issues(kb: KnowledgeBase, resolver: DictResolver, policy: Policy = Policy()) -> list[Issue]:
    allergy = AllergyInput(
        "alg-1",
        "amoxicillin allergy",
        (Coding(RXNORM_SYSTEM, IN["amoxicillin"]),),
        reference="AllergyIntolerance/alg-1",
    )
    proposed = [
        med("clarithromycin", item_id="draft-1"),
        med("cephalexin", item_id="draft-2"),
        med("ibuprofen", item_id="draft-3"),
        med("ceftriaxone", item_id="draft-4"),
    ]
    active = [
        MedicationInput(
            id="ms-1",
            label="simvastatin 20 mg",
            codings=(Coding(RXNORM_SYSTEM, IN["simvastatin"]),),
            reference="MedicationStatement/ms-1",
        ),
        med("naproxen", item_id="ms-2"),
    ]
    result = check(proposed, active, [allergy], kb=kb, resolver=resolver, policy=policy)
    return list(result.issues)


def _by_rule(issues: list[Issue], rule_id: str) -> Issue:
    return next(i for i in issues if i.rule_id == rule_id)


def _check_reference(ref: dict[str, Any]) -> None:
    assert set(ref) <= {"reference", "display"}
    assert ref["display"]
    if "reference" in ref:
        assert ref["reference"].count("/") == 1


def _check_codeable_concept(concept: dict[str, Any]) -> None:
    assert set(concept) <= {"coding", "text"}
    for coding in concept.get("coding", []):
        assert set(coding) <= {"system", "code", "display"}
        assert coding["system"]
        assert coding["code"]


def _check_detected_issue(resource: dict[str, Any]) -> None:
    assert set(resource) <= DETECTED_ISSUE_ELEMENTS
    assert resource["resourceType"] == "DetectedIssue"
    assert resource["status"] in DETECTED_ISSUE_STATUS
    assert resource["severity"] in {"high", "moderate", "low"}
    _check_codeable_concept(resource["code"])
    for ref in resource["implicated"]:
        _check_reference(ref)
    for evidence in resource["evidence"]:
        assert set(evidence) <= {"code", "detail"}
        for concept in evidence.get("code", []):
            _check_codeable_concept(concept)
        for ref in evidence["detail"]:
            _check_reference(ref)
    assert isinstance(resource["detail"], str)
    assert "mitigation" not in resource


@pytest.fixture
def issues(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> list[Issue]:
    return _issues(tiny_kb, tiny_resolver)


def test_every_issue_renders_a_valid_detected_issue(issues: list[Issue]) -> None:
    assert {i.category for i in issues} == set(IssueCategory)
    for issue in issues:
        _check_detected_issue(to_detected_issue(issue, "Patient/p1"))


def test_drug_drug_detected_issue(issues: list[Issue]) -> None:
    resource = to_detected_issue(
        _by_rule(issues, "ONC-HP-25"), "Patient/p1", identified="2025-11-21T08:00:00Z"
    )
    assert resource["code"]["coding"] == [
        {"system": ACT_CODE_SYSTEM, "code": "DRG", "display": "Drug Interaction Alert"},
        {"system": RULE_SYSTEM, "code": "ONC-HP-25"},
    ]
    assert resource["severity"] == "high"
    assert resource["patient"] == {"reference": "Patient/p1"}
    assert resource["identifiedDateTime"] == "2025-11-21T08:00:00Z"
    assert resource["implicated"] == [
        {"display": "clarithromycin"},
        {"display": "simvastatin 20 mg", "reference": "MedicationStatement/ms-1"},
    ]
    simva = resource["evidence"][1]
    assert simva["code"][0]["coding"] == [
        {"system": RXNORM_SYSTEM, "code": IN["simvastatin"], "display": "simvastatin"}
    ]
    assert simva["code"][1]["coding"][0]["code"] == "ehr:class/statins-3a4"
    assert "Myopathy" in resource["detail"]
    assert "Management: Do not combine" in resource["detail"]
    assert resource["reference"] == "https://example.org/label-a"


def test_allergy_detected_issue_puts_the_allergy_in_evidence(issues: list[Issue]) -> None:
    resource = to_detected_issue(_by_rule(issues, "ALG-PCN-CEPH-R1"))
    assert resource["code"]["coding"][0]["code"] == "ALGY"
    assert resource["severity"] == "high"
    assert "patient" not in resource
    assert resource["implicated"] == [{"display": "cephalexin"}]
    assert resource["evidence"][1]["detail"] == [
        {"display": "amoxicillin allergy", "reference": "AllergyIntolerance/alg-1"}
    ]
    assert "reference" not in resource  # paper-b has no URL


def test_severity_mapping(issues: list[Issue]) -> None:
    assert to_detected_issue(_by_rule(issues, "DUP-NSAIDS"))["severity"] == "moderate"
    assert to_detected_issue(_by_rule(issues, "DUP-NSAIDS"))["code"]["coding"][0]["code"] == (
        "DUPTHPY"
    )
    assert to_detected_issue(_by_rule(issues, "ALG-PCN-CEPH"))["severity"] == "low"


def _check_card(card: dict[str, Any]) -> None:
    assert set(card) <= CARD_FIELDS
    uuid.UUID(card["uuid"])
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in {"info", "warning", "critical"}
    assert set(card["source"]) <= {"label", "url", "icon", "topic"}
    assert card["source"]["label"]
    assert set(card["source"]["topic"]) <= {"system", "code", "display"}
    for reason in card.get("overrideReasons", []):
        assert set(reason) == {"system", "code", "display"}
    for link in card.get("links", []):
        assert set(link) <= {"label", "url", "type", "appContext"}
        assert link["type"] in {"absolute", "smart"}


def test_every_issue_renders_a_valid_card(issues: list[Issue]) -> None:
    for issue in issues:
        _check_card(to_cds_card(issue))


def test_interruptive_card(issues: list[Issue]) -> None:
    card = to_cds_card(_by_rule(issues, "ONC-HP-25"), kb_version="1.0.0+abc")
    assert card["indicator"] == "critical"
    assert card["source"]["label"].endswith("1.0.0+abc")
    assert card["source"]["url"] == "https://example.org/label-a"
    assert card["source"]["topic"]["code"] == "ONC-HP-25"
    assert {r["system"] for r in card["overrideReasons"]} == {OVERRIDE_REASON_SYSTEM}
    assert "tolerated-previously" in {r["code"] for r in card["overrideReasons"]}
    assert "**Management:** Do not combine" in card["detail"]
    assert "**Mechanism:**" in card["detail"]
    assert "(https://example.org/label-a)" in card["detail"]
    assert card["links"] == [
        {
            "label": "Example label A (FDA prescribing information), 2024.",
            "url": "https://example.org/label-a",
            "type": "absolute",
        }
    ]


def test_non_interruptive_cards_have_no_override_reasons(issues: list[Issue]) -> None:
    passive = to_cds_card(_by_rule(issues, "DUP-NSAIDS"))
    assert passive["indicator"] == "warning"
    assert "overrideReasons" not in passive
    info = to_cds_card(_by_rule(issues, "ALG-PCN-CEPH"))
    assert info["indicator"] == "info"
    assert "overrideReasons" not in info
    assert "links" not in info


def test_indicator_follows_the_policy(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> None:
    policy = Policy(
        interruptive=frozenset({Severity.CONTRAINDICATED, Severity.MAJOR, Severity.MODERATE})
    )
    issue = _by_rule(_issues(tiny_kb, tiny_resolver, policy), "DUP-NSAIDS")
    card = to_cds_card(issue)
    assert card["indicator"] == "critical"
    assert "intended-duplicate" in {r["code"] for r in card["overrideReasons"]}


def _issue(**overrides: Any) -> Issue:
    item = ImplicatedItem(
        "medication", "proposed", "d1", "x" * 200, None, (MatchedIngredient("1", "one"),)
    )
    values: dict[str, Any] = {
        "category": IssueCategory.DRUG_DRUG,
        "rule_id": "DDI-TEST",
        "severity": Severity.MINOR,
        "display": Display.INFORMATIONAL,
        "kb_display": Display.INFORMATIONAL,
        "title": "Interaction: " + "y" * 300,
        "implicated": (item, item),
        "mechanism": None,
        "consequence": None,
        "management": "Watch <script>alert(1)</script> and *this*.",
        "citations": (CitationRef("c", "A [bracketed] citation", None),),
    }
    values.update(overrides)
    return Issue(**values)


def test_long_summary_is_shortened() -> None:
    card = to_cds_card(_issue())
    assert len(card["summary"]) == 139
    assert card["summary"].endswith("…")
    _check_card(card)


def test_markdown_is_escaped() -> None:
    detail = to_cds_card(_issue())["detail"]
    assert "<script>" not in detail
    assert r"\<script\>" in detail
    assert r"\*this\*" in detail
    assert r"A \[bracketed\] citation" in detail
    assert "**Mechanism:**" not in detail


def test_cards_get_fresh_uuids(issues: list[Issue]) -> None:
    issue = issues[0]
    assert to_cds_card(issue)["uuid"] != to_cds_card(issue)["uuid"]
