"""The shipped care-gap knowledge file ``data/care_gaps.yaml``: it loads, every code is well formed,
and a broken file (unknown references, bad codes, wrong shapes) is refused when parsed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from support.care_gaps import GAP_IDS, GAPS, KNOWLEDGE

from ehr.modules.care_gaps import (
    OBSERVATION_CODES,
    load_care_gap_knowledge,
    parse_care_gap_knowledge,
)
from ehr.modules.care_gaps.codes import CodeList, is_valid_code

# --------------------------------------------------------------------------- knowledge file


def test_knowledge_loads_and_is_cached() -> None:
    assert load_care_gap_knowledge() is KNOWLEDGE
    kinds = {gap.kind for gap in GAPS}
    assert kinds == {"immunization", "screening", "monitoring"}
    assert {rule.id for rule in KNOWLEDGE.results} == {"result:blood-pressure", "result:hba1c"}
    assert set(GAP_IDS) >= {
        "gap:influenza-vaccine",
        "gap:td-tdap-booster",
        "gap:pneumococcal-vaccine",
        "gap:zoster-vaccine",
        "gap:hpv-vaccine",
        "gap:colorectal-cancer-screening",
        "gap:breast-cancer-screening",
        "gap:cervical-cancer-screening",
        "gap:diabetes-hba1c-monitoring",
    }


def test_every_code_is_well_formed() -> None:
    lists: list[CodeList] = [item.codes for item in KNOWLEDGE.condition_sets]
    for gap in GAPS:
        lists += [group.codes for group in gap.satisfied_by]
        for exclusion in gap.exclusions:
            lists += [exclusion.procedures, exclusion.conditions]
    for measure in KNOWLEDGE.measures:
        lists += [measure.panel_codes, *(component.codes for component in measure.components)]
    for codes in lists:
        for system, code in codes.items():
            assert is_valid_code(system, code), (system, code)


def test_observation_codes_cover_every_loinc_read() -> None:
    assert list(OBSERVATION_CODES) == sorted(set(OBSERVATION_CODES))
    assert all(token.startswith("http://loinc.org|") for token in OBSERVATION_CODES)
    expected = {
        "http://loinc.org|85354-9",
        "http://loinc.org|8480-6",
        "http://loinc.org|8462-4",
        "http://loinc.org|4548-4",
        "http://loinc.org|17856-6",
        "http://loinc.org|4549-2",
    }
    for gap in GAPS:
        for group in gap.satisfied_by:
            expected |= {f"http://loinc.org|{code}" for code in group.codes.loinc}
    assert expected <= set(OBSERVATION_CODES)


def test_check_digits_catch_typos() -> None:
    assert is_valid_code("loinc", "4548-4")
    assert not is_valid_code("loinc", "4548-5")
    assert is_valid_code("snomed", "73761001")
    assert not is_valid_code("snomed", "73761002")
    assert not is_valid_code("snomed", "73761011")  # not a concept partition


def _raw() -> dict[str, Any]:
    with open(_knowledge_path(), encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


def _knowledge_path() -> str:
    from importlib.resources import files

    return str(files("ehr.modules.care_gaps").joinpath("data").joinpath("care_gaps.yaml"))


def _gap(data: dict[str, Any], gap_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in data["gaps"] if item["id"] == gap_id)
    return found


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _gap(d, "gap:hpv-vaccine").update(citations=["nope"]), "unknown citation"),
        (
            lambda d: _gap(d, "gap:diabetes-hba1c-monitoring")["eligibility"].update(
                active_condition="cond:nope"
            ),
            "unknown condition set",
        ),
        (lambda d: d["results"][0].update(measure="nope"), "unknown measure"),
        (
            lambda d: d["results"][0]["thresholds"].reverse(),
            "most severe first",
        ),
        (
            lambda d: d["results"][1]["thresholds"][0]["any_of"][0].update(component="x"),
            "has no component",
        ),
        (
            lambda d: _gap(d, "gap:hpv-vaccine")["satisfied_by"][0]["codes"].update(
                loinc=["4548-4"]
            ),
            "CVX codes only",
        ),
        (
            lambda d: _gap(d, "gap:colorectal-cancer-screening")["satisfied_by"][0]["codes"].update(
                snomed=["73761002"]
            ),
            "not a valid snomed",
        ),
        (
            lambda d: _gap(d, "gap:colorectal-cancer-screening")["satisfied_by"][1]["codes"].update(
                loinc=["57905-3"]
            ),
            "not a valid loinc",
        ),
        (lambda d: d["gaps"].append(d["gaps"][0]), "is used 2 times"),
        (
            lambda d: _gap(d, "gap:td-tdap-booster")["satisfied_by"][0].update(ever=True),
            "exactly one of",
        ),
        (lambda d: d["citations"].append({**d["citations"][0], "id": "spare"}), "not used"),
    ],
)
def test_broken_knowledge_is_refused(mutate: Any, message: str) -> None:
    data = _raw()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_care_gap_knowledge(yaml.safe_dump(data))


def test_shipped_file_round_trips_through_the_parser() -> None:
    assert parse_care_gap_knowledge(yaml.safe_dump(_raw())) == KNOWLEDGE
