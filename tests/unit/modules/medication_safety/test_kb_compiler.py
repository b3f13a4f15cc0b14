"""The knowledge-base compiler: merge, cross-checks (errors name file and id), indexes, version."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from support.tiny_kb import IN, TINY_ALLERGY_DUP, TINY_CORE, TINY_SOURCES

from ehr.core.errors import AppError
from ehr.modules.medication_safety.knowledge import (
    Display,
    KnowledgeBase,
    KnowledgeBaseInvalid,
    Membership,
    RouteCategory,
    Severity,
    compile_knowledge,
    duplicate_rule_id,
)

WriteSources = Callable[[Mapping[str, str]], Path]

CITATION = """
citations:
  - id: c1
    text: A citation for the fixture.
"""


def _problems(write_sources: WriteSources, sources: Mapping[str, str]) -> list[str]:
    with pytest.raises(KnowledgeBaseInvalid) as caught:
        compile_knowledge(write_sources(sources))
    return [str(p) for p in caught.value.problems]


def _one(problems: list[str], *fragments: str) -> None:
    """Exactly one problem mentions every fragment."""
    matching = [p for p in problems if all(f in p for f in fragments)]
    assert len(matching) == 1, problems


# ---------------------------------------------------------------- compiled form


def test_version_is_release_plus_content_hash(tiny_kb: KnowledgeBase) -> None:
    assert re.fullmatch(r"0\.0\.0\+[0-9a-f]{12}", tiny_kb.version)
    assert tiny_kb.version.endswith(tiny_kb.content_hash[:12])
    assert tiny_kb.release == "0.0.0"


def test_release_label_from_the_one_file_that_sets_it(write_sources: WriteSources) -> None:
    kb = compile_knowledge(write_sources({**TINY_SOURCES, "release.yaml": "release: 2025.11.0\n"}))
    assert kb.version.startswith("2025.11.0+")
    dated = compile_knowledge(
        write_sources({**TINY_SOURCES, "release.yaml": "release: 2025-11-21\n"})
    )
    assert dated.version.startswith("2025-11-21+")
    # The label is not part of the content hash.
    assert kb.content_hash == dated.content_hash


def test_conflicting_release_labels(write_sources: WriteSources) -> None:
    problems = _problems(
        write_sources,
        {**TINY_SOURCES, "r1.yaml": "release: 1.0.0\n", "r2.yaml": "release: 1.0.1\n"},
    )
    _one(problems, "r1.yaml", "r2.yaml", "conflicting release")


def test_hash_ignores_formatting_comments_and_file_split(
    tiny_kb: KnowledgeBase, write_sources: WriteSources
) -> None:
    start, end = TINY_CORE.index("citations:"), TINY_CORE.index("classes:")
    split = {
        "0-citations.yaml": "# the citations, on their own\n\n" + TINY_CORE[start:end],
        "core.yaml": TINY_CORE[:start] + TINY_CORE[end:].replace("\n", "\n\n", 3),
        "allergy-dup.yaml": TINY_ALLERGY_DUP,
    }
    kb = compile_knowledge(write_sources(split))
    assert kb.content_hash == tiny_kb.content_hash
    assert kb.version == tiny_kb.version
    assert [s.name for s in kb.sources] != [s.name for s in tiny_kb.sources]


def test_hash_changes_with_content(tiny_kb: KnowledgeBase, write_sources: WriteSources) -> None:
    changed = {**TINY_SOURCES, "core.yaml": TINY_CORE.replace("Bleeding.", "Bleeding risk.")}
    assert compile_knowledge(write_sources(changed)).version != tiny_kb.version


def test_compile_is_deterministic(write_sources: WriteSources) -> None:
    one = compile_knowledge(write_sources(TINY_SOURCES))
    two = compile_knowledge(write_sources(dict(reversed(list(TINY_SOURCES.items())))))
    assert one.version == two.version
    assert list(one.pair_index) == list(two.pair_index)
    assert one.pair_index == two.pair_index
    assert one.memberships == two.memberships
    assert one.provenance() == two.provenance()


def test_provenance_lists_files_hashes_and_citations(tiny_kb: KnowledgeBase) -> None:
    provenance = tiny_kb.provenance()
    assert [s["file"] for s in provenance["sources"]] == ["allergy-dup.yaml", "core.yaml"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", s["sha256"]) for s in provenance["sources"])
    assert {c["id"] for c in provenance["citations"]} == {"label-a", "paper-b"}
    assert provenance["counts"]["interactions"] == 5
    assert provenance["version"] == tiny_kb.version


def test_pair_index_has_both_orders_and_sides(tiny_kb: KnowledgeBase) -> None:
    simva, clari = IN["simvastatin"], IN["clarithromycin"]
    (forward,) = tiny_kb.pair_index[(simva, clari)]
    (backward,) = tiny_kb.pair_index[(clari, simva)]
    assert forward.rule.id == backward.rule.id == "ONC-HP-25"
    assert (forward.first_side, backward.first_side) == ("a", "b")
    assert forward.severity is Severity.CONTRAINDICATED
    assert forward.override is None


def test_member_override_is_applied_per_pair(tiny_kb: KnowledgeBase) -> None:
    (hit,) = tiny_kb.pair_index[(IN["lovastatin"], IN["amiodarone"])]
    assert (hit.severity, hit.display) == (Severity.MAJOR, Display.PASSIVE)
    assert hit.override is not None
    assert hit.override.rxcui == IN["amiodarone"]


def test_route_qualifiers_are_carried_per_side(tiny_kb: KnowledgeBase) -> None:
    (hit,) = tiny_kb.pair_index[(IN["warfarin"], IN["ibuprofen"])]
    assert hit.first_routes is None
    assert hit.second_routes == frozenset({RouteCategory.SYSTEMIC})
    (reverse,) = tiny_kb.pair_index[(IN["ibuprofen"], IN["warfarin"])]
    assert reverse.first_routes == frozenset({RouteCategory.SYSTEMIC})


def test_same_class_on_both_sides_never_pairs_an_ingredient_with_itself(
    tiny_kb: KnowledgeBase,
) -> None:
    methadone, haloperidol = IN["methadone"], IN["haloperidol"]
    assert (methadone, methadone) not in tiny_kb.pair_index
    hits = tiny_kb.pair_index[(methadone, haloperidol)]
    assert {h.rule.id for h in hits} == {"ONC-HP-21"}


def test_memberships(tiny_kb: KnowledgeBase) -> None:
    assert tiny_kb.memberships[IN["methadone"]] == (
        Membership("ONC-HP-21", "a"),
        Membership("ONC-HP-21", "b"),
    )
    assert Membership("ONC-HP-25", "b") in tiny_kb.memberships[IN["amiodarone"]]


def test_allergy_and_duplicate_indexes(tiny_kb: KnowledgeBase) -> None:
    assert tiny_kb.ingredient_allergen_groups[IN["amoxicillin"]] == ("ehr:allergen/penicillins",)
    assert tiny_kb.snomed_allergen_groups["764146007"] == ("ehr:allergen/penicillins",)
    cephalexin = tiny_kb.cross_sensitivity_index[("ehr:allergen/penicillins", IN["cephalexin"])]
    assert [c.id for c in cephalexin] == ["ALG-PCN-CEPH-R1", "ALG-PCN-CEPH"]  # strongest first
    dup = tiny_kb.duplicate_classes["ehr:dup/statins"]
    assert dup.rule_id == "DUP-STATINS"
    assert dup.member_ids == {IN["simvastatin"], IN["lovastatin"], IN["atorvastatin"]}
    assert dup in tiny_kb.ingredient_duplicate_classes[IN["atorvastatin"]]
    assert tiny_kb.ingredients[IN["warfarin"]] == "warfarin"


def test_duplicate_rule_id() -> None:
    assert duplicate_rule_id("ehr:dup/ace-inhibitors") == "DUP-ACE-INHIBITORS"


# ---------------------------------------------------------------- errors


def test_no_source_files(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseInvalid, match=r"no \*\.yaml source files"):
        compile_knowledge(tmp_path)


def test_invalid_yaml_names_the_file(write_sources: WriteSources) -> None:
    problems = _problems(write_sources, {"broken.yaml": "classes: [\n"})
    _one(problems, "broken.yaml", "not valid YAML")


def test_top_level_must_be_a_mapping(write_sources: WriteSources) -> None:
    _one(_problems(write_sources, {"list.yaml": "- a\n- b\n"}), "list.yaml", "not a mapping")


def test_schema_violation_names_file_and_id(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace("severity: moderate\n", "severity: serious\n")
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: DDI-SILDENAFIL-NITRATES", "severity")


def test_unquoted_rxcui_gets_a_hint(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace('{rxcui: "11289", name: warfarin}', "{rxcui: 11289, name: warfarin}")
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: DDI-WARFARIN-NSAIDS", "quote")


def test_duplicate_ids_across_files(write_sources: WriteSources) -> None:
    extra = (
        CITATION
        + """
interactions:
  - id: ONC-HP-21
    a: {ingredient: {rxcui: "6813", name: methadone}}
    b: {ingredient: {rxcui: "5093", name: haloperidol}}
    severity: major
    display: interruptive
    mechanism: Duplicate of a rule id.
    consequence: Something bad.
    management: Avoid it.
    citations: [c1]
    source_list: guideline
classes:
  - id: ehr:class/nsaids
    label: NSAIDs again
    members: [{rxcui: "5640", name: ibuprofen}]
    citations: [label-a]
"""
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "zz-extra.yaml": extra})
    _one(problems, "zz-extra.yaml: ONC-HP-21", "duplicate rule id", "core.yaml")
    _one(problems, "zz-extra.yaml: ehr:class/nsaids", "duplicate class id")


def test_reserved_builtin_rule_id(write_sources: WriteSources) -> None:
    bad = TINY_ALLERGY_DUP.replace("id: ALG-PCN-CEPH\n", "id: ALG-SAME-GROUP\n")
    problems = _problems(write_sources, {**TINY_SOURCES, "allergy-dup.yaml": bad})
    _one(problems, "allergy-dup.yaml: ALG-SAME-GROUP", "duplicate rule id", "built-in")


def test_duplicate_class_rule_id_collides(write_sources: WriteSources) -> None:
    extra = (
        CITATION
        + """
cross_sensitivities:
  - id: DUP-STATINS
    from: ehr:allergen/penicillins
    to: ehr:allergen/cephalosporins
    level: info
    rationale: Collides with the duplicate class's rule id.
    management: Nothing to do.
    citations: [c1]
"""
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "x.yaml": extra})
    _one(problems, "DUP-STATINS", "duplicate rule id")


def test_unknown_references(write_sources: WriteSources) -> None:
    bad_core = TINY_CORE.replace(
        "b: {class: ehr:class/strong-3a4-inhibitors}", "b: {class: ehr:class/nope}"
    ).replace(
        "citations: [paper-b]\n    source_list: fda-label",
        "citations: [nope]\n    source_list: fda-label",
    )
    bad_allergy = TINY_ALLERGY_DUP.replace(
        "to: ehr:allergen/cephalosporins", "to: ehr:allergen/nope"
    ).replace("members_of: ehr:class/statins-all", "members_of: ehr:class/gone")
    problems = _problems(write_sources, {"core.yaml": bad_core, "allergy-dup.yaml": bad_allergy})
    _one(problems, "core.yaml: ONC-HP-25", "unknown class 'ehr:class/nope'")
    _one(problems, "core.yaml: DDI-WARFARIN-NSAIDS", "unknown citation 'nope'")
    _one(problems, "allergy-dup.yaml: ALG-PCN-CEPH", "unknown allergen group")
    _one(problems, "allergy-dup.yaml: ehr:dup/statins", "members_of: unknown class")


def test_same_rxcui_must_carry_the_same_name(write_sources: WriteSources) -> None:
    bad = TINY_ALLERGY_DUP.replace(
        '{rxcui: "6472", name: lovastatin}', '{rxcui: "6473", name: lovastatin}'
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "allergy-dup.yaml": bad})
    _one(
        problems,
        "core.yaml: ehr:class/statins-3a4",
        "'lovastatin' is RxCUI 6472 here but 6473 in allergy-dup.yaml (ehr:class/statins-all)",
    )
    bad_name = TINY_CORE.replace(
        '{rxcui: "21212", name: clarithromycin}', '{rxcui: "21212", name: clarithromycine}'
    )
    bad_name += """
  - id: DDI-EXTRA
    a: {ingredient: {rxcui: "21212", name: clarithromycin}}
    b: {ingredient: {rxcui: "5093", name: haloperidol}}
    severity: major
    display: interruptive
    mechanism: Names the same CUI differently.
    consequence: Something bad.
    management: Avoid it.
    citations: [label-a]
    source_list: guideline
"""
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad_name})
    _one(problems, "core.yaml: DDI-EXTRA", "RxCUI 21212 is named 'clarithromycin'")


def test_repeated_member(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace(
        '      - {rxcui: "7258", name: naproxen}\n',
        '      - {rxcui: "7258", name: naproxen}\n      - {rxcui: "7258", name: naproxen}\n',
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: ehr:class/nsaids", "lists 7258 twice")


def test_override_must_name_a_member(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace('      - rxcui: "703"\n', '      - rxcui: "5640"\n')
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: ONC-HP-25", "override 5640 is on neither side")


def test_near_miss_must_not_match_its_rule(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace('{a: "83367", b: "21212"', '{a: "36567", b: "21212"')
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: ONC-HP-25", "near miss 36567+21212 matches the rule")


def test_rule_that_can_never_fire(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace(
        'b: {ingredient: {rxcui: "4917", name: nitroglycerin}}',
        'b: {ingredient: {rxcui: "136411", name: sildenafil}}',
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    _one(problems, "core.yaml: DDI-SILDENAFIL-NITRATES", "same single ingredient")


def test_duplicate_class_that_can_never_fire(write_sources: WriteSources) -> None:
    bad = TINY_ALLERGY_DUP.replace("allowance: 1\n", "allowance: 2\n")
    problems = _problems(write_sources, {**TINY_SOURCES, "allergy-dup.yaml": bad})
    _one(problems, "allergy-dup.yaml: ehr:dup/statins", "can never fire")


def test_cross_sensitivity_to_its_own_group(write_sources: WriteSources) -> None:
    bad = TINY_ALLERGY_DUP.replace(
        "to: ehr:allergen/cephalosporins", "to: ehr:allergen/penicillins"
    )
    problems = _problems(write_sources, {**TINY_SOURCES, "allergy-dup.yaml": bad})
    _one(problems, "allergy-dup.yaml: ALG-PCN-CEPH", "same group")


def test_every_problem_is_reported(write_sources: WriteSources) -> None:
    bad = TINY_CORE.replace("citations: [label-a]", "citations: [missing]")
    problems = _problems(write_sources, {**TINY_SOURCES, "core.yaml": bad})
    assert len([p for p in problems if "unknown citation 'missing'" in p]) > 3


def test_error_is_an_app_error() -> None:
    error = KnowledgeBaseInvalid([])
    assert isinstance(error, AppError)
    assert error.status_code == 500


def test_a_display_follows_its_severity_unless_the_rule_says_why(
    write_sources: WriteSources,
) -> None:
    rule = """
interactions:
  - id: DDI-X-Y
    a: {ingredient: {rxcui: "11289", name: warfarin}}
    b: {ingredient: {rxcui: "5640", name: ibuprofen}}
    severity: major
    display: passive%s
    mechanism: A mechanism.
    consequence: A consequence.
    management: A management.
    citations: [c1]
    source_list: fda-label
citations:
  - id: c1
    text: A citation for the fixture.
"""
    _one(
        _problems(write_sources, {"a.yaml": rule % ""}),
        "DDI-X-Y",
        "major is interruptive by default, not passive",
    )
    with_reason = rule % "\n    display_reason: Often deliberate and managed by monitoring."
    assert compile_knowledge(write_sources({"a.yaml": with_reason})).interactions["DDI-X-Y"]
    needless = (rule % "\n    display_reason: Often deliberate and managed by monitoring.").replace(
        "display: passive", "display: interruptive"
    )
    _one(_problems(write_sources, {"a.yaml": needless}), "DDI-X-Y", "default display")
