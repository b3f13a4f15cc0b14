"""Care-gap and result reminder cards (``care_gap_cards``): every card produced passes the CDS
Hooks models, carries the topic, links and suggestion of its rule, is ordered by severity and
never holds free text from the record; deceased patients get none."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from support.care_gaps import (
    GAP_IDS,
    GAPS,
    KNOWLEDGE,
    PATIENT_ID,
    TODAY,
    all_cards,
    bp_panel,
    busy_charts,
    condition,
    make_chart,
    patient,
    record,
)

from ehr.modules.care_gaps.codes import CODE_SYSTEM_URIS
from ehr.modules.cds_hooks.cards import CARE_GAP_TOPIC_SYSTEM, IssuedCard, fingerprint_of
from ehr.modules.cds_hooks.care_gap_cards import SOURCE_LABEL, care_gap_cards
from ehr.modules.cds_hooks.schemas import SUMMARY_MAX_CHARS, Card

# --------------------------------------------------------------------------- whole cards


@pytest.mark.parametrize(
    "extra",
    [{"deceasedBoolean": True}, {"deceasedDateTime": "2025-01-01"}],
)
def test_deceased_patient_gets_no_cards(extra: dict[str, Any]) -> None:
    pat = patient(age_months=70 * 12, **extra)
    chart = make_chart(pat, [bp_panel(200, 130)], [condition("snomed", "44054006")])
    assert care_gap_cards(chart, today=TODAY, hook="patient-view") == []
    alive = patient(age_months=70 * 12, deceasedBoolean=False)
    assert care_gap_cards(make_chart(alive), today=TODAY, hook="patient-view")


def test_patient_without_id_is_refused() -> None:
    chart = make_chart({"resourceType": "Patient", "birthDate": "1960-01-01"})
    with pytest.raises(ValueError, match="no id"):
        care_gap_cards(chart, today=TODAY, hook="patient-view")


def test_every_rule_is_covered_by_the_card_checks() -> None:
    produced = {item.rule_id for item in all_cards()}
    assert produced == set(GAP_IDS) | {rule.id for rule in KNOWLEDGE.results}


def test_every_card_is_valid() -> None:
    issued = all_cards()
    uuids: set[str] = set()
    for item in issued:
        card = item.card
        wire = card.model_dump(mode="json", by_alias=True, exclude_none=True)
        again = Card.model_validate(wire)
        assert again.summary == card.summary
        assert len(card.summary) <= SUMMARY_MAX_CHARS < 140
        assert card.uuid is not None
        assert card.uuid not in uuids
        uuids.add(card.uuid)
        assert card.detail
        assert card.source.label == SOURCE_LABEL
        assert card.source.topic is not None
        assert card.source.topic.system == CARE_GAP_TOPIC_SYSTEM
        assert card.source.topic.code == item.rule_id
        assert str(card.source.url).startswith("https://")
        assert card.links
        assert all(link.type == "absolute" for link in card.links)
        assert all(str(link.url).startswith("https://") for link in card.links)
        assert item.fingerprint == fingerprint_of(PATIENT_ID, item.rule_id)
        if item.rule_id.startswith("result:"):
            assert card.indicator in ("warning", "critical", "info")
            assert card.suggestions is None
        else:
            assert card.indicator == "info"
        gap = next((gap for gap in GAPS if gap.id == item.rule_id), None)
        if gap is not None and gap.order is not None:
            assert card.selection_behavior == "at-most-one"
            assert card.suggestions is not None
            assert len(card.suggestions) == 1
            suggestion = card.suggestions[0]
            assert suggestion.label == gap.order.label
            assert suggestion.is_recommended is True
            assert suggestion.uuid
            assert suggestion.actions is not None
            assert len(suggestion.actions) == 1
            action = suggestion.actions[0]
            assert action.type == "create"
            assert action.description
            resource = action.resource
            assert resource is not None
            assert resource["resourceType"] == "ServiceRequest"
            assert resource["status"] == "draft"
            assert resource["intent"] == "proposal"
            assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
            coding = resource["code"]["coding"][0]
            assert coding == {
                "system": CODE_SYSTEM_URIS[gap.order.code.system],
                "code": gap.order.code.code,
                "display": gap.order.code.display,
            }
        elif gap is not None:
            assert card.suggestions is None
            assert card.selection_behavior is None


def test_incomplete_chart_is_said_in_every_card() -> None:
    first = next(busy_charts())
    for item in care_gap_cards(first, today=TODAY, hook="patient-view"):
        assert "could not be read" in (item.card.detail or "")
    complete = make_chart(patient(age_months=66 * 12, sex="male"))
    for item in care_gap_cards(complete, today=TODAY, hook="patient-view"):
        assert "could not be read" not in (item.card.detail or "")


def test_order_is_critical_warning_info_then_id() -> None:
    for chart in busy_charts():
        issued = care_gap_cards(chart, today=TODAY, hook="patient-view")
        rank = {"critical": 0, "warning": 1, "info": 2}
        keys = [(rank[item.card.indicator], item.rule_id) for item in issued]
        assert keys == sorted(keys)
    first = care_gap_cards(next(busy_charts()), today=TODAY, hook="patient-view")
    assert [item.card.indicator for item in first][:2] == ["critical", "warning"]


def test_no_free_text_from_the_record_reaches_a_card() -> None:
    marker = "SECRET-NOTE-TEXT"
    pat = patient(age_months=66 * 12, sex="male", text={"div": marker})
    records = [bp_panel(190, 100), record("cvx", "115", dt.date(2010, 1, 1))]
    for _, resource in records:
        resource["note"] = [{"text": marker}]
        resource["text"] = {"status": "generated", "div": marker}
        for coding in resource.get("code", resource.get("vaccineCode", {}))["coding"]:
            coding["display"] = marker
    diabetes = condition("snomed", "44054006")
    diabetes["code"]["text"] = marker
    diabetes["note"] = [{"text": marker}]
    issued = care_gap_cards(make_chart(pat, records, [diabetes]), today=TODAY, hook="patient-view")
    assert issued
    dumped = json.dumps(
        [item.card.model_dump(mode="json", by_alias=True, exclude_none=True) for item in issued]
    )
    assert marker not in dumped


def test_results_are_deterministic_apart_from_uuids() -> None:
    def stable(items: list[IssuedCard]) -> list[tuple[str, str, str]]:
        return [(item.rule_id, item.card.summary, item.fingerprint) for item in items]

    chart = next(busy_charts())
    assert stable(care_gap_cards(chart, today=TODAY, hook="patient-view")) == stable(
        care_gap_cards(chart, today=TODAY, hook="patient-view")
    )
