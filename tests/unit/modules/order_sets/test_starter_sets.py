"""The shipped starter sets: every file loads with the orders schema, each cites its sources and
where each code was checked, each member builds a draft through the orders module, and the sets
hold what issue 15 names (chest pain, pneumonia with an IDSA/ATS 2019 antibiotic, DKA labs)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from ehr.modules import orders
from ehr.modules.order_sets import load_starter_sets
from ehr.modules.order_sets.starter import StarterSet
from ehr.platform.auth.principal import Principal

LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PHYSICIAN = Principal(
    kind="user",
    subject=uuid.uuid4(),
    tenant="unit-tenant",
    tenant_id=uuid.uuid4(),
    roles=frozenset({"physician"}),
    username="unit.physician",
)


def _sets() -> dict[str, StarterSet]:
    return {s.key: s for s in load_starter_sets()}


def _concept(draft: dict[str, Any]) -> dict[str, Any]:
    return dict(draft.get("code") or draft.get("medicationCodeableConcept") or {})


def _codes(starter: StarterSet) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for member in starter.members:
        draft = orders.build_draft("p-1", member.order, PHYSICIAN)
        for coding in _concept(draft).get("coding", []):
            found.add((coding.get("system"), coding.get("code")))
    return found


def test_the_three_sets_ship() -> None:
    assert sorted(_sets()) == ["chest-pain-workup", "community-acquired-pneumonia", "dka-labs"]


@pytest.mark.parametrize("key", sorted(_sets()))
def test_each_set_cites_its_sources_and_code_provenance(key: str) -> None:
    starter = _sets()[key]
    assert starter.sources
    assert all(s.url and s.url.startswith("https://") for s in starter.sources)
    assert len({m.key for m in starter.members}) == len(starter.members)
    for member in starter.members:
        assert len(member.code_source) > 20, member.key


@pytest.mark.parametrize("key", sorted(_sets()))
def test_each_member_is_an_order_the_orders_module_builds(key: str) -> None:
    for member in _sets()[key].members:
        draft = orders.build_draft("p-1", member.order, PHYSICIAN)
        assert draft["resourceType"] in {"ServiceRequest", "MedicationRequest"}
        assert draft["status"] == "draft"
        codings = _concept(draft).get("coding", [])
        assert codings, member.key
        for coding in codings:
            if coding.get("system") == LOINC:
                assert re.fullmatch(r"\d{1,7}-\d", coding["code"]), member.key
            if coding.get("system") == RXNORM:
                assert re.fullmatch(r"\d{1,9}", coding["code"]), member.key


def test_chest_pain_workup_orders_troponin_ecg_cbc_bmp_and_a_chest_x_ray() -> None:
    codes = {code for _, code in _codes(_sets()["chest-pain-workup"])}
    assert {"6598-7", "34534-8", "57021-8", "51990-0", "36643-5"} <= codes


def test_pneumonia_set_orders_cultures_imaging_and_the_idsa_ats_regimen() -> None:
    codes = _codes(_sets()["community-acquired-pneumonia"])
    loinc = {code for system, code in codes if system == LOINC}
    rxnorm = {code for system, code in codes if system == RXNORM}
    assert {"57021-8", "51990-0", "600-7", "6460-0", "36643-5"} <= loinc
    # ceftriaxone 1000 MG Injection + azithromycin 500 MG Injection (beta-lactam + macrolide).
    assert {"1665021", "1668238"} <= rxnorm


def test_dka_set_orders_bmp_ketones_venous_gas_glucose_and_urinalysis() -> None:
    codes = {code for _, code in _codes(_sets()["dka-labs"])}
    assert {"51990-0", "6873-4", "24339-4", "2339-0", "24356-8"} <= codes
