"""Tests generated from the shipped knowledge base: every rule, group and class, one by one.

Parametrised over ``load_knowledge_base()`` (``data/sources/*.yaml`` as committed) and checked
through ``engine.check`` with the shipped RxNorm table (``load_resolver()``). Rule-logic tests use
that table with a fallback to ingredient-only resolutions for KB ingredients the table lacks, so
a table gap fails one test (``test_normalisation.py``: the shipped table covers the KB's
ingredients) instead of every rule that names the ingredient.

Examples are built from the sources themselves: the first member of each side (the first member
of side b that differs from side a's), with a route each side accepts (systemic when allowed).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import pytest

from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    SNOMED_SYSTEM,
    AllergyInput,
    CheckResult,
    Coding,
    IssueCategory,
    MedicationInput,
    Policy,
)
from ehr.modules.medication_safety.knowledge import (
    CONCEPTS_FILE,
    LEVEL_RANK,
    NDC_FILE,
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    SEVERITY_RANK,
    CompiledAllergenGroup,
    CompiledCrossSensitivity,
    CompiledDuplicateClass,
    CompiledInteraction,
    CompiledOverride,
    CrossSensitivityLevel,
    Display,
    KnowledgeBase,
    KnowledgeBaseInvalid,
    NearMissPair,
    Resolution,
    RouteCategory,
    Severity,
    load_knowledge_base,
    load_resolver,
    shipped_table_dir,
)

ONC_HIGH_PRIORITY_ROWS = {
    "03", "04", "06", "08", "11", "16", "20", "21", "22", "23", "25", "27", "28", "30", "31"
}  # fmt: skip


def _shipped() -> KnowledgeBase | None:
    try:
        return load_knowledge_base()
    except KnowledgeBaseInvalid:
        return None  # test_shipped_knowledge_base_compiles reports the problems


KB = _shipped()


class KbFallbackResolver:
    """The shipped table; KB ingredients it lacks resolve as bare ingredients (IN)."""

    def __init__(self, kb: KnowledgeBase | None) -> None:
        self.table = load_resolver()
        self.kb_ingredients = dict(kb.ingredients) if kb is not None else {}

    def resolve(self, system: str, code: str) -> Resolution | None:
        found = self.table.resolve(system, code)
        if found is None and system == RXNORM_SYSTEM and code in self.kb_ingredients:
            return Resolution(code, "IN", self.kb_ingredients[code], frozenset((code,)), None)
        return found


RESOLVER = KbFallbackResolver(KB)


def _kb() -> KnowledgeBase:
    assert KB is not None, "the shipped knowledge base does not compile"
    return KB


def run(
    proposed: Sequence[MedicationInput],
    active: Sequence[MedicationInput] = (),
    allergies: Sequence[AllergyInput] = (),
    policy: Policy = Policy(),
) -> CheckResult:
    return check(proposed, active, allergies, kb=_kb(), resolver=RESOLVER, policy=policy)


def med(
    rxcui: str, route: RouteCategory | None = None, *, item_id: str | None = None
) -> MedicationInput:
    name = KB.ingredients.get(rxcui, rxcui) if KB is not None else rxcui
    return MedicationInput(
        id=item_id or f"med-{rxcui}",
        label=name,
        codings=(Coding(RXNORM_SYSTEM, rxcui, name),),
        route=route,
    )


def allergy_to(rxcui: str) -> AllergyInput:
    return AllergyInput("alg", f"allergy {rxcui}", (Coding(RXNORM_SYSTEM, rxcui),))


def route_for(routes: frozenset[RouteCategory] | None) -> RouteCategory | None:
    if routes is None:
        return None
    return RouteCategory.SYSTEMIC if RouteCategory.SYSTEMIC in routes else sorted(routes)[0]


def _ids(values: Iterable[object], attr: str = "id") -> list[str]:
    return [str(getattr(v, attr)) for v in values]


# ---------------------------------------------------------------- parameters


INTERACTIONS: list[CompiledInteraction] = sorted(
    KB.interactions.values() if KB else [], key=lambda r: r.id
)


@dataclass(frozen=True)
class Example:
    rule: CompiledInteraction
    x: str  # side a
    y: str  # side b
    x_route: RouteCategory | None
    y_route: RouteCategory | None

    @property
    def expected(self) -> tuple[Severity, Display]:
        overrides = [
            o for o in (self.rule.override_for(self.x), self.rule.override_for(self.y)) if o
        ]
        if not overrides:
            return self.rule.severity, self.rule.display
        strongest = min(overrides, key=_override_rank)
        return strongest.severity, strongest.display


def _override_rank(override: CompiledOverride) -> tuple[int, int, str]:
    display_rank = {Display.INTERRUPTIVE: 0, Display.PASSIVE: 1, Display.INFORMATIONAL: 2}
    return (SEVERITY_RANK[override.severity], display_rank[override.display], override.rxcui)


def example(rule: CompiledInteraction, x: str | None = None, y: str | None = None) -> Example:
    x = x or rule.a.members[0].rxcui
    if y is None:
        y = next(m.rxcui for m in rule.b.members if m.rxcui != x)
    return Example(rule, x, y, route_for(rule.a.routes), route_for(rule.b.routes))


def _override_examples() -> Iterator[tuple[str, Example]]:
    for rule in INTERACTIONS:
        for override in rule.overrides:
            if override.rxcui in rule.a.member_ids:
                other = next(m.rxcui for m in rule.b.members if m.rxcui != override.rxcui)
                yield f"{rule.id}:{override.rxcui}", example(rule, override.rxcui, other)
            if override.rxcui in rule.b.member_ids:
                other = next(m.rxcui for m in rule.a.members if m.rxcui != override.rxcui)
                yield f"{rule.id}:{override.rxcui}", example(rule, other, override.rxcui)


OVERRIDES = dict(_override_examples())
NEAR_MISSES = [(rule, miss) for rule in INTERACTIONS for miss in rule.near_misses]
LOCAL_ONLY_SIDES = [
    (rule, side_name)
    for rule in INTERACTIONS
    for side_name, side in (("a", rule.a), ("b", rule.b))
    if side.routes is not None and RouteCategory.TOPICAL not in side.routes
]
CROSSES: list[CompiledCrossSensitivity] = sorted(
    KB.cross_sensitivities.values() if KB else [], key=lambda c: c.id
)
GROUPS = sorted(KB.allergen_groups.values() if KB else [], key=lambda g: g.id)
DUPLICATES: list[CompiledDuplicateClass] = sorted(
    KB.duplicate_classes.values() if KB else [], key=lambda d: d.id
)


# ---------------------------------------------------------------- the KB itself


def test_shipped_knowledge_base_compiles() -> None:
    kb = load_knowledge_base()  # raises with every problem (file + id) listed
    assert kb is load_knowledge_base()  # compiled once
    assert kb.interactions
    assert kb.version.rsplit("+", 1)[1] == kb.content_hash[:12]


def _all_cited() -> Iterator[tuple[str, tuple[str, ...]]]:
    kb = KB
    if kb is None:
        return
    for rule in kb.interactions.values():
        yield rule.id, tuple(c.id for c in rule.citations)
    for cross in kb.cross_sensitivities.values():
        yield cross.id, tuple(c.id for c in cross.citations)
    for dup in kb.duplicate_classes.values():
        yield dup.id, tuple(c.id for c in dup.citations)
    for group in kb.allergen_groups.values():
        yield group.id, tuple(c.id for c in group.citations)
    for cls in kb.classes.values():
        yield cls.id, tuple(c.id for c in cls.citations)


@pytest.mark.parametrize(("entry_id", "citations"), list(_all_cited()))
def test_every_rule_cites_a_source_that_resolves(entry_id: str, citations: tuple[str, ...]) -> None:
    assert citations, entry_id
    for citation_id in citations:
        citation = _kb().citations[citation_id]
        assert len(citation.text) >= 3
        assert citation.url is None or citation.url.startswith("https://")


def test_onc_high_priority_rows_are_all_encoded() -> None:
    rows = {
        rule.id.split("-")[2]
        for rule in INTERACTIONS
        if rule.source_list == "onc-high-priority" and rule.id.startswith("ONC-HP-")
    }
    assert rows == ONC_HIGH_PRIORITY_ROWS


@pytest.mark.parametrize(
    "rule", [r for r in INTERACTIONS if r.source_list == "onc-high-priority"], ids=lambda r: r.id
)
def test_onc_high_priority_rules_interrupt_by_default(rule: CompiledInteraction) -> None:
    assert rule.display is Display.INTERRUPTIVE
    assert Policy().display_for(rule.id, rule.severity, rule.display) is Display.INTERRUPTIVE
    ex = example(rule)
    _severity, display = ex.expected
    result = run([med(ex.x, ex.x_route)], [med(ex.y, ex.y_route)])
    (issue,) = [i for i in result.issues if i.rule_id == rule.id]
    assert issue.display is display
    if rule.override_for(ex.x) is None and rule.override_for(ex.y) is None:
        assert issue.display is Display.INTERRUPTIVE


# ---------------------------------------------------------------- interactions


@pytest.mark.parametrize("rule", INTERACTIONS, ids=lambda r: r.id)
def test_rule_fires_on_its_own_example(rule: CompiledInteraction) -> None:
    ex = example(rule)
    severity, display = ex.expected
    for proposed, active in (
        ([med(ex.x, ex.x_route)], [med(ex.y, ex.y_route)]),
        ([med(ex.y, ex.y_route)], [med(ex.x, ex.x_route)]),
        ([med(ex.x, ex.x_route), med(ex.y, ex.y_route)], []),
    ):
        result = run(proposed, active)
        found = [i for i in result.issues if i.rule_id == rule.id]
        assert len(found) == 1, (rule.id, [i.rule_id for i in result.issues])
        issue = found[0]
        assert issue.category is IssueCategory.DRUG_DRUG
        assert (issue.severity, issue.kb_display, issue.display) == (severity, display, display)
        assert {i.ingredients[0].rxcui for i in issue.implicated} == {ex.x, ex.y}
        assert result.unresolved == ()


def _every_member_examples() -> Iterator[tuple[str, Example]]:
    """Each member of each side against the other side's first member (that differs)."""
    for rule in INTERACTIONS:
        for member in rule.a.members:
            other = next((m.rxcui for m in rule.b.members if m.rxcui != member.rxcui), None)
            if other is not None:
                yield f"{rule.id}:a:{member.rxcui}", example(rule, member.rxcui, other)
        for member in rule.b.members:
            other = next((m.rxcui for m in rule.a.members if m.rxcui != member.rxcui), None)
            if other is not None:
                yield f"{rule.id}:b:{member.rxcui}", example(rule, other, member.rxcui)


EVERY_MEMBER = dict(_every_member_examples())


@pytest.mark.parametrize("ex", list(EVERY_MEMBER.values()), ids=list(EVERY_MEMBER))
def test_rule_fires_for_every_member_in_both_directions(ex: Example) -> None:
    severity, display = ex.expected
    for proposed, active in (
        ([med(ex.x, ex.x_route)], [med(ex.y, ex.y_route)]),
        ([med(ex.y, ex.y_route)], [med(ex.x, ex.x_route)]),
    ):
        found = [i for i in run(proposed, active).issues if i.rule_id == ex.rule.id]
        assert len(found) == 1, (ex.rule.id, ex.x, ex.y)
        assert (found[0].severity, found[0].kb_display) == (severity, display)


@pytest.mark.parametrize("rule", INTERACTIONS, ids=lambda r: r.id)
def test_rule_does_not_fire_outside_its_sides(rule: CompiledInteraction) -> None:
    ex = example(rule)
    outside = next(
        rxcui
        for rxcui in _kb().ingredients
        if rxcui not in rule.a.member_ids and rxcui not in rule.b.member_ids
    )
    for member, route in ((ex.x, ex.x_route), (ex.y, ex.y_route)):
        result = run([med(outside)], [med(member, route)])
        assert rule.id not in _ids(result.issues, "rule_id")


@pytest.mark.parametrize(
    ("rule", "miss"), NEAR_MISSES, ids=[f"{r.id}:{m.a}+{m.b}" for r, m in NEAR_MISSES]
)
def test_near_miss_does_not_fire(rule: CompiledInteraction, miss: NearMissPair) -> None:
    assert rule.id not in _ids(run([med(miss.a)], [med(miss.b)]).issues, "rule_id")
    assert rule.id not in _ids(run([med(miss.b)], [med(miss.a)]).issues, "rule_id")


@pytest.mark.parametrize("ex", list(OVERRIDES.values()), ids=list(OVERRIDES))
def test_member_override_applies(ex: Example) -> None:
    severity, display = ex.expected
    result = run([med(ex.x, ex.x_route)], [med(ex.y, ex.y_route)])
    (issue,) = [i for i in result.issues if i.rule_id == ex.rule.id]
    assert (issue.severity, issue.kb_display) == (severity, display)
    assert issue.note


@pytest.mark.parametrize(
    ("rule", "side_name"), LOCAL_ONLY_SIDES, ids=[f"{r.id}:{s}" for r, s in LOCAL_ONLY_SIDES]
)
def test_topical_form_does_not_fire_a_systemic_only_side(
    rule: CompiledInteraction, side_name: str
) -> None:
    ex = example(rule)
    x_route = RouteCategory.TOPICAL if side_name == "a" else ex.x_route
    y_route = RouteCategory.TOPICAL if side_name == "b" else ex.y_route
    result = run([med(ex.x, x_route)], [med(ex.y, y_route)])
    assert rule.id not in _ids(result.issues, "rule_id")


# ---------------------------------------------------------------- allergies


def _cross_winner(kb: KnowledgeBase, allergen: str, target: str) -> CompiledCrossSensitivity | None:
    candidates = [
        c
        for group in kb.ingredient_allergen_groups.get(allergen, ())
        for c in kb.cross_sensitivity_index.get((group, target), ())
    ]
    return min(candidates, key=lambda c: (LEVEL_RANK[c.level], c.id), default=None)


def _same_group(kb: KnowledgeBase, allergen: str, target: str) -> bool:
    return bool(
        set(kb.ingredient_allergen_groups.get(allergen, ()))
        & set(kb.ingredient_allergen_groups.get(target, ()))
    )


_OUTCOME = {
    CrossSensitivityLevel.ALERT: (Severity.MAJOR, Display.INTERRUPTIVE),
    CrossSensitivityLevel.INFO: (Severity.MINOR, Display.INFORMATIONAL),
}


@pytest.mark.parametrize("cross", CROSSES, ids=lambda c: c.id)
def test_cross_sensitivity_fires_at_its_level(cross: CompiledCrossSensitivity) -> None:
    kb = _kb()
    allergen = kb.allergen_groups[cross.from_group].members[0].rxcui
    eligible = [
        t.rxcui
        for t in cross.targets
        if t.rxcui != allergen and not _same_group(kb, allergen, t.rxcui)
    ]
    assert eligible, f"{cross.id}: every target is in the allergen's own group"
    winners = {t: _cross_winner(kb, allergen, t) for t in eligible}
    target = next((t for t, w in winners.items() if w is cross), eligible[0])
    expected = winners[target]
    assert expected is not None
    assert LEVEL_RANK[expected.level] <= LEVEL_RANK[cross.level]  # never weaker than this rule

    result = run([med(target)], allergies=[allergy_to(allergen)])
    allergy_issues = [i for i in result.issues if i.category is IssueCategory.DRUG_ALLERGY]
    if expected.level is CrossSensitivityLevel.NONE:
        assert allergy_issues == []
        assert [c.rule_id for c in result.cleared] == [expected.id]
        return
    (issue,) = allergy_issues
    assert issue.rule_id == expected.id
    assert (issue.severity, issue.display) == _OUTCOME[expected.level]


@pytest.mark.parametrize("cross", CROSSES, ids=lambda c: c.id)
def test_cross_sensitivity_does_not_fire_outside_its_target(
    cross: CompiledCrossSensitivity,
) -> None:
    kb = _kb()
    allergen = kb.allergen_groups[cross.from_group].members[0].rxcui
    related = set(kb.allergen_groups[cross.from_group].member_ids) | cross.target_ids
    outside = next(
        rxcui
        for rxcui in kb.ingredients
        if rxcui not in related
        and not _same_group(kb, allergen, rxcui)
        and _cross_winner(kb, allergen, rxcui) is None
    )
    result = run([med(outside)], allergies=[allergy_to(allergen)])
    assert [i for i in result.issues if i.category is IssueCategory.DRUG_ALLERGY] == []
    assert result.cleared == ()


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.id)
def test_allergy_same_ingredient_and_same_group(group: CompiledAllergenGroup) -> None:
    members = group.members
    first = members[0].rxcui
    same = run([med(first)], allergies=[allergy_to(first)])
    assert _ids(same.issues, "rule_id") == ["ALG-SAME-INGREDIENT"]
    assert same.issues[0].severity is Severity.CONTRAINDICATED
    if len(members) > 1:
        other = run([med(members[1].rxcui)], allergies=[allergy_to(first)])
        assert [i.rule_id for i in other.issues if i.category is IssueCategory.DRUG_ALLERGY] == [
            "ALG-SAME-GROUP"
        ]
    for code in group.snomed_codes:
        coded = AllergyInput("alg", "group allergy", (Coding(SNOMED_SYSTEM, code),))
        by_snomed = run([med(first)], allergies=[coded])
        assert _ids(by_snomed.issues, "rule_id") == ["ALG-SAME-GROUP"]


# ---------------------------------------------------------------- duplicates


def _distinct_members(dup: CompiledDuplicateClass, count: int) -> list[MedicationInput]:
    route = route_for(dup.routes)
    return [med(m.rxcui, route, item_id=f"dup-{i}") for i, m in enumerate(dup.members[:count])]


@pytest.mark.parametrize("dup", DUPLICATES, ids=lambda d: d.rule_id)
def test_duplicate_class_fires_beyond_its_allowance(dup: CompiledDuplicateClass) -> None:
    meds = _distinct_members(dup, dup.allowance + 2)
    result = run(meds[:1], meds[1:])
    (issue,) = [i for i in result.issues if i.rule_id == dup.rule_id]
    assert issue.category is IssueCategory.DUPLICATE_THERAPY
    assert (issue.severity, issue.kb_display) == (dup.severity, dup.display)
    assert len(issue.implicated) == dup.allowance + 2


@pytest.mark.parametrize("dup", DUPLICATES, ids=lambda d: d.rule_id)
def test_duplicate_class_within_its_allowance(dup: CompiledDuplicateClass) -> None:
    meds = _distinct_members(dup, dup.allowance + 1)
    result = run(meds[:1], meds[1:])
    assert dup.rule_id not in _ids(result.issues, "rule_id")


# ---------------------------------------------------------------- codes: products and NDCs


@dataclass(frozen=True)
class Product:
    system: str
    code: str
    tty: str
    route: RouteCategory | None


def _rows(name: str) -> Iterator[list[str]]:
    with shipped_table_dir().joinpath(name).open("rb") as handle:
        lines = gzip.decompress(handle.read()).decode("utf-8").splitlines()
    for line in lines[1:]:
        yield line.split("\t")


@cache
def _products() -> dict[str, dict[str, Product]]:
    """Ingredient → {"SCD"/"SBD"/"NDC": the first single-ingredient product in the table}."""
    table = load_resolver()
    single: dict[str, tuple[str, str]] = {}  # product rxcui -> (ingredient, tty)
    found: dict[str, dict[str, Product]] = {}
    for rxcui, tty, _name, ingredients in _rows(CONCEPTS_FILE):
        if tty in {"SCD", "SBD"} and "," not in ingredients:
            single[rxcui] = (ingredients, tty)
            resolution = table.resolve(RXNORM_SYSTEM, rxcui)
            route = resolution.route if resolution else None
            found.setdefault(ingredients, {}).setdefault(
                tty, Product(RXNORM_SYSTEM, rxcui, tty, route)
            )
    for ndc11, rxcui in _rows(NDC_FILE):
        if rxcui in single:
            ingredient = single[rxcui][0]
            resolution = table.resolve(NDC_SYSTEM, ndc11)
            route = resolution.route if resolution else None
            found.setdefault(ingredient, {}).setdefault(
                "NDC", Product(NDC_SYSTEM, ndc11, "NDC", route)
            )
    return found


def _product_cases() -> Iterator[tuple[str, CompiledInteraction, str, str]]:
    if KB is None:
        return
    products = _products()
    for rule in INTERACTIONS:
        ex = example(rule)
        for side, ingredient in (("a", ex.x), ("b", ex.y)):
            for kind in ("SCD", "SBD", "NDC"):
                if kind in products.get(ingredient, {}):
                    yield f"{rule.id}:{side}:{kind}", rule, side, kind


PRODUCT_CASES = list(_product_cases())


def _projection(result: CheckResult) -> list[tuple[object, ...]]:
    return [
        (
            i.rule_id,
            i.severity,
            i.display,
            tuple((item.role, tuple(x.rxcui for x in item.ingredients)) for item in i.implicated),
        )
        for i in result.issues
    ]


@pytest.mark.parametrize(
    ("rule", "side", "kind"),
    [case[1:] for case in PRODUCT_CASES],
    ids=[case[0] for case in PRODUCT_CASES],
)
def test_product_codes_give_the_same_issues_as_the_ingredient(
    rule: CompiledInteraction, side: str, kind: str
) -> None:
    ex = example(rule)
    ingredient, other, other_route, side_routes = (
        (ex.x, ex.y, ex.y_route, rule.a.routes)
        if side == "a"
        else (ex.y, ex.x, ex.x_route, rule.b.routes)
    )
    product = _products()[ingredient][kind]
    by_product = MedicationInput(
        f"med-{ingredient}", "product", (Coding(product.system, product.code),)
    )
    by_ingredient = med(ingredient, product.route)
    active = [med(other, other_route)]
    product_result = run([by_product], active)
    ingredient_result = run([by_ingredient], active)
    assert product_result.unresolved == ()
    assert _projection(product_result) == _projection(ingredient_result)
    if side_routes is None or product.route is None or product.route in side_routes:
        assert rule.id in _ids(product_result.issues, "rule_id")


def test_same_ingredient_inside_a_combination_product_is_a_duplicate() -> None:
    kb = _kb()
    table = load_resolver()
    combo = next(
        (rxcui, ingredients.split(","))
        for rxcui, tty, _name, ingredients in _rows(CONCEPTS_FILE)
        if tty == "SCD"
        and "," in ingredients
        and any(i in kb.ingredients for i in ingredients.split(","))
        and table.resolve(RXNORM_SYSTEM, rxcui) is not None
    )
    rxcui, ingredients = combo
    shared = next(i for i in ingredients if i in kb.ingredients)
    result = run(
        [med(shared)], [MedicationInput("combo", "combination", (Coding(RXNORM_SYSTEM, rxcui),))]
    )
    (issue,) = [i for i in result.issues if i.rule_id == "DUP-SAME-INGREDIENT"]
    assert [x.rxcui for x in issue.implicated[1].ingredients] == [shared]


def test_unresolved_and_free_text_inputs_are_reported() -> None:
    first_rule = INTERACTIONS[0]
    ex = example(first_rule)
    result = run(
        [med(ex.x, ex.x_route), MedicationInput("ft", "free text only", text="something")],
        [
            MedicationInput("bad", "unknown code", (Coding(RXNORM_SYSTEM, "99999999"),)),
            MedicationInput("ndc", "unknown NDC", (Coding(NDC_SYSTEM, "00000-0000-00"),)),
            MedicationInput("loc", "local code", (Coding("urn:local", "X1"),)),
            med(ex.y, ex.y_route),
        ],
        [
            AllergyInput("a-ft", "free-text allergy", text="bee stings"),
            AllergyInput("a-sn", "unknown SNOMED", (Coding(SNOMED_SYSTEM, "1"),)),
        ],
    )
    assert first_rule.id in _ids(result.issues, "rule_id")
    assert [(u.item_id, u.reason) for u in result.unresolved] == [
        ("bad", "unknown-code"),
        ("ndc", "unknown-code"),
        ("loc", "unsupported-system"),
        ("a-sn", "unknown-code"),
    ]
    assert [(n.item_id, n.reason) for n in result.not_checkable] == [
        ("ft", "free-text-only"),
        ("bad", "no-code-resolved"),
        ("ndc", "no-code-resolved"),
        ("loc", "no-code-resolved"),
        ("a-ft", "free-text-only"),
        ("a-sn", "no-code-resolved"),
    ]


def test_policy_changes_display_across_the_kb() -> None:
    demote = Policy(interruptive=frozenset({Severity.CONTRAINDICATED}))
    for rule in INTERACTIONS:
        ex = example(rule)
        severity, display = ex.expected
        result = run([med(ex.x, ex.x_route)], [med(ex.y, ex.y_route)], policy=demote)
        (issue,) = [i for i in result.issues if i.rule_id == rule.id]
        if severity is Severity.MAJOR and display is Display.INTERRUPTIVE:
            assert issue.display is Display.PASSIVE
        else:
            assert issue.display is display
