"""CDS Hooks 2.0 card rendering of medication-safety issues, validated structurally."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support.tiny_kb import (
    DictResolver,
    by_rule,
    rendering_issues,
    tiny_kb,
    tiny_resolver,
    unscreened_issues,
)

from ehr.modules.cds_hooks.medication_cards import OVERRIDE_REASON_SYSTEM, to_cds_card
from ehr.modules.medication_safety.issues import (
    ImplicatedItem,
    Issue,
    IssueCategory,
    MatchedIngredient,
    Policy,
)
from ehr.modules.medication_safety.knowledge import CitationRef, Display, KnowledgeBase, Severity

__all__ = ["tiny_kb", "tiny_resolver"]  # the fixtures

# CDS Hooks 2.0 Card fields (https://cds-hooks.hl7.org/2.0/#card-attributes).
CARD_FIELDS = {"uuid", "summary", "detail", "indicator", "source", "suggestions",
               "selectionBehavior", "overrideReasons", "links"}  # fmt: skip


@pytest.fixture
def issues(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> list[Issue]:
    return rendering_issues(tiny_kb, tiny_resolver)


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


@pytest.mark.parametrize("category", list(IssueCategory))
def test_an_interruptive_issue_of_every_category_renders(category: IssueCategory) -> None:
    issue = Issue(
        category=category,
        rule_id="DDI-ANY",
        severity=Severity.MAJOR,
        display=Display.INTERRUPTIVE,
        kb_display=Display.INTERRUPTIVE,
        title="Any finding",
        implicated=(ImplicatedItem("medication", "proposed", "d1", "drug", None, ()),),
        mechanism=None,
        consequence=None,
        management="Do something.",
        citations=(),
    )
    card = to_cds_card(issue)
    _check_card(card)
    assert card["overrideReasons"]


def test_unscreened_drafts_are_warning_cards(
    tiny_kb: KnowledgeBase, tiny_resolver: DictResolver
) -> None:
    for issue in unscreened_issues(tiny_kb, tiny_resolver):
        card = to_cds_card(issue)
        _check_card(card)
        assert card["indicator"] == "warning"
        assert card["summary"].startswith("Unable to check")


def test_interruptive_card(issues: list[Issue]) -> None:
    card = to_cds_card(by_rule(issues, "ONC-HP-25"), kb_version="1.0.0+abc")
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
    passive = to_cds_card(by_rule(issues, "DUP-NSAIDS"))
    assert passive["indicator"] == "warning"
    assert "overrideReasons" not in passive
    info = to_cds_card(by_rule(issues, "ALG-PCN-CEPH"))
    assert info["indicator"] == "info"
    assert "overrideReasons" not in info
    assert "links" not in info


def test_indicator_follows_the_policy(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> None:
    policy = Policy(
        interruptive=frozenset({Severity.CONTRAINDICATED, Severity.MAJOR, Severity.MODERATE})
    )
    issue = by_rule(rendering_issues(tiny_kb, tiny_resolver, policy), "DUP-NSAIDS")
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
