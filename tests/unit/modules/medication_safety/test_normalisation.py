"""Code normalisation: every TTY and NDC form resolves, routes come from the dose form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ehr.core.config import get_settings
from ehr.modules.medication_safety.knowledge import (
    CONCEPTS_FILE,
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    TTYS,
    CodeResolver,
    ConceptRow,
    Resolution,
    RouteCategory,
    RxNormTable,
    load_resolver,
    normalise_ndc,
    pack_components,
    route_of,
    shipped_table_dir,
    write_table,
)
from ehr.modules.medication_safety.knowledge.rxnorm_build import kb_ingredients, read_supplement
from ehr.modules.medication_safety.knowledge.rxnorm_names import ingredients_from_name

# A synthetic table (made-up RxCUIs, realistic names): one concept of every TTY.
WARFARIN, AMOX, CLAV = "900001", "900002", "900003"
ROWS = [
    ConceptRow(WARFARIN, "IN", "warfarin", (WARFARIN,)),
    ConceptRow(AMOX, "IN", "amoxicillin", (AMOX,)),
    ConceptRow(CLAV, "IN", "clavulanate", (CLAV,)),
    ConceptRow("900010", "PIN", "warfarin sodium", (WARFARIN,)),
    ConceptRow("900011", "MIN", "amoxicillin / clavulanate", (AMOX, CLAV)),
    ConceptRow("900012", "SCDC", "warfarin sodium 5 MG", (WARFARIN,)),
    ConceptRow("900013", "SCD", "warfarin sodium 5 MG Oral Tablet", (WARFARIN,)),
    ConceptRow("900014", "SBD", "warfarin sodium 5 MG Oral Tablet [Jantoven]", (WARFARIN,)),
    ConceptRow(
        "900015", "SCD", "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet", (AMOX, CLAV)
    ),
    ConceptRow(
        "900016",
        "GPCK",
        "{14 (amoxicillin 875 MG / clavulanate 125 MG Oral Tablet) / 7 (warfarin sodium 5 MG "
        "Oral Tablet) } Pack",
        (AMOX, CLAV, WARFARIN),
    ),
    ConceptRow(
        "900017",
        "BPCK",
        "{30 (warfarin sodium 5 MG Oral Tablet [Jantoven]) } Pack [Jantoven Starter]",
        (WARFARIN,),
    ),
    ConceptRow("900018", "SCD", "warfarin 1 MG/ML Topical Cream", (WARFARIN,)),
]
NDC = {
    "00093111310": "900013",  # 5-4-2
    "00555083102": "900014",  # from 4-4-2 0555-0831-02
    "12345067801": "900015",  # from 5-3-2 12345-678-01
    "54321123405": "900016",  # from 5-4-1 54321-1234-5
}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> RxNormTable:
    directory = tmp_path_factory.mktemp("rxnorm")
    write_table(directory, ROWS, NDC, {"format": 1, "kind": "test"})
    return RxNormTable.from_directory(directory)


def test_the_table_is_a_code_resolver(table: RxNormTable) -> None:
    resolver: CodeResolver = table
    assert isinstance(resolver.resolve(RXNORM_SYSTEM, WARFARIN), Resolution)
    assert table.release["kind"] == "test"


@pytest.mark.parametrize(
    ("rxcui", "tty", "ingredients"),
    [
        (WARFARIN, "IN", {WARFARIN}),
        ("900010", "PIN", {WARFARIN}),
        ("900011", "MIN", {AMOX, CLAV}),
        ("900012", "SCDC", {WARFARIN}),
        ("900013", "SCD", {WARFARIN}),
        ("900014", "SBD", {WARFARIN}),
        ("900015", "SCD", {AMOX, CLAV}),
        ("900016", "GPCK", {AMOX, CLAV, WARFARIN}),
        ("900017", "BPCK", {WARFARIN}),
    ],
)
def test_every_tty_resolves_to_its_ingredients(
    table: RxNormTable, rxcui: str, tty: str, ingredients: set[str]
) -> None:
    resolution = table.resolve(RXNORM_SYSTEM, rxcui)
    assert resolution is not None
    assert resolution.rxcui == rxcui
    assert resolution.tty == tty
    assert resolution.ingredients == frozenset(ingredients)


def test_all_ttys_are_covered_by_the_cases_above() -> None:
    assert {row.tty for row in ROWS} == TTYS


@pytest.mark.parametrize(
    ("code", "rxcui"),
    [
        ("00093111310", "900013"),  # 11 digits
        ("00093-1113-10", "900013"),  # 5-4-2 hyphenated
        ("0555-0831-02", "900014"),  # 4-4-2 → 00555-0831-02
        ("12345-678-01", "900015"),  # 5-3-2 → 12345-0678-01
        ("54321-1234-5", "900016"),  # 5-4-1 → 54321-1234-05
        (" 00093111310 ", "900013"),  # surrounding blanks
    ],
)
def test_every_accepted_ndc_form_resolves(table: RxNormTable, code: str, rxcui: str) -> None:
    resolution = table.resolve(NDC_SYSTEM, code)
    assert resolution is not None
    assert resolution.rxcui == rxcui


def test_an_ndc_resolves_to_the_same_object_as_its_rxcui(table: RxNormTable) -> None:
    assert table.resolve(NDC_SYSTEM, "00093111310") is table.resolve(RXNORM_SYSTEM, "900013")


@pytest.mark.parametrize(
    "code",
    [
        "0093111310",  # unhyphenated 10 digits: ambiguous (three 11-digit readings), refused
        "5554321123",  # the same, even if one reading were in the table
        "0093-111-310",  # 4-3-3 is no NDC layout
        "00093-1113-1",  # 5-4-1 is accepted only when it pads to a known code
        "000931113100",  # 12 digits
        "0009311131",  # 10 digits again
        "00093-1113",  # two segments
        "ABCDE-1234-56",
        "00093\u20131113\u201310",  # en dashes
        "",
    ],
)
def test_refused_or_unknown_ndcs_give_none(table: RxNormTable, code: str) -> None:
    assert table.resolve(NDC_SYSTEM, code) is None


def test_normalise_ndc_pads_the_short_segment() -> None:
    assert normalise_ndc("0555-0831-02") == "00555083102"
    assert normalise_ndc("12345-678-01") == "12345067801"
    assert normalise_ndc("54321-1234-5") == "54321123405"
    assert normalise_ndc("00093-1113-10") == "00093111310"
    assert normalise_ndc("00093111310") == "00093111310"
    assert normalise_ndc("0093111310") is None  # documented decision: refused
    assert normalise_ndc("٠٠٠٩٣١١١٣١٠") is None  # non-ASCII digits


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (RXNORM_SYSTEM, "1"),
        (RXNORM_SYSTEM, ""),
        (RXNORM_SYSTEM, "not-a-code"),
        (NDC_SYSTEM, "99999999999"),
        ("http://snomed.info/sct", WARFARIN),
        ("urn:oid:2.16.840.1.113883.6.88", WARFARIN),
    ],
)
def test_unknown_codes_and_systems_give_none(table: RxNormTable, system: str, code: str) -> None:
    assert table.resolve(system, code) is None


def test_routes_in_the_table(table: RxNormTable) -> None:
    def route(rxcui: str) -> RouteCategory | None:
        resolution = table.resolve(RXNORM_SYSTEM, rxcui)
        assert resolution is not None
        return resolution.route

    assert route(WARFARIN) is None  # IN: no dose form
    assert route("900010") is None  # PIN
    assert route("900011") is None  # MIN
    assert route("900012") is None  # SCDC
    assert route("900013") is RouteCategory.SYSTEMIC
    assert route("900014") is RouteCategory.SYSTEMIC  # brand suffix ignored
    assert route("900016") is RouteCategory.SYSTEMIC  # pack
    assert route("900017") is RouteCategory.SYSTEMIC
    assert route("900018") is RouteCategory.TOPICAL


S = RouteCategory.SYSTEMIC
T = RouteCategory.TOPICAL
EYE = RouteCategory.OPHTHALMIC
EAR = RouteCategory.OTIC
N = RouteCategory.NASAL
INH = RouteCategory.INHALED
V = RouteCategory.VAGINAL
R = RouteCategory.RECTAL_LOCAL


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("lisinopril 10 MG Oral Tablet", S),
        ("24 HR metoprolol succinate 50 MG Extended Release Oral Tablet", S),
        ("omeprazole 20 MG Delayed Release Oral Capsule", S),
        ("amoxicillin 50 MG/ML Oral Suspension", S),
        ("ondansetron 4 MG Disintegrating Oral Tablet", S),
        ("buprenorphine 8 MG Sublingual Tablet", S),
        ("fentanyl 0.2 MG Oral Lozenge", S),
        ("nicotine 2 MG Chewing Gum", S),
        ("72 HR fentanyl 0.025 MG/HR Transdermal System", S),
        ("morphine sulfate 10 MG Rectal Suppository", S),
        ("0.5 ML diazepam 5 MG/ML Rectal Gel", S),
        ("ceftriaxone 1000 MG Injection", S),
        ("heparin sodium, porcine 5000 UNT/ML Injectable Solution", S),
        ("1 ML heparin sodium, porcine 5000 UNT/ML Prefilled Syringe", S),
        ("0.3 ML epinephrine 1 MG/ML Auto-Injector", S),
        ("etonogestrel 68 MG Drug Implant", S),
        ("21 DAY ethinyl estradiol 0.000625 MG/HR / etonogestrel 0.005 MG/HR Vaginal System", S),
        ("levonorgestrel 0.000583 MG/HR Intrauterine System", S),
        ("nitrous oxide 500 MG/ML Gas for Inhalation", S),
        ("fentanyl 0.1 MG/ACTUAT Mucosal Spray", S),
        ("diclofenac sodium 10 MG/ML Topical Gel", T),
        ("hydrocortisone 10 MG/ML Topical Cream", T),
        ("clindamycin 10 MG/ML Topical Solution", T),
        ("lidocaine 50 MG Medicated Patch", T),
        ("chlorhexidine gluconate 1.2 MG/ML Mouthwash", T),
        ("ketoconazole 20 MG/ML Medicated Shampoo", T),
        ("timolol 5 MG/ML Ophthalmic Solution", EYE),
        ("erythromycin 5 MG/GM Ophthalmic Ointment", EYE),
        ("ciprofloxacin 3 MG/ML Otic Solution", EAR),
        ("fluticasone propionate 0.05 MG/ACTUAT Metered Dose Nasal Spray", N),
        ("oxymetazoline 0.5 MG/ML Nasal Spray", N),
        ("albuterol 0.833 MG/ML Inhalation Solution", INH),
        ("120 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", INH),
        ("60 ACTUAT fluticasone 0.1 MG/ACTUAT Dry Powder Inhaler", INH),
        ("miconazole nitrate 20 MG/ML Vaginal Cream", V),
        ("clotrimazole 100 MG Vaginal Insert", V),
        ("hydrocortisone 10 MG/ML Rectal Cream", R),
        ("hydrocortisone 10 MG/ML Rectal Foam", R),
        ("mesalamine 66.7 MG/ML Enema", R),
        ("warfarin sodium 5 MG Oral Tablet [Jantoven]", S),
        ("something 5 MG Exotic Oral Wafer Form", S),  # unknown form: keyword fallback
        ("something 5 MG Unheard Form", None),  # unknown and no keyword: unknown route
    ],
)
def test_route_parsing(name: str, route: RouteCategory | None) -> None:
    assert route_of("SCD", name) is route


@pytest.mark.parametrize(
    ("name", "route"),
    [
        # Systemic when any component is.
        (
            "{21 (norethindrone 0.35 MG Oral Tablet) / 1 (miconazole 20 MG/ML Vaginal Cream) "
            "} Pack",
            S,
        ),
        # All local components of one kind: that kind.
        ("{1 (miconazole 20 MG/ML Vaginal Cream) / 7 (miconazole 100 MG Vaginal Insert) } Pack", V),
        # Mixed local components: unknown (treated as matching by the engine).
        (
            "{1 (ketoconazole 20 MG/ML Topical Cream) / 1 (miconazole 100 MG Vaginal Insert) "
            "} Pack",
            None,
        ),
        # A size in parentheses is not a component.
        (
            "{150 (doxycycline monohydrate 100 MG Oral Tablet) / 1 (118 ML) (salicylic acid "
            "20 MG/ML Medicated Liquid Soap) } Pack",
            S,
        ),
    ],
)
def test_pack_routes(name: str, route: RouteCategory | None) -> None:
    assert route_of("GPCK", name) is route


def test_pack_components_handles_nested_parentheses_and_brands() -> None:
    name = (
        "{5 (poliovirus vaccine inactivated, type 1 (Mahoney) 40 UNT/ML Injectable Suspension) "
        "/ 7 (warfarin sodium 5 MG Oral Tablet [Jantoven]) } Pack [Kit]"
    )
    assert pack_components(name) == [
        "poliovirus vaccine inactivated, type 1 (Mahoney) 40 UNT/ML Injectable Suspension",
        "warfarin sodium 5 MG Oral Tablet [Jantoven]",
    ]
    assert pack_components("no braces") == []


# ---- Completing the A-gap rows by name ------------------------------------------------------

INDEX = {"amoxicillin": "723", "clavulanate": "48203", "clavulanate potassium": "48203"}


@pytest.mark.parametrize(
    ("tty", "name", "expected"),
    [
        ("SCD", "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet", ("723", "48203")),
        (
            "SBD",
            "amoxicillin 875 MG / clavulanate potassium 125 MG Oral Tablet [Augmentin]",
            ("723", "48203"),
        ),
        (
            "SCD",
            "12 HR amoxicillin 1000 MG / clavulanate 62.5 MG Extended Release Oral Tablet",
            ("723", "48203"),
        ),
        ("MIN", "amoxicillin / clavulanate", ("723", "48203")),
        ("GPCK", "{4 (amoxicillin 500 MG Oral Capsule) } Pack", ("723",)),
        ("SCD", "amoxicillin 875 MG / sulbactam 125 MG Oral Tablet", None),  # unknown component
        ("SCD", "amoxicillin Oral Tablet", None),  # no strength: not an SCD name
        ("IN", "amoxicillin", None),
    ],
)
def test_ingredients_from_name(tty: str, name: str, expected: tuple[str, ...] | None) -> None:
    assert ingredients_from_name(tty, name, INDEX) == expected


def test_salt_words_apply_only_to_the_given_bases() -> None:
    name = "amphetamine aspartate 5 MG / dextroamphetamine saccharate 5 MG Oral Tablet"
    index = {"dextroamphetamine saccharate": "3288"}
    assert ingredients_from_name("SCD", name, index) is None
    assert ingredients_from_name("SCD", name, index, {"amphetamine": "725"}) == ("725", "3288")
    # A salt word is required: "amphetamine resin" is not a salt of amphetamine.
    assert (
        ingredients_from_name(
            "SCD", "amphetamine resin 5 MG Oral Tablet", {}, {"amphetamine": "725"}
        )
        is None
    )


# ---- The shipped table ----------------------------------------------------------------------


@pytest.mark.usefixtures("no_operator_table")
def test_load_resolver_loads_the_shipped_table_once() -> None:
    first = load_resolver()
    assert load_resolver() is first
    assert len(first) > 0
    assert first.release["kind"] == "formulary"


@pytest.mark.usefixtures("no_operator_table")
def test_the_shipped_table_is_consistent() -> None:
    resolver = load_resolver()
    shipped = RxNormTable.from_directory(shipped_table_dir())
    assert len(shipped) == len(resolver)
    ingredient_ids: set[str] = set()
    for resolution in shipped:
        assert shipped.resolve(RXNORM_SYSTEM, resolution.rxcui) is resolution
        ingredient_ids |= resolution.ingredients
    for ingredient in ingredient_ids:  # every ingredient has its IN row (a name)
        row = shipped.resolve(RXNORM_SYSTEM, ingredient)
        assert row is not None
        assert row.tty == "IN"


@pytest.mark.usefixtures("no_operator_table")
def test_the_shipped_table_covers_the_kb_ingredients_it_knows() -> None:
    sources = Path(str(shipped_table_dir())).parent / "sources"
    kb = kb_ingredients(sources)
    resolver = load_resolver()
    listed = resolver.release.get("kb_ingredients_not_prescribable", {})
    assert isinstance(listed, dict)
    for rxcui in sorted(kb - set(listed)):
        resolution = resolver.resolve(RXNORM_SYSTEM, rxcui)
        assert resolution is not None, f"KB ingredient {rxcui} is not in the shipped table: rebuild"
        assert resolution.tty == "IN"
        single = [r for r in resolver if r.tty == "SCD" and r.ingredients == frozenset((rxcui,))]
        assert single, f"KB ingredient {rxcui} has no single-ingredient clinical drug"
    for rxcui, entry in listed.items():
        assert isinstance(entry, dict)
        assert len(str(entry["reason"])) >= 10, rxcui


def test_the_attribution_names_nlm() -> None:
    text = shipped_table_dir().joinpath("ATTRIBUTION.md").read_text(encoding="utf-8")
    assert (
        "This product uses publicly available data courtesy of the U.S. National Library of "
        "Medicine (NLM), National Institutes of Health, Department of Health and Human Services; "
        "NLM is not responsible for the product and does not endorse or recommend this or any "
        "other product."
    ) in " ".join(text.split())


def test_every_supplement_row_names_its_source() -> None:
    rows = read_supplement(Path(str(shipped_table_dir().joinpath("supplement.tsv"))))
    assert rows
    for row in rows:
        assert len(row.source) > 10, row
    ins = {row.rxcui for row in rows if row.tty == "IN"}
    for row in rows:
        if row.tty != "IN":
            # Hand-entered products only use hand-verified A-gap INs or INs known to the source.
            assert set(row.ingredients) & ins, row


@pytest.fixture
def operator_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    write_table(tmp_path, ROWS, NDC, {"format": 1, "kind": "full"})
    monkeypatch.setenv("EHR_MEDICATION_SAFETY__RXNORM_DIR", str(tmp_path))
    get_settings.cache_clear()
    load_resolver.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    load_resolver.cache_clear()


def test_load_resolver_prefers_the_operator_table(operator_table: Path) -> None:
    resolver = load_resolver()
    assert resolver.release["kind"] == "full"
    resolution = resolver.resolve(NDC_SYSTEM, "00093-1113-10")
    assert resolution is not None
    assert resolution.ingredients == frozenset({WARFARIN})


def test_an_empty_operator_directory_falls_back_to_the_shipped_table(
    operator_table: Path,
) -> None:
    (operator_table / CONCEPTS_FILE).unlink()
    load_resolver.cache_clear()
    assert load_resolver().release["kind"] == "formulary"
