"""The allergy and duplicate-therapy source files (``allergy.yaml``, ``duplicate-therapy.yaml``).

Each file must validate as a ``KnowledgeFile``. Across the two files: ids are unique, every
referenced citation and allergen group exists (and every citation is used), one RxCUI has one name
and one name one RxCUI, a SNOMED CT code maps to one group, the targets of the rules from one source
group do not overlap or include the group's own members, and each duplicate class can fire. A few
clinical anchors (R1 side-chain rules, sulfonamides, NSAIDs, antiplatelet allowance) are pinned so
an accidental edit shows up in review. Finally the two files compile on their own.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import ehr.modules.medication_safety as medication_safety
from ehr.modules.medication_safety.knowledge import (
    CrossSensitivityLevel,
    RouteCategory,
    compile_knowledge,
)
from ehr.modules.medication_safety.knowledge.sources import CrossSensitivity, KnowledgeFile, Member

SOURCES = Path(medication_safety.__file__).parent / "data" / "sources"
ALLERGY = "allergy.yaml"
DUPLICATES = "duplicate-therapy.yaml"
FILES = (ALLERGY, DUPLICATES)

PENICILLINS = "ehr:allergen/penicillins"
AMINOBENZYL = "ehr:allergen/cephalosporins-r1-aminobenzyl"
CEFTAZIDIME = "ehr:allergen/cephalosporins-r1-ceftazidime"
AZTREONAM = "ehr:allergen/aztreonam"
SULFONAMIDES = "ehr:allergen/sulfonamide-antibacterials"
NSAIDS = "ehr:allergen/nsaids-cox1"


def _load(name: str) -> KnowledgeFile:
    with (SOURCES / name).open(encoding="utf-8") as handle:
        return KnowledgeFile.model_validate(yaml.safe_load(handle))


@pytest.fixture(scope="module")
def allergy() -> KnowledgeFile:
    return _load(ALLERGY)


@pytest.fixture(scope="module")
def duplicates() -> KnowledgeFile:
    return _load(DUPLICATES)


@pytest.fixture(scope="module")
def files(allergy: KnowledgeFile, duplicates: KnowledgeFile) -> tuple[KnowledgeFile, ...]:
    return (allergy, duplicates)


def _members(kf: KnowledgeFile) -> Iterator[Member]:
    for group in kf.allergen_groups:
        yield from group.members
    for cross in kf.cross_sensitivities:
        yield from cross.to_members
    for dup in kf.duplicate_classes:
        yield from dup.members


def _targets(kf: KnowledgeFile, cross: CrossSensitivity) -> list[str]:
    if cross.to_group is not None:
        group = next(g for g in kf.allergen_groups if g.id == cross.to_group)
        return [m.rxcui for m in group.members]
    return [m.rxcui for m in cross.to_members]


def _rules(kf: KnowledgeFile, source: str, rxcui: str) -> list[CrossSensitivity]:
    return [
        c for c in kf.cross_sensitivities if c.from_group == source and rxcui in _targets(kf, c)
    ]


def _rxcui(kf: KnowledgeFile, name: str) -> str:
    return next(m.rxcui for m in _members(kf) if m.name == name)


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", FILES)
def test_file_validates_as_a_knowledge_file(name: str) -> None:
    kf = _load(name)
    assert kf.description


def test_sections_stay_in_their_file(allergy: KnowledgeFile, duplicates: KnowledgeFile) -> None:
    assert allergy.allergen_groups
    assert allergy.cross_sensitivities
    assert allergy.duplicate_classes == ()
    assert allergy.classes == ()
    assert allergy.interactions == ()
    assert duplicates.duplicate_classes
    assert duplicates.allergen_groups == ()
    assert duplicates.cross_sensitivities == ()
    assert duplicates.classes == ()
    assert duplicates.interactions == ()
    # members are explicit: this file must not depend on classes.yaml
    assert all(d.members_of is None for d in duplicates.duplicate_classes)


def test_ids_are_unique(files: tuple[KnowledgeFile, ...]) -> None:
    citation_ids = Counter(c.id for kf in files for c in kf.citations)
    group_ids = Counter(g.id for kf in files for g in kf.allergen_groups)
    dup_ids = Counter(d.id for kf in files for d in kf.duplicate_classes)
    # the compiler derives DUP-<SLUG> rule ids from duplicate classes
    rule_ids = Counter(
        [c.id for kf in files for c in kf.cross_sensitivities]
        + ["DUP-" + d.split("/", 1)[1].upper() for d in dup_ids]
    )
    for counter in (citation_ids, group_ids, dup_ids, rule_ids):
        assert [k for k, n in counter.items() if n > 1] == []


def test_rule_ids_follow_the_naming_convention(files: tuple[KnowledgeFile, ...]) -> None:
    assert all(c.id.startswith("ALG-") for kf in files for c in kf.cross_sensitivities)


def test_every_citation_exists_and_is_used(files: tuple[KnowledgeFile, ...]) -> None:
    defined = {c.id for kf in files for c in kf.citations}
    used: set[str] = set()
    for kf in files:
        for group in kf.allergen_groups:
            used.update(group.citations)
        for cross in kf.cross_sensitivities:
            used.update(cross.citations)
        for dup in kf.duplicate_classes:
            used.update(dup.citations)
    assert used - defined == set(), "referenced but not defined"
    assert defined - used == set(), "defined but never referenced"


def test_cross_sensitivity_groups_exist(allergy: KnowledgeFile) -> None:
    groups = {g.id for g in allergy.allergen_groups}
    for cross in allergy.cross_sensitivities:
        assert cross.from_group in groups, cross.id
        assert cross.to_group is None or cross.to_group in groups, cross.id


def test_one_rxcui_one_name(files: tuple[KnowledgeFile, ...]) -> None:
    names: dict[str, set[str]] = {}
    rxcuis: dict[str, set[str]] = {}
    for kf in files:
        for member in _members(kf):
            names.setdefault(member.rxcui, set()).add(member.name)
            rxcuis.setdefault(member.name, set()).add(member.rxcui)
    assert {k: v for k, v in names.items() if len(v) > 1} == {}
    assert {k: v for k, v in rxcuis.items() if len(v) > 1} == {}


def test_no_member_listed_twice(files: tuple[KnowledgeFile, ...]) -> None:
    for kf in files:
        for group in kf.allergen_groups:
            assert len({m.rxcui for m in group.members}) == len(group.members), group.id
        for cross in kf.cross_sensitivities:
            assert len({m.rxcui for m in cross.to_members}) == len(cross.to_members), cross.id
        for dup in kf.duplicate_classes:
            assert len({m.rxcui for m in dup.members}) == len(dup.members), dup.id


def test_snomed_code_maps_to_one_group(allergy: KnowledgeFile) -> None:
    codes = Counter(code for g in allergy.allergen_groups for code in g.snomed_codes)
    assert [c for c, n in codes.items() if n > 1] == []


def test_targets_of_one_source_do_not_overlap(allergy: KnowledgeFile) -> None:
    """The strongest level would win silently; keep each source's targets disjoint."""
    by_source: dict[str, Counter[str]] = {}
    for cross in allergy.cross_sensitivities:
        by_source.setdefault(cross.from_group, Counter()).update(_targets(allergy, cross))
    overlaps = {src: [x for x, n in c.items() if n > 1] for src, c in by_source.items()}
    assert {src: xs for src, xs in overlaps.items() if xs} == {}


def test_no_rule_targets_its_own_source_group(allergy: KnowledgeFile) -> None:
    groups = {g.id: {m.rxcui for m in g.members} for g in allergy.allergen_groups}
    for cross in allergy.cross_sensitivities:
        own = groups[cross.from_group] & set(_targets(allergy, cross))
        assert own == set(), cross.id


def test_every_duplicate_class_can_fire(duplicates: KnowledgeFile) -> None:
    for dup in duplicates.duplicate_classes:
        assert len(dup.members) >= dup.allowance + 2, dup.id


# ----------------------------------------------------------------------------- clinical anchors


def test_penicillin_to_cephalosporins_follows_the_r1_side_chain(allergy: KnowledgeFile) -> None:
    def level(name: str) -> CrossSensitivityLevel:
        (rule,) = _rules(allergy, PENICILLINS, _rxcui(allergy, name))
        return rule.level

    for similar in ("cephalexin", "cefadroxil", "cefaclor", "cefprozil"):
        assert level(similar) is CrossSensitivityLevel.ALERT, similar
    for dissimilar in ("cefuroxime", "cefpodoxime", "ceftriaxone", "ceftazidime", "cefdinir"):
        assert level(dissimilar) is CrossSensitivityLevel.INFO, dissimilar
    assert level("cefepime") is CrossSensitivityLevel.INFO
    assert level("cefotaxime") is CrossSensitivityLevel.INFO
    assert level("cefazolin") is CrossSensitivityLevel.INFO
    assert level("meropenem") is CrossSensitivityLevel.INFO
    assert level("aztreonam") is CrossSensitivityLevel.NONE


def test_ceftazidime_and_aztreonam_alert_both_ways(allergy: KnowledgeFile) -> None:
    ceftazidime = _rxcui(allergy, "ceftazidime")
    aztreonam = _rxcui(allergy, "aztreonam")
    assert [r.level for r in _rules(allergy, CEFTAZIDIME, aztreonam)] == [
        CrossSensitivityLevel.ALERT
    ]
    assert [r.level for r in _rules(allergy, AZTREONAM, ceftazidime)] == [
        CrossSensitivityLevel.ALERT
    ]


def test_non_antibiotic_sulfonamides_are_cleared(allergy: KnowledgeFile) -> None:
    for name in ("furosemide", "hydrochlorothiazide", "glipizide", "acetazolamide", "celecoxib"):
        (rule,) = _rules(allergy, SULFONAMIDES, _rxcui(allergy, name))
        assert rule.level is CrossSensitivityLevel.NONE, name
        assert "strom-2003-sulfonamides" in rule.citations
    group = next(g for g in allergy.allergen_groups if g.id == SULFONAMIDES)
    assert "sulfasalazine" in {m.name for m in group.members}


def test_cox2_inhibitors_are_information_only(allergy: KnowledgeFile) -> None:
    (rule,) = _rules(allergy, NSAIDS, _rxcui(allergy, "celecoxib"))
    assert rule.level is CrossSensitivityLevel.INFO
    group = next(g for g in allergy.allergen_groups if g.id == NSAIDS)
    assert {"aspirin", "ibuprofen", "naproxen", "ketorolac"} <= {m.name for m in group.members}
    assert "celecoxib" not in {m.name for m in group.members}


def test_duplicate_therapy_anchors(duplicates: KnowledgeFile) -> None:
    by_id = {d.id: d for d in duplicates.duplicate_classes}
    assert by_id["ehr:dup/antiplatelets"].allowance == 1  # dual antiplatelet therapy is intended
    assert by_id["ehr:dup/p2y12-inhibitors"].allowance == 0
    nsaids = by_id["ehr:dup/nsaids-systemic"]
    assert nsaids.routes == (RouteCategory.SYSTEMIC,)
    assert "aspirin" not in {m.name for m in nsaids.members}
    assert all(d.allowance == 0 for i, d in by_id.items() if i != "ehr:dup/antiplatelets")


# ----------------------------------------------------------------------------- compiler


def test_the_two_files_compile_on_their_own(tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(SOURCES / name, tmp_path / name)
    kb = compile_knowledge(tmp_path)
    cephalexin = "2231"
    (strongest, *_) = kb.cross_sensitivity_index[(PENICILLINS, cephalexin)]
    assert strongest.level is CrossSensitivityLevel.ALERT
    assert kb.snomed_allergen_groups["91936005"] == (PENICILLINS,)
