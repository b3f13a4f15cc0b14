"""The drug-drug interaction source files (classes + three interaction lists) on their own.

Each file must validate as a ``KnowledgeFile``; across these files every referenced class and
citation exists, ids are unique, one RxCUI has one name (and one name one RxCUI), member overrides
name a member of their rule, near misses do not match their own rule, and the ONC lists keep their
published shape (15 interruptive contraindicated pairs; 33 passive pairs).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import ehr.modules.medication_safety as medication_safety
from ehr.modules.medication_safety.knowledge import Display, Severity
from ehr.modules.medication_safety.knowledge.sources import (
    DrugClass,
    InteractionRule,
    KnowledgeFile,
    Member,
    RuleSide,
)

SOURCES = Path(medication_safety.__file__).parent / "data" / "sources"
CLASSES = "classes.yaml"
HIGH_PRIORITY = "interactions-onc-high-priority.yaml"
NON_INTERRUPTIVE = "interactions-onc-non-interruptive.yaml"
FDA_LABEL = "interactions-fda-label.yaml"
FILES = (CLASSES, HIGH_PRIORITY, NON_INTERRUPTIVE, FDA_LABEL)

# File → (rule id pattern, source_list) for the interaction files.
RULE_SHAPE = {
    HIGH_PRIORITY: (r"^ONC-HP-\d{2}$", "onc-high-priority"),
    NON_INTERRUPTIVE: (r"^ONC-NI-\d{2}$", "onc-non-interruptive"),
    FDA_LABEL: (r"^DDI-[A-Z0-9]+(-[A-Z0-9]+)*$", "fda-label"),
}
# The paper's candidate numbers of the 15 final high-priority pairs.
HIGH_PRIORITY_CANDIDATES = {3, 4, 6, 8, 11, 16, 20, 21, 22, 23, 25, 27, 28, 30, 31}
QT_CLASS = "ehr:class/qt-prolonging-label-high-risk"
# QT risk in these labels is a warning only (or a third-party list) — they must stay out.
QT_WARNING_ONLY = {
    "2556": "citalopram",
    "321988": "escitalopram",
    "5093": "haloperidol",
    "26225": "ondansetron",
    "18631": "azithromycin",
    "9068": "quinidine",
    "139462": "moxifloxacin",
}


def _load(name: str) -> KnowledgeFile:
    with (SOURCES / name).open(encoding="utf-8") as handle:
        return KnowledgeFile.model_validate(yaml.safe_load(handle))


@pytest.fixture(scope="module")
def files() -> dict[str, KnowledgeFile]:
    return {name: _load(name) for name in FILES}


@pytest.fixture(scope="module")
def classes(files: dict[str, KnowledgeFile]) -> dict[str, DrugClass]:
    return {c.id: c for f in files.values() for c in f.classes}


@pytest.fixture(scope="module")
def rules(files: dict[str, KnowledgeFile]) -> list[tuple[str, InteractionRule]]:
    return [(name, rule) for name, f in files.items() for rule in f.interactions]


def _members(side: RuleSide, classes: dict[str, DrugClass]) -> set[str]:
    if side.ingredient is not None:
        return {side.ingredient.rxcui}
    return {m.rxcui for m in classes[side.class_id or ""].members}


def _all_members(files: dict[str, KnowledgeFile]) -> Iterator[tuple[str, Member]]:
    for name, f in files.items():
        for cls in f.classes:
            for member in cls.members:
                yield f"{name}:{cls.id}", member
        for rule in f.interactions:
            for side in (rule.a, rule.b):
                if side.ingredient is not None:
                    yield f"{name}:{rule.id}", side.ingredient


@pytest.mark.parametrize("name", FILES)
def test_each_file_validates(name: str) -> None:
    assert _load(name) is not None


def test_ids_are_unique(files: dict[str, KnowledgeFile]) -> None:
    for kind, ids in {
        "citation": [c.id for f in files.values() for c in f.citations],
        "class": [c.id for f in files.values() for c in f.classes],
        "rule": [r.id for f in files.values() for r in f.interactions],
    }.items():
        repeated = [i for i, n in Counter(ids).items() if n > 1]
        assert not repeated, f"repeated {kind} ids: {repeated}"


def test_references_exist(
    files: dict[str, KnowledgeFile],
    classes: dict[str, DrugClass],
    rules: list[tuple[str, InteractionRule]],
) -> None:
    citations = {c.id for f in files.values() for c in f.citations}
    missing: list[str] = []
    for cls in classes.values():
        missing += [f"{cls.id} cites {c}" for c in cls.citations if c not in citations]
    for _, rule in rules:
        assert rule.citations, f"{rule.id} has no citation"
        missing += [f"{rule.id} cites {c}" for c in rule.citations if c not in citations]
        for side in (rule.a, rule.b):
            if side.class_id is not None and side.class_id not in classes:
                missing.append(f"{rule.id} uses unknown class {side.class_id}")
    assert not missing


def test_every_citation_and_class_is_used(
    files: dict[str, KnowledgeFile],
    classes: dict[str, DrugClass],
    rules: list[tuple[str, InteractionRule]],
) -> None:
    cited = {c for cls in classes.values() for c in cls.citations}
    cited |= {c for _, rule in rules for c in rule.citations}
    defined = {c.id for f in files.values() for c in f.citations}
    assert defined - cited == set()
    used = {s.class_id for _, r in rules for s in (r.a, r.b) if s.class_id is not None}
    assert set(classes) - used == set()


def test_one_rxcui_one_name(files: dict[str, KnowledgeFile]) -> None:
    names: dict[str, tuple[str, str]] = {}
    cuis: dict[str, tuple[str, str]] = {}
    conflicts: list[str] = []
    for where, member in _all_members(files):
        name, first = names.setdefault(member.rxcui, (member.name, where))
        if name != member.name:
            conflicts.append(f"{member.rxcui}: {member.name!r} in {where}, {name!r} in {first}")
        cui, first = cuis.setdefault(member.name, (member.rxcui, where))
        if cui != member.rxcui:
            conflicts.append(f"{member.name!r}: {member.rxcui} in {where}, {cui} in {first}")
    assert not conflicts


def test_class_members_are_not_repeated(classes: dict[str, DrugClass]) -> None:
    for cls in classes.values():
        repeated = [c for c, n in Counter(m.rxcui for m in cls.members).items() if n > 1]
        assert not repeated, f"{cls.id} repeats {repeated}"


def test_rule_ids_and_source_lists_match_their_file(files: dict[str, KnowledgeFile]) -> None:
    assert not files[CLASSES].interactions
    for name, (pattern, source_list) in RULE_SHAPE.items():
        assert files[name].interactions, name
        for rule in files[name].interactions:
            assert re.match(pattern, rule.id), rule.id
            assert rule.source_list == source_list, rule.id


def test_overrides_name_a_member_and_near_misses_do_not_match(
    classes: dict[str, DrugClass], rules: list[tuple[str, InteractionRule]]
) -> None:
    for _, rule in rules:
        a, b = _members(rule.a, classes), _members(rule.b, classes)
        overridden = [o.rxcui for o in rule.member_overrides]
        assert len(overridden) == len(set(overridden)), rule.id
        for rxcui in overridden:
            assert rxcui in a | b, f"{rule.id}: override {rxcui} is on neither side"
        for miss in rule.near_misses:
            assert miss.a != miss.b, rule.id
            hit = (miss.a in a and miss.b in b) or (miss.b in a and miss.a in b)
            assert not hit, f"{rule.id}: near miss {miss.a}+{miss.b} matches the rule"


def test_high_priority_list_shape(files: dict[str, KnowledgeFile]) -> None:
    hp = files[HIGH_PRIORITY].interactions
    assert {int(r.id.rsplit("-", 1)[1]) for r in hp} == HIGH_PRIORITY_CANDIDATES
    assert len(hp) == len(HIGH_PRIORITY_CANDIDATES)
    for rule in hp:
        assert rule.severity is Severity.CONTRAINDICATED, rule.id
        assert rule.display is Display.INTERRUPTIVE, rule.id
        for override in rule.member_overrides:
            assert override.severity is not Severity.CONTRAINDICATED, rule.id


def test_non_interruptive_list_shape(files: dict[str, KnowledgeFile]) -> None:
    ni = files[NON_INTERRUPTIVE].interactions
    assert sorted(int(r.id.rsplit("-", 1)[1]) for r in ni) == list(range(1, 34))
    for rule in ni:
        # Non-interruptive: passive, or informational for the minor ones (the severity's default).
        assert rule.display is not Display.INTERRUPTIVE, rule.id
        assert rule.severity is not Severity.CONTRAINDICATED, rule.id
        for override in rule.member_overrides:
            assert override.display is not Display.INTERRUPTIVE, rule.id


def test_narrow_onc_rows_stay_narrow(
    classes: dict[str, DrugClass], rules: list[tuple[str, InteractionRule]]
) -> None:
    by_id = {rule.id: rule for _, rule in rules}
    statin = _members(by_id["ONC-HP-25"].a, classes)
    assert statin == {"36567", "6472"}  # simvastatin, lovastatin only
    triptans = _members(by_id["ONC-HP-31"].a, classes)
    assert triptans == {"37418", "135775", "88014"}  # sumatriptan, zolmitriptan, rizatriptan
    assert "9639" not in _members(by_id["ONC-HP-31"].b, classes)  # selegiline is MAO-B


def test_qt_class_is_label_derived(classes: dict[str, DrugClass]) -> None:
    members = {m.rxcui for m in classes[QT_CLASS].members}
    assert members.isdisjoint(QT_WARNING_ONLY), members & set(QT_WARNING_ONLY)
    assert {"49247", "9947", "8331", "6813"} <= members  # dofetilide, sotalol, pimozide, methadone
