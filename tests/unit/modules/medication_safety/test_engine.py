"""Engine logic on the tiny knowledge base (``tiny_kb.py``) with a dict resolver."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest
from support.tiny_kb import IN, NDC_SIMVASTATIN, PENICILLIN_SNOMED, DictResolver, med

from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    DEFAULT_POLICY,
    SNOMED_SYSTEM,
    AllergyInput,
    CheckResult,
    Coding,
    Issue,
    IssueCategory,
    MedicationInput,
    PatientContext,
    Policy,
    UncheckedItem,
)
from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    Display,
    KnowledgeBase,
    RouteCategory,
    Severity,
    load_knowledge_base,
    load_resolver,
)

Run = Callable[..., CheckResult]


@pytest.fixture
def run(tiny_kb: KnowledgeBase, tiny_resolver: DictResolver) -> Run:
    def run_check(
        proposed: Sequence[MedicationInput],
        active: Sequence[MedicationInput] = (),
        allergies: Sequence[AllergyInput] = (),
        policy: Policy = DEFAULT_POLICY,
    ) -> CheckResult:
        return check(
            proposed,
            active,
            allergies,
            PatientContext(age_years=70),
            kb=tiny_kb,
            resolver=tiny_resolver,
            policy=policy,
        )

    return run_check


def allergy(
    name_or_code: str, *, system: str = RXNORM_SYSTEM, item_id: str = "alg-1"
) -> AllergyInput:
    code = IN.get(name_or_code, name_or_code)
    return AllergyInput(
        id=item_id,
        label=f"{name_or_code} allergy",
        codings=(Coding(system, code),),
        criticality="high",
        reference=f"AllergyIntolerance/{item_id}",
    )


def only(result: CheckResult, rule_id: str) -> Issue:
    found = [i for i in result.issues if i.rule_id == rule_id]
    assert len(found) == 1, [i.rule_id for i in result.issues]
    return found[0]


def rule_ids(result: CheckResult) -> list[str]:
    return [i.rule_id for i in result.issues]


# ---------------------------------------------------------------- drug-drug


def test_proposed_against_active(run: Run) -> None:
    result = run([med("clarithromycin")], [med("simvastatin"), med("metformin")])
    issue = only(result, "ONC-HP-25")
    assert issue.category is IssueCategory.DRUG_DRUG
    assert (issue.severity, issue.display, issue.kb_display) == (
        Severity.CONTRAINDICATED,
        Display.INTERRUPTIVE,
        Display.INTERRUPTIVE,
    )
    proposed, other = issue.implicated
    assert (proposed.role, proposed.id, other.role, other.id) == (
        "proposed",
        "med-clarithromycin",
        "active",
        "med-simvastatin",
    )
    assert proposed.class_id == "ehr:class/strong-3a4-inhibitors"
    assert other.class_label == "Simvastatin and lovastatin"
    assert [i.name for i in other.ingredients] == ["simvastatin"]
    assert issue.mechanism
    assert issue.consequence
    assert issue.management
    assert [c.id for c in issue.citations] == ["label-a"]
    assert issue.source_list == "onc-high-priority"
    assert result.kb_version == run([]).kb_version
    assert result.interruptive


def test_proposed_against_proposed_but_not_active_against_active(run: Run) -> None:
    assert rule_ids(run([med("simvastatin"), med("ketoconazole")])) == ["ONC-HP-25"]
    assert rule_ids(run([med("metformin")], [med("simvastatin"), med("ketoconazole")])) == []


def test_member_override(run: Run) -> None:
    issue = only(run([med("amiodarone")], [med("lovastatin")]), "ONC-HP-25")
    assert (issue.severity, issue.display, issue.kb_display) == (
        Severity.MAJOR,
        Display.PASSIVE,
        Display.PASSIVE,
    )
    assert issue.note is not None
    assert "dose limit" in issue.note


def test_near_miss_does_not_fire(run: Run) -> None:
    assert rule_ids(run([med("atorvastatin")], [med("clarithromycin")])) == []


def test_route_qualifier(run: Run) -> None:
    topical_gel = med("9000002")
    oral_tablet = med("9000003")
    assert rule_ids(run([topical_gel], [med("warfarin")])) == []
    assert rule_ids(run([oral_tablet], [med("warfarin")])) == ["DDI-WARFARIN-NSAIDS"]
    # Ingredient code: no dose form, route unknown → conservative match.
    assert rule_ids(run([med("diclofenac")], [med("warfarin")])) == ["DDI-WARFARIN-NSAIDS"]
    # The caller's route overrides the code's.
    stated = med("diclofenac", route=RouteCategory.TOPICAL)
    assert rule_ids(run([stated], [med("warfarin")])) == []
    stated_oral = med("9000002", route=RouteCategory.SYSTEMIC)
    assert rule_ids(run([stated_oral], [med("warfarin")])) == ["DDI-WARFARIN-NSAIDS"]


def test_same_class_on_both_sides_fires_once(run: Run) -> None:
    result = run([med("methadone")], [med("haloperidol")])
    assert rule_ids(result) == ["ONC-HP-21"]


def test_same_ingredient_twice_is_a_duplicate_not_an_interaction(run: Run) -> None:
    result = run([med("methadone", item_id="new")], [med("methadone", item_id="old")])
    assert rule_ids(result) == ["DUP-SAME-INGREDIENT"]


def test_ingredients_of_one_product_never_interact(run: Run) -> None:
    combo = MedicationInput(
        id="combo",
        label="methadone + haloperidol (two codings)",
        codings=(Coding(RXNORM_SYSTEM, IN["methadone"]), Coding(RXNORM_SYSTEM, IN["haloperidol"])),
    )
    assert rule_ids(run([combo])) == []
    assert rule_ids(run([combo], [med("ondansetron")])) == ["ONC-HP-21"]


def test_product_codes_resolve_to_ingredients(run: Run) -> None:
    by_ndc = MedicationInput("ndc", "simvastatin (NDC)", (Coding(NDC_SYSTEM, NDC_SIMVASTATIN),))
    by_scd = med("9000001")
    by_in = med("simvastatin")
    for item in (by_ndc, by_scd, by_in):
        assert rule_ids(run([med("clarithromycin")], [item])) == ["ONC-HP-25"]


# ---------------------------------------------------------------- duplicates


def test_same_ingredient_inside_a_combination_product(run: Run) -> None:
    result = run([med("acetaminophen")], [med("9000004")])
    issue = only(result, "DUP-SAME-INGREDIENT")
    assert issue.category is IssueCategory.DUPLICATE_THERAPY
    assert [i.name for i in issue.implicated[1].ingredients] == ["acetaminophen"]
    assert issue.severity is Severity.MAJOR


def test_same_ingredient_by_different_routes_is_not_a_duplicate(run: Run) -> None:
    assert rule_ids(run([med("9000002")], [med("9000003")])) == []
    assert rule_ids(run([med("9000003")], [med("diclofenac")])) == ["DUP-SAME-INGREDIENT"]


def test_duplicate_class_allowance_zero(run: Run) -> None:
    result = run([med("ibuprofen")], [med("naproxen")])
    issue = only(result, "DUP-NSAIDS")
    assert (issue.severity, issue.display) == (Severity.MODERATE, Display.PASSIVE)
    assert [i.id for i in issue.implicated] == ["med-ibuprofen", "med-naproxen"]
    assert issue.implicated[0].class_id == "ehr:dup/nsaids"


def test_duplicate_class_routes(run: Run) -> None:
    assert rule_ids(run([med("9000002")], [med("naproxen")])) == []


def test_duplicate_class_allowance_one(run: Run) -> None:
    two = run([med("simvastatin")], [med("atorvastatin")])
    assert "DUP-STATINS" not in rule_ids(two)
    three = run([med("simvastatin")], [med("atorvastatin"), med("lovastatin")])
    issue = only(three, "DUP-STATINS")
    assert len(issue.implicated) == 3
    assert issue.implicated[0].role == "proposed"


def test_duplicate_class_needs_the_proposed_medication(run: Run) -> None:
    assert rule_ids(run([med("metformin")], [med("ibuprofen"), med("naproxen")])) == []


# ---------------------------------------------------------------- allergies


def test_allergy_same_ingredient(run: Run) -> None:
    result = run([med("9000005")], allergies=[allergy("amoxicillin")])
    issue = only(result, "ALG-SAME-INGREDIENT")
    assert issue.category is IssueCategory.DRUG_ALLERGY
    assert (issue.severity, issue.display) == (Severity.CONTRAINDICATED, Display.INTERRUPTIVE)
    assert [i.kind for i in issue.implicated] == ["medication", "allergy"]
    assert issue.implicated[1].reference == "AllergyIntolerance/alg-1"
    assert [c.id for c in issue.citations] == ["paper-b"]  # the group's


def test_allergy_same_group(run: Run) -> None:
    issue = only(run([med("piperacillin")], allergies=[allergy("amoxicillin")]), "ALG-SAME-GROUP")
    assert (issue.severity, issue.display) == (Severity.MAJOR, Display.INTERRUPTIVE)
    assert issue.implicated[0].class_id == "ehr:allergen/penicillins"
    assert [i.name for i in issue.implicated[1].ingredients] == ["amoxicillin"]


def test_allergy_coded_as_a_snomed_substance(run: Run) -> None:
    snomed = allergy(PENICILLIN_SNOMED, system=SNOMED_SYSTEM)
    assert rule_ids(run([med("amoxicillin")], allergies=[snomed])) == ["ALG-SAME-GROUP"]
    assert rule_ids(run([med("cephalexin")], allergies=[snomed])) == ["ALG-PCN-CEPH-R1"]


def test_cross_sensitivity_strongest_wins(run: Run) -> None:
    issue = only(run([med("cephalexin")], allergies=[allergy("amoxicillin")]), "ALG-PCN-CEPH-R1")
    assert (issue.severity, issue.display) == (Severity.MAJOR, Display.INTERRUPTIVE)
    assert issue.implicated[1].class_id == "ehr:allergen/penicillins"


def test_cross_sensitivity_info(run: Run) -> None:
    issue = only(run([med("ceftriaxone")], allergies=[allergy("amoxicillin")]), "ALG-PCN-CEPH")
    assert (issue.severity, issue.display) == (Severity.MINOR, Display.INFORMATIONAL)


def test_cross_sensitivity_none_is_cleared_not_an_issue(run: Run) -> None:
    result = run([med("furosemide")], allergies=[allergy("sulfamethoxazole")])
    assert result.issues == ()
    (cleared,) = result.cleared
    assert (cleared.rule_id, cleared.medication_id, cleared.allergy_id) == (
        "ALG-SULFA-NONABX",
        "med-furosemide",
        "alg-1",
    )


def test_unrelated_allergy(run: Run) -> None:
    result = run([med("metformin")], allergies=[allergy("amoxicillin")])
    assert result.issues == ()
    assert result.cleared == ()


def test_allergies_are_checked_against_proposed_only(run: Run) -> None:
    assert rule_ids(run([med("metformin")], [med("amoxicillin")], [allergy("amoxicillin")])) == []


# ---------------------------------------------------------------- unresolved, not checkable


def test_unresolved_and_not_checkable_are_reported(run: Run) -> None:
    free_text = MedicationInput("ft", "grandma's tea", text="herbal tea")
    unknown = MedicationInput("unk", "unknown", (Coding(RXNORM_SYSTEM, "99999999"),))
    local = MedicationInput(
        "loc",
        "simvastatin (local + RxNorm)",
        (
            Coding("urn:local:formulary", "SIM20", "Simva 20"),
            Coding(RXNORM_SYSTEM, IN["simvastatin"]),
        ),
    )
    empty = MedicationInput("empty", "nothing")
    text_allergy = AllergyInput("a-ft", "shellfish", text="shellfish")
    snomed_unknown = allergy("91935009", system=SNOMED_SYSTEM, item_id="a-sn")
    result = run(
        [med("clarithromycin"), free_text],
        [unknown, local, empty],
        [text_allergy, snomed_unknown],
    )
    # The local product is still checked by RxNorm; the proposed free-text tea is not screened
    # at all, and the answer says so as an issue of its own (a warning, not a block).
    assert rule_ids(result) == ["ONC-HP-25", "MS-UNABLE-TO-CHECK"]
    unable = result.issues[1]
    assert unable.category is IssueCategory.UNABLE_TO_CHECK
    assert unable.display is Display.PASSIVE
    assert [i.id for i in unable.implicated] == ["ft"]
    assert "free text only" in (unable.consequence or "")
    assert [(s.item_id, s.role, s.status) for s in result.items] == [
        ("med-clarithromycin", "proposed", "checked"),
        ("ft", "proposed", "not_checkable"),
        ("unk", "active", "unresolved"),
        ("loc", "active", "checked"),
        ("empty", "active", "not_checkable"),
        ("a-ft", "allergy", "not_checkable"),
        ("a-sn", "allergy", "unresolved"),
    ]
    assert [i.name for i in result.items[3].ingredients] == ["simvastatin"]
    assert [(u.item_id, u.kind, u.system, u.reason) for u in result.unresolved] == [
        ("unk", "medication", RXNORM_SYSTEM, "unknown-code"),
        ("loc", "medication", "urn:local:formulary", "unsupported-system"),
        ("a-sn", "allergy", SNOMED_SYSTEM, "unknown-code"),
    ]
    assert result.not_checkable == (
        UncheckedItem("ft", "medication", "grandma's tea", "free-text-only"),
        UncheckedItem("unk", "medication", "unknown", "no-code-resolved"),
        UncheckedItem("empty", "medication", "nothing", "no-code"),
        UncheckedItem("a-ft", "allergy", "shellfish", "free-text-only"),
        UncheckedItem("a-sn", "allergy", "91935009 allergy", "no-code-resolved"),
    )


def test_an_unknown_proposed_code_is_an_unable_to_check_issue(run: Run) -> None:
    unknown = MedicationInput("unk", "mystery pill", (Coding(RXNORM_SYSTEM, "99999999"),))
    result = run([unknown])
    (issue,) = result.issues
    assert issue.rule_id == "MS-UNABLE-TO-CHECK"
    assert f"{RXNORM_SYSTEM}|99999999" in (issue.consequence or "")
    assert not result.interruptive
    # A tenant may make it interrupt (per-rule display) like any rule.
    strict = run(
        [unknown], policy=Policy(rule_display={"MS-UNABLE-TO-CHECK": Display.INTERRUPTIVE})
    )
    assert strict.interruptive


def test_a_drug_the_kb_does_not_name_is_checked_with_nothing_found(run: Run) -> None:
    result = run([med("metformin")], [med("lisinopril")])
    assert result.issues == ()
    assert [s.status for s in result.items] == ["checked", "checked"]
    assert result.kb_version


def test_empty_inputs(run: Run) -> None:
    result = run([])
    assert (result.issues, result.unresolved, result.not_checkable) == ((), (), ())
    assert not result.interruptive


# ---------------------------------------------------------------- order and policy


def _profile() -> tuple[list[MedicationInput], list[MedicationInput], list[AllergyInput]]:
    proposed = [med("clarithromycin"), med("ibuprofen")]
    active = [
        med("simvastatin"),
        med("amiodarone"),
        med("warfarin"),
        med("naproxen"),
        med("lovastatin"),
        med("metformin"),
    ]
    return proposed, active, [allergy("amoxicillin")]


def test_issue_order_is_severity_then_rule_id(run: Run) -> None:
    proposed, active, allergies = _profile()
    result = run(proposed, active, allergies)
    keys = [(i.severity, i.rule_id) for i in result.issues]
    assert rule_ids(result) == [
        "ONC-HP-25",
        "ONC-HP-25",
        "DDI-WARFARIN-NSAIDS",
        "DUP-NSAIDS",
    ]
    assert keys[0][0] is Severity.CONTRAINDICATED
    shuffled = active[:]
    random.Random(7).shuffle(shuffled)
    assert run(proposed, shuffled, allergies).issues == result.issues


def test_default_policy_keeps_the_kb_display(run: Run) -> None:
    issue = only(run([med("lisinopril")], [med("spironolactone")]), "ONC-NI-05")
    assert (issue.severity, issue.display) == (Severity.MAJOR, Display.PASSIVE)


def test_policy_demotes_major(run: Run) -> None:
    policy = Policy(interruptive=frozenset({Severity.CONTRAINDICATED}))
    result = run([med("ibuprofen")], [med("warfarin"), med("simvastatin")], policy=policy)
    issue = only(result, "DDI-WARFARIN-NSAIDS")
    assert (issue.display, issue.kb_display) == (Display.PASSIVE, Display.INTERRUPTIVE)
    kept = only(run([med("clarithromycin")], [med("simvastatin")], policy=policy), "ONC-HP-25")
    assert kept.display is Display.INTERRUPTIVE


def test_policy_promotes_moderate(run: Run) -> None:
    policy = Policy(
        interruptive=frozenset({Severity.CONTRAINDICATED, Severity.MAJOR, Severity.MODERATE})
    )
    issue = only(
        run([med("sildenafil")], [med("nitroglycerin")], policy=policy), "DDI-SILDENAFIL-NITRATES"
    )
    assert (issue.display, issue.kb_display) == (Display.INTERRUPTIVE, Display.PASSIVE)
    assert issue.severity is Severity.MODERATE  # policy never changes severity
    # Major stays as the KB has it (passive non-interruptive-list rule).
    assert (
        only(run([med("lisinopril")], [med("spironolactone")], policy=policy), "ONC-NI-05").display
        is Display.PASSIVE
    )


def test_policy_demotion_keeps_informational(run: Run) -> None:
    policy = Policy(interruptive=frozenset())
    issue = only(
        run([med("ceftriaxone")], allergies=[allergy("amoxicillin")], policy=policy), "ALG-PCN-CEPH"
    )
    assert issue.display is Display.INFORMATIONAL


def test_policy_rule_display_wins(run: Run) -> None:
    policy = Policy(
        interruptive=frozenset({Severity.CONTRAINDICATED}),
        rule_display={
            "DDI-WARFARIN-NSAIDS": Display.INTERRUPTIVE,
            "ONC-HP-25": Display.INFORMATIONAL,
        },
    )
    result = run(
        [med("ibuprofen"), med("clarithromycin")],
        [med("warfarin"), med("simvastatin")],
        policy=policy,
    )
    assert only(result, "DDI-WARFARIN-NSAIDS").display is Display.INTERRUPTIVE
    assert only(result, "ONC-HP-25").display is Display.INFORMATIONAL


def test_policy_display_for_table() -> None:
    policy = Policy(interruptive=frozenset({Severity.CONTRAINDICATED, Severity.MODERATE}))
    assert policy.display_for("X-1", Severity.CONTRAINDICATED, Display.PASSIVE) is Display.PASSIVE
    assert policy.display_for("X-1", Severity.MAJOR, Display.INTERRUPTIVE) is Display.PASSIVE
    assert policy.display_for("X-1", Severity.MAJOR, Display.INFORMATIONAL) is Display.INFORMATIONAL
    assert policy.display_for("X-1", Severity.MODERATE, Display.PASSIVE) is Display.INTERRUPTIVE
    assert policy.display_for("X-1", Severity.MINOR, Display.INFORMATIONAL) is Display.INFORMATIONAL
    for severity in Severity:
        for display in Display:
            assert DEFAULT_POLICY.display_for("X-1", severity, display) is display


def test_an_unknown_route_reads_as_systemic_not_as_every_local_counterpart() -> None:
    kb, resolver = load_knowledge_base(), load_resolver()
    diclofenac = MedicationInput("d", "diclofenac", (Coding(RXNORM_SYSTEM, "3355"),))
    warfarin = MedicationInput("w", "warfarin", (Coding(RXNORM_SYSTEM, "11289"),))
    result = check([diclofenac], [warfarin], [], kb=kb, resolver=resolver)
    rules = [i.rule_id for i in result.issues if i.category is IssueCategory.DRUG_DRUG]
    assert rules == ["DDI-WARFARIN-NSAIDS"]  # not also its topical/ophthalmic/nasal versions
    gel = MedicationInput(
        "g", "diclofenac gel", (Coding(RXNORM_SYSTEM, "3355"),), route=RouteCategory.TOPICAL
    )
    topical = check([gel], [warfarin], [], kb=kb, resolver=resolver)
    assert [i.rule_id for i in topical.issues] == ["DDI-WARFARIN-NSAIDS-TOPICAL"]
