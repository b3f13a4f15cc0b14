"""A tiny hand-written knowledge base and a dict resolver for medication-safety unit tests.

:data:`TINY_SOURCES` (two files, every section used) exercises engine logic independently of
the shipped sources (which ``test_engine_generated.py`` checks rule by rule);
:func:`build_tiny_resolver` resolves the tiny KB's ingredients (IN codes) plus a few products
(:data:`PRODUCTS`: SCDs, a combination, a topical gel, an NDC).

Fixtures (import them into a conftest or test module): ``tiny_kb`` (the KB compiled from
:data:`TINY_SOURCES`), ``tiny_resolver`` (:func:`build_tiny_resolver`). :func:`rendering_issues`
is the check whose issues the rendering tests render (every category, citations with and without
URLs); :func:`by_rule` picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    AllergyInput,
    Coding,
    Issue,
    MedicationInput,
    Policy,
)
from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    KnowledgeBase,
    Resolution,
    RouteCategory,
    compile_knowledge,
)

# Real RxNorm ingredient CUIs (names as RxNorm spells them, lower case).
IN = {
    "simvastatin": "36567",
    "lovastatin": "6472",
    "atorvastatin": "83367",
    "clarithromycin": "21212",
    "ketoconazole": "6135",
    "amiodarone": "703",
    "warfarin": "11289",
    "ibuprofen": "5640",
    "naproxen": "7258",
    "diclofenac": "3355",
    "methadone": "6813",
    "haloperidol": "5093",
    "ondansetron": "26225",
    "lisinopril": "29046",
    "spironolactone": "9997",
    "sildenafil": "136411",
    "nitroglycerin": "4917",
    "penicillin g": "7980",
    "amoxicillin": "723",
    "piperacillin": "8339",
    "cephalexin": "2231",
    "ceftriaxone": "2193",
    "sulfamethoxazole": "10180",
    "furosemide": "4603",
    "acetaminophen": "161",
    "hydrocodone": "5489",
    "metformin": "6809",
}
PENICILLIN_SNOMED = "764146007"

TINY_CORE = """
description: tiny test KB, interactions
citations:
  - id: label-a
    text: Example label A (FDA prescribing information), 2024.
    url: https://example.org/label-a
  - id: paper-b
    text: Example paper B, J Example 2020;1:1-2.
classes:
  - id: ehr:class/statins-3a4
    label: Simvastatin and lovastatin
    members:
      - {rxcui: "36567", name: simvastatin}
      - {rxcui: "6472", name: lovastatin}
    citations: [label-a]
  - id: ehr:class/strong-3a4-inhibitors
    label: CYP3A4 inhibitors
    members:
      - {rxcui: "21212", name: clarithromycin}
      - {rxcui: "6135", name: ketoconazole}
      - {rxcui: "703", name: amiodarone}
    citations: [label-a]
  - id: ehr:class/nsaids
    label: NSAIDs
    members:
      - {rxcui: "5640", name: ibuprofen}
      - {rxcui: "7258", name: naproxen}
      - {rxcui: "3355", name: diclofenac}
    citations: [paper-b]
  - id: ehr:class/qt
    label: QT-prolonging drugs
    members:
      - {rxcui: "6813", name: methadone}
      - {rxcui: "5093", name: haloperidol}
      - {rxcui: "26225", name: ondansetron}
    citations: [label-a]
interactions:
  - id: ONC-HP-25
    a: {class: ehr:class/statins-3a4}
    b: {class: ehr:class/strong-3a4-inhibitors}
    severity: contraindicated
    display: interruptive
    mechanism: CYP3A4 inhibition raises statin exposure.
    consequence: Myopathy and rhabdomyolysis.
    management: Do not combine; suspend the statin.
    citations: [label-a]
    member_overrides:
      - rxcui: "703"
        severity: major
        display: passive
        note: Amiodarone is a dose limit, not a contraindication.
    near_misses:
      - {a: "83367", b: "21212", why: Atorvastatin is not in this row.}
    source_list: onc-high-priority
  - id: ONC-HP-21
    a: {class: ehr:class/qt}
    b: {class: ehr:class/qt}
    severity: contraindicated
    display: interruptive
    mechanism: Additive QT prolongation.
    consequence: Torsades de pointes.
    management: Avoid the combination; monitor the ECG.
    citations: [label-a]
    source_list: onc-high-priority
  - id: DDI-WARFARIN-NSAIDS
    a: {ingredient: {rxcui: "11289", name: warfarin}}
    b: {class: ehr:class/nsaids, routes: [systemic]}
    severity: major
    display: interruptive
    mechanism: Antiplatelet effect and GI mucosal injury.
    consequence: Bleeding.
    management: Avoid; use acetaminophen.
    citations: [paper-b]
    source_list: fda-label
  - id: ONC-NI-05
    a: {ingredient: {rxcui: "29046", name: lisinopril}}
    b: {ingredient: {rxcui: "9997", name: spironolactone}}
    severity: major
    display: passive
    display_reason: Often deliberate in heart failure and managed by potassium monitoring.
    mechanism: Both raise serum potassium.
    consequence: Hyperkalaemia.
    management: Monitor potassium.
    citations: [paper-b]
    source_list: onc-non-interruptive
  - id: DDI-SILDENAFIL-NITRATES
    a: {ingredient: {rxcui: "136411", name: sildenafil}}
    b: {ingredient: {rxcui: "4917", name: nitroglycerin}}
    severity: moderate
    display: passive
    mechanism: Additive vasodilation.
    consequence: Hypotension.
    management: Separate doses.
    citations: [label-a]
    source_list: guideline
"""

TINY_ALLERGY_DUP = """
description: tiny test KB, allergy and duplicates
classes:
  - id: ehr:class/statins-all
    label: Statins
    members:
      - {rxcui: "36567", name: simvastatin}
      - {rxcui: "6472", name: lovastatin}
      - {rxcui: "83367", name: atorvastatin}
    citations: [paper-b]
allergen_groups:
  - id: ehr:allergen/penicillins
    label: Penicillins
    members:
      - {rxcui: "7980", name: penicillin g}
      - {rxcui: "723", name: amoxicillin}
      - {rxcui: "8339", name: piperacillin}
    snomed_codes: ["764146007"]
    citations: [paper-b]
  - id: ehr:allergen/cephalosporins
    label: Cephalosporins
    members:
      - {rxcui: "2231", name: cephalexin}
      - {rxcui: "2193", name: ceftriaxone}
    citations: [paper-b]
  - id: ehr:allergen/sulfonamide-antibiotics
    label: Sulfonamide antibiotics
    members:
      - {rxcui: "10180", name: sulfamethoxazole}
    citations: [paper-b]
cross_sensitivities:
  - id: ALG-PCN-CEPH
    from: ehr:allergen/penicillins
    to: ehr:allergen/cephalosporins
    level: info
    rationale: Cross-reactivity is driven by side chains and is low.
    management: Usually acceptable; observe.
    citations: [paper-b]
  - id: ALG-PCN-CEPH-R1
    from: ehr:allergen/penicillins
    to_members:
      - {rxcui: "2231", name: cephalexin}
    level: alert
    rationale: Cephalexin shares the aminopenicillin R1 side chain.
    management: Avoid or use a graded challenge.
    citations: [paper-b]
  - id: ALG-SULFA-NONABX
    from: ehr:allergen/sulfonamide-antibiotics
    to_members:
      - {rxcui: "4603", name: furosemide}
    level: none
    rationale: Non-antibiotic sulfonamides do not cross-react.
    management: No precaution for the allergy.
    citations: [paper-b]
duplicate_classes:
  - id: ehr:dup/nsaids
    label: NSAIDs
    members_of: ehr:class/nsaids
    allowance: 0
    severity: moderate
    display: passive
    management: Use one NSAID.
    citations: [paper-b]
    routes: [systemic]
  - id: ehr:dup/statins
    label: statins
    members_of: ehr:class/statins-all
    allowance: 1
    severity: minor
    display: informational
    management: Use one statin.
    citations: [paper-b]
"""

TINY_SOURCES: Mapping[str, str] = {"core.yaml": TINY_CORE, "allergy-dup.yaml": TINY_ALLERGY_DUP}

NAMES = {cui: name for name, cui in IN.items()}


class DictResolver:
    """A :class:`CodeResolver` over a dict (IN codes for every ingredient + :data:`PRODUCTS`)."""

    def __init__(self, entries: Mapping[tuple[str, str], Resolution]) -> None:
        self.entries = dict(entries)

    def resolve(self, system: str, code: str) -> Resolution | None:
        return self.entries.get((system, code))


def _product(
    rxcui: str, name: str, ingredients: tuple[str, ...], route: RouteCategory | None
) -> Resolution:
    return Resolution(rxcui, "SCD", name, frozenset(IN[i] for i in ingredients), route)


SYSTEMIC = RouteCategory.SYSTEMIC
# Fake product CUIs (9xxxxxx) so they never collide with ingredients.
PRODUCTS: Mapping[str, Resolution] = {
    "9000001": _product("9000001", "simvastatin 20 MG Oral Tablet", ("simvastatin",), SYSTEMIC),
    "9000002": _product(
        "9000002", "diclofenac 10 MG/ML Topical Gel", ("diclofenac",), RouteCategory.TOPICAL
    ),
    "9000003": _product(
        "9000003", "diclofenac 50 MG Oral Tablet", ("diclofenac",), RouteCategory.SYSTEMIC
    ),
    "9000004": _product(
        "9000004",
        "acetaminophen 325 MG / hydrocodone 5 MG Oral Tablet",
        ("acetaminophen", "hydrocodone"),
        SYSTEMIC,
    ),
    "9000005": _product(
        "9000005", "amoxicillin 500 MG Oral Capsule", ("amoxicillin",), RouteCategory.SYSTEMIC
    ),
}
NDC_SIMVASTATIN = "00093715298"


def build_tiny_resolver() -> DictResolver:
    entries: dict[tuple[str, str], Resolution] = {
        (RXNORM_SYSTEM, cui): Resolution(cui, "IN", name, frozenset((cui,)), None)
        for name, cui in IN.items()
    }
    entries.update({(RXNORM_SYSTEM, cui): res for cui, res in PRODUCTS.items()})
    entries[(NDC_SYSTEM, NDC_SIMVASTATIN)] = PRODUCTS["9000001"]
    return DictResolver(entries)


def med(
    name_or_cui: str,
    *,
    item_id: str | None = None,
    route: RouteCategory | None = None,
    system: str = RXNORM_SYSTEM,
) -> MedicationInput:
    """A medication coded by ingredient name (looked up in :data:`IN`) or by a code as given."""
    code = IN.get(name_or_cui, name_or_cui)
    label = NAMES.get(code) or (PRODUCTS[code].name if code in PRODUCTS else name_or_cui)
    return MedicationInput(
        id=item_id or f"med-{name_or_cui}",
        label=label,
        codings=(Coding(system, code, label),),
        route=route,
    )


def write_to(directory: Path, sources: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="session")
def tiny_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return compile_knowledge(write_to(tmp_path_factory.mktemp("tiny-kb"), TINY_SOURCES))


@pytest.fixture(scope="session")
def tiny_resolver() -> DictResolver:
    return build_tiny_resolver()


def rendering_issues(
    kb: KnowledgeBase, resolver: DictResolver, policy: Policy = Policy()
) -> list[Issue]:
    """The issues of four drafts against two active medications and an amoxicillin allergy."""
    allergy = AllergyInput(
        "alg-1",
        "amoxicillin allergy",
        (Coding(RXNORM_SYSTEM, IN["amoxicillin"]),),
        reference="AllergyIntolerance/alg-1",
    )
    proposed = [
        med("clarithromycin", item_id="draft-1"),
        med("cephalexin", item_id="draft-2"),
        med("ibuprofen", item_id="draft-3"),
        med("ceftriaxone", item_id="draft-4"),
    ]
    active = [
        MedicationInput(
            id="ms-1",
            label="simvastatin 20 mg",
            codings=(Coding(RXNORM_SYSTEM, IN["simvastatin"]),),
            reference="MedicationStatement/ms-1",
        ),
        med("naproxen", item_id="ms-2"),
    ]
    result = check(proposed, active, [allergy], kb=kb, resolver=resolver, policy=policy)
    return list(result.issues)


def unscreened_issues(kb: KnowledgeBase, resolver: DictResolver) -> list[Issue]:
    """The issues of a draft whose only code is unknown and of a free-text draft."""
    proposed = [
        MedicationInput(
            "draft-9",
            "mystery tablets",
            (Coding(RXNORM_SYSTEM, "99999999"),),
            reference="MedicationRequest/draft-9",
        ),
        MedicationInput("draft-10", "herbal tea", text="herbal tea"),
    ]
    return list(check(proposed, [], [], kb=kb, resolver=resolver).issues)


def by_rule(issues: list[Issue], rule_id: str) -> Issue:
    """The issue of ``rule_id``."""
    return next(i for i in issues if i.rule_id == rule_id)
