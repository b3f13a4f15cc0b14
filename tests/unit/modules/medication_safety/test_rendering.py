"""FHIR R4 DetectedIssue rendering, validated structurally (the CDS Hooks card rendering:
tests/unit/modules/cds_hooks/test_medication_cards.py)."""

from __future__ import annotations

from typing import Any

import pytest
from support.tiny_kb import IN, DictResolver, by_rule, rendering_issues, unscreened_issues

from ehr.modules.medication_safety.issues import Issue, IssueCategory
from ehr.modules.medication_safety.knowledge import RXNORM_SYSTEM, KnowledgeBase
from ehr.modules.medication_safety.rendering import ACT_CODE_SYSTEM, RULE_SYSTEM, to_detected_issue

# FHIR R4 DetectedIssue elements (http://hl7.org/fhir/R4/detectedissue.html).
DETECTED_ISSUE_ELEMENTS = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "status", "code", "severity", "patient",
    "identifiedDateTime", "identifiedPeriod", "author", "implicated", "evidence", "detail",
    "reference", "mitigation",
}  # fmt: skip
DETECTED_ISSUE_STATUS = {"registered", "preliminary", "final", "amended", "corrected",
                         "cancelled", "entered-in-error", "unknown"}  # fmt: skip


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
    return rendering_issues(tiny_kb, tiny_resolver)


def test_every_issue_renders_a_valid_detected_issue(
    issues: list[Issue], tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    every = [*issues, *unscreened_issues(tiny_kb, tiny_resolver)]
    assert {i.category for i in every} == set(IssueCategory) - {IssueCategory.DOSE_RANGE}
    for issue in every:
        _check_detected_issue(to_detected_issue(issue, "Patient/p1"))


def test_an_unscreened_draft_renders_as_unable_to_check(
    tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    found = {i.implicated[0].id: i for i in unscreened_issues(tiny_kb, tiny_resolver)}
    unknown, free_text = found["draft-9"], found["draft-10"]
    resource = to_detected_issue(unknown, "Patient/p1")
    assert resource["code"]["coding"] == [{"system": RULE_SYSTEM, "code": "MS-UNABLE-TO-CHECK"}]
    assert resource["code"]["text"].startswith("Unable to check mystery tablets")
    assert resource["implicated"] == [
        {"display": "mystery tablets", "reference": "MedicationRequest/draft-9"}
    ]
    assert resource["severity"] == "moderate"
    assert "99999999" in resource["detail"]
    assert "free text only" in to_detected_issue(free_text)["detail"]


def test_drug_drug_detected_issue(issues: list[Issue]) -> None:
    resource = to_detected_issue(
        by_rule(issues, "ONC-HP-25"), "Patient/p1", identified="2025-11-21T08:00:00Z"
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
    resource = to_detected_issue(by_rule(issues, "ALG-PCN-CEPH-R1"))
    assert resource["code"]["coding"][0]["code"] == "ALGY"
    assert resource["severity"] == "high"
    assert "patient" not in resource
    assert resource["implicated"] == [{"display": "cephalexin"}]
    assert resource["evidence"][1]["detail"] == [
        {"display": "amoxicillin allergy", "reference": "AllergyIntolerance/alg-1"}
    ]
    assert "reference" not in resource  # paper-b has no URL


def test_severity_mapping(issues: list[Issue]) -> None:
    assert to_detected_issue(by_rule(issues, "DUP-NSAIDS"))["severity"] == "moderate"
    assert to_detected_issue(by_rule(issues, "DUP-NSAIDS"))["code"]["coding"][0]["code"] == (
        "DUPTHPY"
    )
    assert to_detected_issue(by_rule(issues, "ALG-PCN-CEPH"))["severity"] == "low"
