"""The shipped engine, knowledge base and RxNorm table on prescriptions coded as real systems code
them: RxNorm products (SCD, SBD, GPCK/BPCK packs) and NDCs (11-digit and hyphenated 5-4-2), never
ingredient codes (except where an allergy record really carries one).

The expected findings come from pharmacology (US labels, the ONC high-priority and
non-interruptive lists, allergy practice parameters), not from reading the knowledge base. Where
several rules could legitimately apply, a case asserts loosely (some issue of the right category,
at or above a severity, implicating both items); where the pharmacology is unambiguous
(contraindicated pairs, same-ingredient allergies), exactly. Near misses must not fire. A case the
shipped knowledge gets wrong is a strict xfail naming the gap, so it stays visible.

Every code below is hard-coded with the product's name, as a prescription would carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pytest

from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    SNOMED_SYSTEM,
    AllergyInput,
    CheckResult,
    Coding,
    Dosage,
    DoseQuantity,
    Issue,
    IssueCategory,
    MedicationInput,
    PatientContext,
)
from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RULE_ALLERGY_SAME_INGREDIENT,
    RULE_DUPLICATE_INGREDIENT,
    RULE_UNABLE_TO_CHECK,
    RXNORM_SYSTEM,
    SEVERITY_RANK,
    Display,
    KnowledgeBase,
    RxNormTable,
    Severity,
    load_knowledge_base,
    load_resolver,
)

CI = Severity.CONTRAINDICATED
MAJOR = Severity.MAJOR
MODERATE = Severity.MODERATE
MINOR = Severity.MINOR


# --------------------------------------------------------------------------- products


@dataclass(frozen=True, slots=True)
class Product:
    """A product code as a prescription carries it."""

    system: str
    code: str
    name: str


def rxn(code: str, name: str) -> Product:
    return Product(RXNORM_SYSTEM, code, name)


def ndc(code: str, name: str) -> Product:
    return Product(NDC_SYSTEM, code, name)


# Anticoagulants, antiplatelets, NSAIDs
WARFARIN_5 = rxn("855332", "warfarin sodium 5 MG Oral Tablet")  # SCD
WARFARIN_5_NDC = ndc("00093-1721-01", "warfarin sodium 5 MG Oral Tablet (Teva)")  # -> 855332
IBUPROFEN_800 = rxn("197807", "ibuprofen 800 MG Oral Tablet")  # SCD
IBUPROFEN_800_NDC = ndc("00904585540", "ibuprofen 800 MG Oral Tablet")  # -> 197807
NAPROXEN_500 = rxn("198014", "naproxen 500 MG Oral Tablet")  # SCD
CELECOXIB_200 = rxn("205323", "celecoxib 200 MG Oral Capsule")  # SCD
DICLOFENAC_GEL = rxn("855633", "diclofenac sodium 0.01 MG/MG Topical Gel")  # SCD (1 % gel)
VOLTAREN_GEL_NDC = ndc("00067-8152-01", "diclofenac sodium 1 % Topical Gel [Voltaren]")  # SBD
DICLOFENAC_75_DR = rxn("855926", "diclofenac sodium 75 MG Delayed Release Oral Tablet")  # SCD
APIXABAN_5 = rxn("1364445", "apixaban 5 MG Oral Tablet")  # SCD
ELIQUIS_STARTER = rxn(
    "1992428", "{74 (apixaban 5 MG Oral Tablet [Eliquis]) } Pack [Eliquis 30-Day Starter Pack]"
)  # BPCK
ENOXAPARIN_100_SYRINGE = rxn("854248", "1 ML enoxaparin sodium 100 MG/ML Prefilled Syringe")
ENOXAPARIN_80_SYRINGE = rxn("854241", "0.8 ML enoxaparin sodium 100 MG/ML Prefilled Syringe")
CLOPIDOGREL_75 = rxn("309362", "clopidogrel 75 MG Oral Tablet")  # SCD
TICAGRELOR_90 = rxn("1116635", "ticagrelor 90 MG Oral Tablet")  # SCD
# Statins and CYP3A4 / P-gp
SIMVASTATIN_40 = rxn("198211", "simvastatin 40 MG Oral Tablet")  # SCD
ZOCOR_40_NDC = ndc("00006-0749-31", "simvastatin 40 MG Oral Tablet [Zocor]")  # -> SBD 152923
LOVASTATIN_20 = rxn("197904", "lovastatin 20 MG Oral Tablet")  # SCD
PRAVASTATIN_40 = rxn("904475", "pravastatin sodium 40 MG Oral Tablet")  # SCD
ROSUVASTATIN_40 = rxn("859419", "rosuvastatin calcium 40 MG Oral Tablet")  # SCD
CLARITHROMYCIN_500 = rxn("197517", "clarithromycin 500 MG Oral Tablet")  # SCD
CLARITHROMYCIN_500_NDC = ndc("00781196260", "clarithromycin 500 MG Oral Tablet")  # -> 197517
ERYTHROMYCIN_500 = rxn("197650", "erythromycin 500 MG Oral Tablet")  # SCD
AZITHROMYCIN_250 = rxn("308460", "azithromycin 250 MG Oral Tablet")  # SCD
Z_PAK = rxn("749783", "{6 (azithromycin 250 MG Oral Tablet) } Pack")  # GPCK
OMECLAMOX = rxn(
    "1291987",
    "{4 (amoxicillin 500 MG Oral Capsule) / 2 (clarithromycin 500 MG Oral Tablet) / "
    "2 (omeprazole 20 MG Delayed Release Oral Capsule) } Pack [Omeclamox]",
)  # BPCK
KETOCONAZOLE_200 = rxn("197853", "ketoconazole 200 MG Oral Tablet")  # SCD
KETOCONAZOLE_CREAM = rxn("203088", "ketoconazole 20 MG/ML Topical Cream")  # SCD
ITRACONAZOLE_100 = rxn("311204", "itraconazole 100 MG Oral Capsule")  # SCD
FLUCONAZOLE_200 = rxn("197700", "fluconazole 200 MG Oral Tablet")  # SCD
METRONIDAZOLE_500 = rxn("311681", "metronidazole 500 MG Oral Tablet")  # SCD
RIFAMPIN_300 = rxn("198202", "rifampin 300 MG Oral Capsule")  # SCD
LOMITAPIDE_10 = rxn("1364484", "lomitapide 10 MG Oral Capsule")  # SCD
CYCLOSPORINE_MOD_100 = rxn("241834", "cyclosporine, modified 100 MG Oral Capsule")  # SCD
RESTASIS = rxn("402092", "cyclosporine 0.5 MG/ML Ophthalmic Suspension [Restasis]")  # SBD
COLCHICINE_06 = rxn("197541", "colchicine 0.6 MG Oral Tablet")  # SCD
# Cardiovascular
SILDENAFIL_20 = rxn("577033", "sildenafil 20 MG Oral Tablet")  # SCD
TADALAFIL_20 = rxn("402019", "tadalafil 20 MG Oral Tablet")  # SCD
NITROGLYCERIN_SL = rxn("198039", "nitroglycerin 0.4 MG Sublingual Tablet")  # SCD
ISMN_20 = rxn("311197", "isosorbide mononitrate 20 MG Oral Tablet")  # SCD
SPIRONOLACTONE_25 = rxn("313096", "spironolactone 25 MG Oral Tablet")  # SCD
LISINOPRIL_10 = rxn("314076", "lisinopril 10 MG Oral Tablet")  # SCD
LISINOPRIL_10_NDC = ndc("00143-1267-01", "lisinopril 10 MG Oral Tablet")  # -> 314076
ENALAPRIL_10 = rxn("858817", "enalapril maleate 10 MG Oral Tablet")  # SCD
LOSARTAN_50 = rxn("979492", "losartan potassium 50 MG Oral Tablet")  # SCD
HCTZ_25 = rxn("310798", "hydrochlorothiazide 25 MG Oral Tablet")  # SCD
LISINOPRIL_HCTZ = rxn("197886", "hydrochlorothiazide 12.5 MG / lisinopril 20 MG Oral Tablet")
KCL_20_ER = rxn("198116", "potassium chloride 20 MEQ Extended Release Oral Tablet")  # SCD
DIGOXIN_0125 = rxn("197604", "digoxin 0.125 MG Oral Tablet")  # SCD
LANOXIN_0125 = rxn("309888", "digoxin 0.125 MG Oral Tablet [Lanoxin]")  # SBD
VERAPAMIL_120 = rxn("897666", "verapamil hydrochloride 120 MG Oral Tablet")  # SCD
TIMOLOL_10_ORAL = rxn("198284", "timolol 10 MG Oral Tablet")  # SCD
TIMOPTIC = rxn("1923429", "timolol 2.5 MG/ML Ophthalmic Solution [Timoptic]")  # SBD
DOFETILIDE_05 = rxn("310005", "dofetilide 0.5 MG Oral Capsule")  # SCD
AMLODIPINE_5 = rxn("197361", "amlodipine 5 MG Oral Tablet")  # SCD
GLIPIZIDE_5 = rxn("310490", "glipizide 5 MG Oral Tablet")  # SCD
METFORMIN_500 = rxn("861007", "metformin hydrochloride 500 MG Oral Tablet")  # SCD
METFORMIN_500_NDC = ndc("00093104801", "metformin hydrochloride 500 MG Oral Tablet")  # -> 861007
# CNS
SERTRALINE_50 = rxn("312941", "sertraline 50 MG Oral Tablet")  # SCD
ZOLOFT_50_NDC = ndc("00049-4900-30", "sertraline 50 MG Oral Tablet [Zoloft]")  # -> SBD 208161
FLUOXETINE_20 = rxn("310385", "fluoxetine 20 MG Oral Capsule")  # SCD
CITALOPRAM_20 = rxn("200371", "citalopram 20 MG Oral Tablet")  # SCD
ESCITALOPRAM_10 = rxn("349332", "escitalopram 10 MG Oral Tablet")  # SCD
FLUVOXAMINE_100 = rxn("903884", "fluvoxamine maleate 100 MG Oral Tablet")  # SCD
PHENELZINE_15 = rxn("312347", "phenelzine 15 MG Oral Tablet")  # SCD
RASAGILINE_1 = rxn("608328", "rasagiline 1 MG Oral Tablet")  # SCD
LINEZOLID_600 = rxn("311347", "linezolid 600 MG Oral Tablet")  # SCD
TRAMADOL_50 = rxn("835603", "tramadol hydrochloride 50 MG Oral Tablet")  # SCD
LITHIUM_300 = rxn("197889", "lithium carbonate 300 MG Oral Capsule")  # SCD
ONDANSETRON_4 = rxn("198052", "ondansetron 4 MG Oral Tablet")  # SCD
HALOPERIDOL_5 = rxn("310672", "haloperidol 5 MG Oral Tablet")  # SCD
PIMOZIDE_2 = rxn("198103", "pimozide 2 MG Oral Tablet")  # SCD
TIZANIDINE_4 = rxn("313413", "tizanidine 4 MG Oral Tablet")  # SCD
RAMELTEON_8 = rxn("577348", "ramelteon 8 MG Oral Tablet")  # SCD
ALPRAZOLAM_05 = rxn("308048", "alprazolam 0.5 MG Oral Tablet")  # SCD
LORAZEPAM_1 = rxn("197901", "lorazepam 1 MG Oral Tablet")  # SCD
GABAPENTIN_300 = rxn("310431", "gabapentin 300 MG Oral Capsule")  # SCD
DIVALPROEX_500 = rxn("1099870", "divalproex sodium 500 MG Delayed Release Oral Tablet")  # SCD
OXYCODONE_5 = rxn("1049621", "oxycodone hydrochloride 5 MG Oral Tablet")  # SCD
PERCOCET_5_325 = rxn(
    "1049640", "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet [Percocet]"
)  # SBD
PERCOCET_NDC = ndc("63481-0623-70", "Percocet 5/325 Oral Tablet")  # -> SBD 1049640
NORCO_5_325 = rxn(
    "857004", "acetaminophen 325 MG / hydrocodone bitartrate 5 MG Oral Tablet [Norco]"
)  # SBD
TYLENOL_PM = rxn(
    "1092378", "acetaminophen 500 MG / diphenhydramine hydrochloride 25 MG Oral Tablet [Tylenol PM]"
)  # SBD
# Anti-infectives
SMX_TMP_DS = rxn("198335", "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet")  # SCD
BACTRIM_DS = rxn(
    "849580", "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet [Bactrim]"
)  # SBD
CIPROFLOXACIN_500 = rxn("309309", "ciprofloxacin 500 MG Oral Tablet")  # SCD
LEVOFLOXACIN_500 = rxn("199885", "levofloxacin 500 MG Oral Tablet")  # SCD
CALCIUM_CARBONATE_1250 = rxn("282465", "calcium carbonate 1250 MG Oral Tablet")  # SCD
THEOPHYLLINE_300_ER = rxn("317769", "theophylline 300 MG Extended Release Oral Tablet")  # SCD
MEROPENEM_1G = rxn("1722939", "meropenem 1000 MG Injection")  # SCD
AMOX_CLAV_875 = rxn("562508", "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet")  # SCD
AUGMENTIN_875_NDC = ndc(
    "52959-0478-20", "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet [Augmentin]"
)  # -> SBD 824194
AMOXICILLIN_500 = rxn("308191", "amoxicillin 500 MG Oral Capsule")  # SCD
PEN_VK_500 = rxn("834102", "penicillin V potassium 500 MG Oral Tablet")  # SCD
PEN_VK_500_NDC = ndc("00093117401", "penicillin V potassium 500 MG Oral Tablet")  # -> 834102
CEPHALEXIN_500 = rxn("309114", "cephalexin 500 MG Oral Capsule")  # SCD
CEFTRIAXONE_1G = rxn("1665021", "ceftriaxone 1000 MG Injection")  # SCD
AZTREONAM_1G = rxn("1664981", "aztreonam 1000 MG Injection")  # SCD
# Others
METHOTREXATE_25 = rxn("105585", "methotrexate 2.5 MG Oral Tablet")  # SCD
AZATHIOPRINE_50 = rxn("197388", "azathioprine 50 MG Oral Tablet")  # SCD
DUZALLO = rxn(
    "1944785", "allopurinol 300 MG / lesinurad 200 MG Oral Tablet [Duzallo]"
)  # SBD (the only allopurinol product the shipped table resolves)
OMEPRAZOLE_20 = rxn("198051", "omeprazole 20 MG Delayed Release Oral Capsule")  # SCD
PANTOPRAZOLE_40 = rxn("314200", "pantoprazole 40 MG Delayed Release Oral Tablet")  # SCD
FUROSEMIDE_40 = rxn("313988", "furosemide 40 MG Oral Tablet")  # SCD
FUROSEMIDE_40_NDC = ndc("00054429925", "furosemide 40 MG Oral Tablet")  # -> 313988
PREDNISONE_20 = rxn("312615", "prednisone 20 MG Oral Tablet")  # SCD
MEDROL_DOSEPAK = rxn("762675", "{21 (methylprednisolone 4 MG Oral Tablet) } Pack")  # GPCK
HYDROCORTISONE_CREAM = rxn("106258", "hydrocortisone 10 MG/ML Topical Cream")  # SCD (1 %)
HYDROCORTISONE_10_TAB = rxn("197782", "hydrocortisone 10 MG Oral Tablet")  # SCD
# Real RxNorm products missing from the shipped table (ingredients starting with "A"; see
# data/rxnorm/release.json "cannot_resolve"): they must be reported, never silently passed.
ALLOPURINOL_300 = rxn("197320", "allopurinol 300 MG Oral Tablet")  # SCD
AMIODARONE_200 = rxn("833528", "amiodarone hydrochloride 200 MG Oral Tablet")  # SCD
TYLENOL_325 = rxn("209387", "acetaminophen 325 MG Oral Tablet [Tylenol]")  # SBD
# Codes that exist nowhere
UNKNOWN_RXCUI = rxn("99999999", "an RxCUI that does not exist")
UNKNOWN_NDC = ndc("99999-9999-99", "an NDC that does not exist")


@dataclass(frozen=True, slots=True)
class Allergen:
    """An allergy record's coding."""

    system: str
    code: str
    label: str


PENICILLIN_SUBSTANCE = Allergen(SNOMED_SYSTEM, "764146007", "Penicillin (substance)")
PENICILLIN_FINDING = Allergen(SNOMED_SYSTEM, "91936005", "Allergy to penicillin (finding)")
SULFONAMIDE_SUBSTANCE = Allergen(SNOMED_SYSTEM, "387406002", "Sulfonamide (substance)")
SULFONAMIDE_FINDING = Allergen(SNOMED_SYSTEM, "91939003", "Allergy to sulfonamide (finding)")
ASPIRIN_ALLERGY = Allergen(SNOMED_SYSTEM, "293586001", "Allergy to aspirin (finding)")
LATEX_ALLERGY = Allergen(SNOMED_SYSTEM, "300916003", "Latex allergy (finding)")  # not a drug
AMOXICILLIN_IN = Allergen(RXNORM_SYSTEM, "723", "amoxicillin")  # RxNorm ingredient
SULFAMETHOXAZOLE_IN = Allergen(RXNORM_SYSTEM, "10180", "sulfamethoxazole")  # RxNorm ingredient
CODEINE_IN = Allergen(RXNORM_SYSTEM, "2670", "codeine")  # RxNorm ingredient


def product_allergy(product: Product) -> Allergen:
    """An allergy recorded by picking the product the patient reacted to."""
    return Allergen(product.system, product.code, product.name)


# --------------------------------------------------------------------------- running


@cache
def _kb() -> KnowledgeBase:
    return load_knowledge_base()


@cache
def _resolver() -> RxNormTable:
    return load_resolver()


def order(product: Product, item_id: str, dosage: Dosage | None = None) -> MedicationInput:
    return MedicationInput(
        id=item_id,
        label=product.name,
        codings=(Coding(product.system, product.code, product.name),),
        reference=f"MedicationRequest/{item_id}",
        dosage=dosage,
    )


def allergy_record(allergen: Allergen, item_id: str = "alg") -> AllergyInput:
    return AllergyInput(
        id=item_id,
        label=f"Allergy: {allergen.label}",
        codings=(Coding(allergen.system, allergen.code, allergen.label),),
        criticality="high",
        reference=f"AllergyIntolerance/{item_id}",
    )


def run(
    proposed: Sequence[MedicationInput],
    active: Sequence[MedicationInput] = (),
    allergies: Sequence[AllergyInput] = (),
    weight_kg: float | None = 70.0,
) -> CheckResult:
    return check(
        proposed,
        active,
        allergies,
        PatientContext(age_years=60, sex="female", weight_kg=weight_kg),
        kb=_kb(),
        resolver=_resolver(),
    )


def statuses(result: CheckResult) -> dict[str, str]:
    return {s.item_id: s.status for s in result.items}


def assert_all_checked(result: CheckResult) -> None:
    """Every input resolved: a near miss that passes because a code did not resolve proves
    nothing."""
    assert result.unresolved == (), result.unresolved
    assert result.not_checkable == (), result.not_checkable
    assert set(statuses(result).values()) == {"checked"}, statuses(result)


def at_least(severity: Severity, floor: Severity) -> bool:
    return SEVERITY_RANK[severity] <= SEVERITY_RANK[floor]


def within(issue: Issue, at_least: Severity, at_most: Severity) -> bool:
    """``issue`` is at least as severe as ``at_least`` and no more severe than ``at_most``."""
    rank = SEVERITY_RANK[issue.severity]
    return SEVERITY_RANK[at_most] <= rank <= SEVERITY_RANK[at_least]


def describe(issues: Sequence[Issue]) -> list[tuple[str, str, str]]:
    return [(i.rule_id, i.severity.value, i.category.value) for i in issues]


def between_items(result: CheckResult, category: IssueCategory, *ids: str) -> list[Issue]:
    wanted = set(ids)
    return [
        i
        for i in result.issues
        if i.category is category and wanted <= {item.id for item in i.implicated}
    ]


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True, slots=True)
class Fires:
    """Some issue between the two items at least as severe as ``at_least`` and at most
    ``at_most`` (and the rule, when the pharmacology names it unambiguously; ``interruptive``
    when the display matters)."""

    at_least: Severity
    at_most: Severity = Severity.CONTRAINDICATED
    rule: str | None = None
    interruptive: bool | None = None

    def verify(self, found: Sequence[Issue], everything: Sequence[Issue]) -> None:
        matching = [
            i
            for i in found
            if within(i, self.at_least, self.at_most) and self.rule in (None, i.rule_id)
        ]
        assert matching, f"expected {self}, found {describe(found)} (all: {describe(everything)})"
        if self.interruptive is not None:
            assert all((i.display is Display.INTERRUPTIVE) == self.interruptive for i in found), (
                describe(found)
            )


@dataclass(frozen=True, slots=True)
class Quiet:
    """No issue between the two items at or above ``floor`` (``MINOR``: none at all)."""

    floor: Severity = Severity.MINOR

    def verify(self, found: Sequence[Issue], everything: Sequence[Issue]) -> None:
        loud = [i for i in found if at_least(i.severity, self.floor)]
        assert not loud, f"expected nothing >= {self.floor}, found {describe(loud)}"


Expectation = Fires | Quiet


def kb_gap(*args: object, id: str, reason: str, kind: str = "KB gap") -> object:
    """A case the shipped knowledge (or the engine: ``kind``) gets wrong: a strict xfail naming
    the gap, so it stays visible until it is fixed."""
    return pytest.param(
        *args, id=id, marks=pytest.mark.xfail(strict=True, reason=f"{kind}: {reason}")
    )


# --------------------------------------------------------------------------- drug-drug

DRUG_DRUG = [
    # Bleeding: Coumadin label 7 (NSAIDs); ONC non-interruptive list (warfarin + NSAIDs).
    pytest.param(WARFARIN_5, IBUPROFEN_800, Fires(MAJOR), id="warfarin-ibuprofen"),
    pytest.param(WARFARIN_5_NDC, IBUPROFEN_800_NDC, Fires(MAJOR), id="warfarin-ibuprofen-ndc"),
    pytest.param(DICLOFENAC_75_DR, WARFARIN_5, Fires(MAJOR), id="oral-diclofenac-warfarin"),
    # Topical diclofenac: ~6 % of the oral systemic exposure (Voltaren Gel label 12.3); the
    # anticoagulant caution stays, as a weaker, non-interruptive counterpart.
    pytest.param(
        DICLOFENAC_GEL,
        WARFARIN_5,
        Fires(MINOR, MODERATE, interruptive=False),
        id="diclofenac-gel-warfarin",
    ),
    pytest.param(
        VOLTAREN_GEL_NDC,
        WARFARIN_5_NDC,
        Fires(MINOR, MODERATE, interruptive=False),
        id="voltaren-gel-ndc-warfarin",
    ),
    # Fluconazole inhibits CYP2C9: Coumadin and Diflucan labels (INR rise, bleeding).
    pytest.param(FLUCONAZOLE_200, WARFARIN_5, Fires(MAJOR), id="fluconazole-warfarin"),
    # Co-trimoxazole and metronidazole are CYP2C9 inhibitors named by the Coumadin label (7.1):
    # the classic INR-doubling, bleeding interactions.
    pytest.param(SMX_TMP_DS, WARFARIN_5, Fires(MAJOR), id="bactrim-ds-warfarin"),
    pytest.param(METRONIDAZOLE_500, WARFARIN_5, Fires(MAJOR), id="metronidazole-warfarin"),
    # SSRIs impair platelet serotonin uptake: Zoloft label 5.3 (bleeding with NSAIDs).
    pytest.param(SERTRALINE_50, IBUPROFEN_800, Fires(MODERATE), id="sertraline-ibuprofen"),
    # Simvastatin/lovastatin with strong CYP3A4 inhibitors: Zocor and Mevacor labels section 4
    # (contraindicated; Zocor lists erythromycin and clarithromycin); ONC high-priority pair.
    pytest.param(CLARITHROMYCIN_500, SIMVASTATIN_40, Fires(CI, CI), id="clarithromycin-simva"),
    pytest.param(
        CLARITHROMYCIN_500_NDC, ZOCOR_40_NDC, Fires(CI, CI), id="clarithromycin-zocor-ndc"
    ),
    pytest.param(OMECLAMOX, SIMVASTATIN_40, Fires(CI, CI), id="omeclamox-pack-simva"),
    pytest.param(ERYTHROMYCIN_500, SIMVASTATIN_40, Fires(CI, CI), id="erythromycin-simva"),
    pytest.param(ITRACONAZOLE_100, LOVASTATIN_20, Fires(CI, CI), id="itraconazole-lovastatin"),
    # Near misses: pravastatin is not a CYP3A4 substrate (Pravachol label: clarithromycin limits
    # pravastatin to 40 mg, no contraindication); azithromycin does not inhibit CYP3A4 (Zithromax
    # label 7; Zocor lists no azithromycin contraindication).
    pytest.param(CLARITHROMYCIN_500, PRAVASTATIN_40, Quiet(CI), id="clarithromycin-prava"),
    pytest.param(AZITHROMYCIN_250, SIMVASTATIN_40, Quiet(MAJOR), id="azithromycin-simva"),
    pytest.param(Z_PAK, SIMVASTATIN_40, Quiet(MAJOR), id="z-pak-simva"),
    # Rosuvastatin with cyclosporine: Crestor label 2.4/7 (do not exceed 5 mg; 40 mg is 8x).
    pytest.param(ROSUVASTATIN_40, CYCLOSPORINE_MOD_100, Fires(MAJOR), id="rosuva40-cyclosporine"),
    # Near miss: Restasis eye drops give no measurable blood cyclosporine (Restasis label 12.3).
    pytest.param(ROSUVASTATIN_40, RESTASIS, Quiet(MAJOR), id="rosuva40-restasis"),
    # Lomitapide with strong CYP3A4 inhibitors: Juxtapid label section 4 (contraindicated).
    pytest.param(KETOCONAZOLE_200, LOMITAPIDE_10, Fires(CI, CI), id="ketoconazole-lomitapide"),
    # Near miss: topical ketoconazole is not absorbed systemically (ketoconazole cream label).
    pytest.param(KETOCONAZOLE_CREAM, LOMITAPIDE_10, Quiet(MAJOR), id="keto-cream-lomitapide"),
    # Nitrates with PDE5 inhibitors: Revatio/Cialis labels section 4 (contraindicated).
    pytest.param(SILDENAFIL_20, NITROGLYCERIN_SL, Fires(CI, CI), id="sildenafil-ntg-sl"),
    pytest.param(TADALAFIL_20, ISMN_20, Fires(CI, CI), id="tadalafil-ismn"),
    # Serotonin syndrome: Zoloft label 4 (linezolid, MAOIs contraindicated); Ultram label 5/7.
    pytest.param(LINEZOLID_600, SERTRALINE_50, Fires(MAJOR), id="linezolid-sertraline"),
    pytest.param(LINEZOLID_600, ZOLOFT_50_NDC, Fires(MAJOR), id="linezolid-zoloft-ndc"),
    pytest.param(PHENELZINE_15, SERTRALINE_50, Fires(CI, CI), id="phenelzine-sertraline"),
    pytest.param(TRAMADOL_50, SERTRALINE_50, Fires(MAJOR), id="tramadol-sertraline"),
    pytest.param(RASAGILINE_1, TRAMADOL_50, Fires(CI, CI), id="rasagiline-tramadol"),
    # Pimozide with sertraline: Zoloft and Orap labels section 4 (contraindicated).
    pytest.param(PIMOZIDE_2, SERTRALINE_50, Fires(CI, CI), id="pimozide-sertraline"),
    # CYP1A2: Zanaflex label 4 (fluvoxamine, ciprofloxacin contraindicated); Rozerem label 7.
    pytest.param(CIPROFLOXACIN_500, TIZANIDINE_4, Fires(CI, CI), id="cipro-tizanidine"),
    pytest.param(FLUVOXAMINE_100, TIZANIDINE_4, Fires(CI, CI), id="fluvoxamine-tizanidine"),
    pytest.param(FLUVOXAMINE_100, RAMELTEON_8, Fires(CI, CI), id="fluvoxamine-ramelteon"),
    pytest.param(CIPROFLOXACIN_500, THEOPHYLLINE_300_ER, Fires(MAJOR), id="cipro-theophylline"),
    # Near miss: levofloxacin does not inhibit CYP1A2 (Zanaflex contraindicates only
    # fluvoxamine and ciprofloxacin).
    pytest.param(LEVOFLOXACIN_500, TIZANIDINE_4, Quiet(MAJOR), id="levofloxacin-tizanidine"),
    # Chelation by calcium: Cipro label 2.4/7 (2 h before or 6 h after calcium products).
    pytest.param(
        CIPROFLOXACIN_500,
        CALCIUM_CARBONATE_1250,
        Fires(MINOR, MODERATE),
        id="cipro-calcium-carbonate",
    ),
    # Hyperkalaemia: Aldactone label 5.1/7 (ACE inhibitors, potassium supplements).
    pytest.param(SPIRONOLACTONE_25, LISINOPRIL_10, Fires(MODERATE), id="spironolactone-lisinopril"),
    pytest.param(KCL_20_ER, SPIRONOLACTONE_25, Fires(MAJOR), id="kcl-spironolactone"),
    pytest.param(BACTRIM_DS, SPIRONOLACTONE_25, Fires(MODERATE), id="bactrim-ds-spironolactone"),
    # Dual RAAS blockade: ONC non-interruptive list; ONTARGET.
    pytest.param(LOSARTAN_50, LISINOPRIL_10_NDC, Fires(MODERATE), id="losartan-lisinopril-ndc"),
    # Lithium clearance: lithium label 7 (thiazides, ACE inhibitors, NSAIDs).
    pytest.param(HCTZ_25, LITHIUM_300, Fires(MAJOR), id="hctz-lithium"),
    pytest.param(LISINOPRIL_10, LITHIUM_300, Fires(MODERATE), id="lisinopril-lithium"),
    # Methotrexate with trimethoprim/sulfamethoxazole: methotrexate label 7 (marrow toxicity).
    pytest.param(SMX_TMP_DS, METHOTREXATE_25, Fires(MAJOR), id="bactrim-ds-methotrexate"),
    pytest.param(BACTRIM_DS, METHOTREXATE_25, Fires(MAJOR), id="bactrim-sbd-methotrexate"),
    # Clopidogrel with omeprazole: Plavix label 5.1/7 (avoid; CYP2C19).
    pytest.param(OMEPRAZOLE_20, CLOPIDOGREL_75, Fires(MODERATE), id="omeprazole-clopidogrel"),
    pytest.param(OMECLAMOX, CLOPIDOGREL_75, Fires(MODERATE), id="omeclamox-pack-clopidogrel"),
    # Near miss: pantoprazole is the Plavix label's alternative (weak CYP2C19 inhibitor).
    pytest.param(PANTOPRAZOLE_40, CLOPIDOGREL_75, Quiet(MAJOR), id="pantoprazole-clopidogrel"),
    # Allopurinol with azathioprine: Zyloprim and Imuran labels (reduce azathioprine to 1/3-1/4).
    pytest.param(DUZALLO, AZATHIOPRINE_50, Fires(MAJOR), id="duzallo-azathioprine"),
    # Digoxin: Lanoxin label 7 (verapamil, clarithromycin raise digoxin; reduce 30-50 %).
    pytest.param(VERAPAMIL_120, DIGOXIN_0125, Fires(MAJOR), id="verapamil-digoxin"),
    pytest.param(CLARITHROMYCIN_500, LANOXIN_0125, Fires(MAJOR), id="clarithromycin-lanoxin"),
    # QT prolongation: Celexa label 5.2 (citalopram with other QT-prolonging drugs), Zofran 5.3.
    pytest.param(ONDANSETRON_4, CITALOPRAM_20, Fires(MODERATE), id="ondansetron-citalopram"),
    pytest.param(HALOPERIDOL_5, CITALOPRAM_20, Fires(MODERATE), id="haloperidol-citalopram"),
    # Beta-blocker with verapamil: AV block, bradycardia (Calan label 7); eye drops reach the
    # circulation less, so a weaker counterpart (Timoptic label 7: caution).
    # Timoptic label 7: patients on an oral beta-blocker and Timoptic show additive systemic
    # beta-blockade - also when the oral beta-blocker is timolol itself.
    pytest.param(TIMOPTIC, TIMOLOL_10_ORAL, Fires(MINOR, MAJOR), id="timoptic-oral-timolol"),
    pytest.param(VERAPAMIL_120, TIMOLOL_10_ORAL, Fires(MAJOR), id="verapamil-oral-timolol"),
    pytest.param(
        VERAPAMIL_120,
        TIMOPTIC,
        Fires(MINOR, MODERATE, interruptive=False),
        id="verapamil-timoptic-drops",
    ),
    # Dofetilide: Tikosyn label 4 (verapamil, hydrochlorothiazide, trimethoprim contraindicated).
    pytest.param(DOFETILIDE_05, HCTZ_25, Fires(CI, CI), id="dofetilide-hctz"),
    pytest.param(DOFETILIDE_05, VERAPAMIL_120, Fires(CI, CI), id="dofetilide-verapamil"),
    pytest.param(BACTRIM_DS, DOFETILIDE_05, Fires(CI, CI), id="bactrim-dofetilide"),
    # Colchicine with clarithromycin: Colcrys label 4/7 (fatal toxicity; reduce or avoid).
    pytest.param(CLARITHROMYCIN_500, COLCHICINE_06, Fires(MAJOR), id="clarithromycin-colchicine"),
    # Fluconazole raises sulfonylurea levels (CYP2C9): Diflucan label 7 (hypoglycaemia).
    pytest.param(FLUCONAZOLE_200, GLIPIZIDE_5, Fires(MODERATE), id="fluconazole-glipizide"),
    # Ticagrelor and apixaban with strong CYP3A4(/P-gp) inhibitors: Brilinta 7 (avoid),
    # Eliquis 2.5/7 (reduce by half or avoid) - here an Eliquis starter pack (BPCK).
    pytest.param(KETOCONAZOLE_200, TICAGRELOR_90, Fires(MAJOR), id="ketoconazole-ticagrelor"),
    pytest.param(ELIQUIS_STARTER, KETOCONAZOLE_200, Fires(MAJOR), id="eliquis-pack-keto"),
    pytest.param(RIFAMPIN_300, APIXABAN_5, Fires(MAJOR), id="rifampin-apixaban"),
    # Opioids with benzodiazepines (boxed warning, FDA 2016) and gabapentinoids (FDA 2019).
    pytest.param(OXYCODONE_5, ALPRAZOLAM_05, Fires(MAJOR), id="oxycodone-alprazolam"),
    pytest.param(PERCOCET_NDC, LORAZEPAM_1, Fires(MAJOR), id="percocet-ndc-lorazepam"),
    pytest.param(GABAPENTIN_300, NORCO_5_325, Fires(MODERATE), id="gabapentin-norco"),
    # Carbapenems collapse valproate levels: Depakote and Merrem labels (seizures).
    pytest.param(MEROPENEM_1G, DIVALPROEX_500, Fires(MAJOR), id="meropenem-divalproex"),
]


@pytest.mark.parametrize(("proposed", "active", "expected"), DRUG_DRUG)
def test_drug_drug(proposed: Product, active: Product, expected: Expectation) -> None:
    result = run([order(proposed, "new")], [order(active, "current")])
    assert_all_checked(result)
    found = between_items(result, IssueCategory.DRUG_DRUG, "new", "current")
    expected.verify(found, result.issues)


def test_ophthalmic_timolol_is_weaker_than_oral_timolol_with_verapamil() -> None:
    nothing = len(SEVERITY_RANK)

    def worst(timolol: Product) -> int:
        result = run([order(VERAPAMIL_120, "new")], [order(timolol, "current")])
        found = between_items(result, IssueCategory.DRUG_DRUG, "new", "current")
        return min((SEVERITY_RANK[i.severity] for i in found), default=nothing)

    assert worst(TIMOLOL_10_ORAL) < nothing, "oral timolol + verapamil raised nothing"

    assert worst(TIMOPTIC) > worst(TIMOLOL_10_ORAL)


def test_interaction_reported_once_per_pair_whichever_side_is_proposed() -> None:
    forward = run([order(CLARITHROMYCIN_500, "a")], [order(SIMVASTATIN_40, "b")])
    backward = run([order(SIMVASTATIN_40, "b")], [order(CLARITHROMYCIN_500, "a")])
    both_new = run([order(CLARITHROMYCIN_500, "a"), order(SIMVASTATIN_40, "b")])
    rules = [
        sorted(i.rule_id for i in between_items(r, IssueCategory.DRUG_DRUG, "a", "b"))
        for r in (forward, backward, both_new)
    ]
    assert rules[0] == rules[1] == rules[2]
    assert rules[0]


# --------------------------------------------------------------------------- drug-allergy


@dataclass(frozen=True, slots=True)
class Cleared:
    """No allergy issue; the KB's explicit "not cross-reactive" is recorded."""

    def verify(self, result: CheckResult) -> None:
        found = between_items(result, IssueCategory.DRUG_ALLERGY, "new", "alg")
        assert not found, describe(found)
        assert [(c.medication_id, c.allergy_id) for c in result.cleared] == [("new", "alg")]


@dataclass(frozen=True, slots=True)
class AllergyFires:
    """The one allergy finding of the pair, in [at_least, at_most] (see :class:`Fires`)."""

    at_least: Severity
    at_most: Severity = Severity.CONTRAINDICATED
    rule: str | None = None
    rule_prefix: str | None = None
    interruptive: bool | None = None

    def verify(self, result: CheckResult) -> None:
        found = between_items(result, IssueCategory.DRUG_ALLERGY, "new", "alg")
        assert len(found) == 1, describe(result.issues)  # one finding per pair
        issue = found[0]
        assert within(issue, self.at_least, self.at_most), describe(found)
        if self.rule is not None:
            assert issue.rule_id == self.rule
        if self.rule_prefix is not None:
            assert issue.rule_id.startswith(self.rule_prefix), issue.rule_id
        if self.interruptive is not None:
            assert (issue.display is Display.INTERRUPTIVE) == self.interruptive
        assert [i.kind for i in issue.implicated] == ["medication", "allergy"]


@dataclass(frozen=True, slots=True)
class NoAllergyIssue:
    floor: Severity = Severity.MINOR

    def verify(self, result: CheckResult) -> None:
        found = between_items(result, IssueCategory.DRUG_ALLERGY, "new", "alg")
        loud = [i for i in found if at_least(i.severity, self.floor)]
        assert not loud, describe(loud)


AllergyExpectation = Cleared | AllergyFires | NoAllergyIssue

DRUG_ALLERGY = [
    # Penicillin allergy recorded as a SNOMED CT substance/finding: every penicillin is out
    # (Khan et al., drug allergy practice parameter 2022).
    pytest.param(
        AMOX_CLAV_875,
        PENICILLIN_SUBSTANCE,
        AllergyFires(MAJOR, interruptive=True),
        id="pcn-snomed-amox-clav",
    ),
    pytest.param(
        AUGMENTIN_875_NDC,
        PENICILLIN_FINDING,
        AllergyFires(MAJOR, interruptive=True),
        id="pcn-finding-augmentin-ndc",
    ),
    pytest.param(
        PEN_VK_500, PENICILLIN_SUBSTANCE, AllergyFires(MAJOR), id="pcn-snomed-penicillin-vk"
    ),
    pytest.param(
        OMECLAMOX, PENICILLIN_SUBSTANCE, AllergyFires(MAJOR), id="pcn-snomed-omeclamox-pack"
    ),
    # The same ingredient, whatever code the allergy carries: contraindicated.
    pytest.param(
        AUGMENTIN_875_NDC,
        AMOXICILLIN_IN,
        AllergyFires(CI, CI, rule=RULE_ALLERGY_SAME_INGREDIENT),
        id="amoxicillin-in-augmentin-ndc",
    ),
    pytest.param(
        AMOX_CLAV_875,
        product_allergy(AMOXICILLIN_500),
        AllergyFires(CI, CI, rule=RULE_ALLERGY_SAME_INGREDIENT),
        id="amoxicillin-capsule-amox-clav",
    ),
    pytest.param(
        FUROSEMIDE_40,
        product_allergy(FUROSEMIDE_40_NDC),
        AllergyFires(CI, CI, rule=RULE_ALLERGY_SAME_INGREDIENT),
        id="furosemide-ndc-furosemide",
    ),
    # An allergy to one penicillin product (by NDC) covers the other penicillins.
    pytest.param(
        AMOXICILLIN_500,
        product_allergy(PEN_VK_500_NDC),
        AllergyFires(MAJOR, MAJOR),
        id="penicillin-vk-ndc-amoxicillin",
    ),
    # Cephalexin shares the aminobenzyl R1 side chain of ampicillin/amoxicillin: a
    # cross-sensitivity alert (Khan 2022; Pichichero & Zagursky 2014).
    pytest.param(
        CEPHALEXIN_500,
        PENICILLIN_SUBSTANCE,
        AllergyFires(MAJOR, MAJOR, rule_prefix="ALG-PCN-"),
        id="pcn-snomed-cephalexin",
    ),
    pytest.param(
        CEPHALEXIN_500,
        AMOXICILLIN_IN,
        AllergyFires(MAJOR, MAJOR, rule_prefix="ALG-"),
        id="amoxicillin-in-cephalexin",
    ),
    # Ceftriaxone has a dissimilar R1: may be given without testing (Khan 2022) - informational.
    pytest.param(
        CEFTRIAXONE_1G,
        PENICILLIN_SUBSTANCE,
        AllergyFires(MINOR, MINOR, interruptive=False),
        id="pcn-snomed-ceftriaxone",
    ),
    # Aztreonam does not cross-react with penicillins (Azactam label; Khan 2022).
    pytest.param(
        AZTREONAM_1G, PENICILLIN_SUBSTANCE, NoAllergyIssue(MODERATE), id="pcn-snomed-aztreonam"
    ),
    pytest.param(AZITHROMYCIN_250, PENICILLIN_SUBSTANCE, NoAllergyIssue(), id="pcn-azithromycin"),
    # Sulfonamide antibiotic allergy: non-arylamine sulfonamides are not cross-reactive
    # (Strom et al., NEJM 2003) - explicitly cleared, whatever code the allergy carries.
    pytest.param(FUROSEMIDE_40, SULFONAMIDE_SUBSTANCE, Cleared(), id="sulfa-snomed-furosemide"),
    pytest.param(FUROSEMIDE_40_NDC, SULFAMETHOXAZOLE_IN, Cleared(), id="smx-in-furosemide-ndc"),
    pytest.param(FUROSEMIDE_40, product_allergy(BACTRIM_DS), Cleared(), id="bactrim-furosemide"),
    pytest.param(HCTZ_25, SULFONAMIDE_SUBSTANCE, NoAllergyIssue(MODERATE), id="sulfa-snomed-hctz"),
    pytest.param(
        BACTRIM_DS,
        SULFONAMIDE_SUBSTANCE,
        AllergyFires(MAJOR, interruptive=True),
        id="sulfa-snomed-bactrim",
    ),
    pytest.param(
        BACTRIM_DS,
        SULFONAMIDE_FINDING,
        AllergyFires(MAJOR, interruptive=True),
        id="sulfa-finding-bactrim",
    ),
    # Aspirin-exacerbated respiratory disease: COX-1 NSAIDs cross-react (Kowalski 2013);
    # celecoxib (COX-2 selective) is generally tolerated - at most informational.
    pytest.param(
        IBUPROFEN_800, ASPIRIN_ALLERGY, AllergyFires(MAJOR), id="aspirin-allergy-ibuprofen"
    ),
    pytest.param(
        CELECOXIB_200, ASPIRIN_ALLERGY, NoAllergyIssue(MODERATE), id="aspirin-allergy-celecoxib"
    ),
    # Codeine allergy and oxycodone (both phenanthrenes): some allergy finding.
    pytest.param(PERCOCET_5_325, CODEINE_IN, AllergyFires(MINOR), id="codeine-percocet"),
]


@pytest.mark.parametrize(("proposed", "allergen", "expected"), DRUG_ALLERGY)
def test_drug_allergy(proposed: Product, allergen: Allergen, expected: AllergyExpectation) -> None:
    result = run([order(proposed, "new")], allergies=[allergy_record(allergen)])
    assert_all_checked(result)
    expected.verify(result)


# --------------------------------------------------------------------------- duplicate therapy


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A duplicate-therapy issue implicating the items: the same ingredient (``ingredient``) or a
    duplicate class (``ingredient`` None)."""

    ingredient: str | None = None

    def verify(self, result: CheckResult, ids: Sequence[str]) -> None:
        found = between_items(result, IssueCategory.DUPLICATE_THERAPY, *ids)
        if self.ingredient is None:
            classes = [i for i in found if i.rule_id != RULE_DUPLICATE_INGREDIENT]
            assert classes, describe(result.issues)
            assert all(i.rule_id.startswith("DUP-") for i in classes)
            return
        same = [i for i in found if i.rule_id == RULE_DUPLICATE_INGREDIENT]
        assert len(same) == 1, describe(result.issues)
        names = {x.name for item in same[0].implicated for x in item.ingredients}
        assert self.ingredient in names, names
        assert same[0].severity is MAJOR


@dataclass(frozen=True, slots=True)
class NotDuplicate:
    def verify(self, result: CheckResult, ids: Sequence[str]) -> None:
        found = between_items(result, IssueCategory.DUPLICATE_THERAPY, *ids)
        assert not found, describe(found)


DUPLICATES = [
    # Two SSRIs (serotonin syndrome, no added benefit); escitalopram is citalopram's S-enantiomer.
    pytest.param(SERTRALINE_50, FLUOXETINE_20, Duplicate(), id="sertraline-fluoxetine"),
    pytest.param(ESCITALOPRAM_10, CITALOPRAM_20, Duplicate(), id="escitalopram-citalopram"),
    pytest.param(ZOLOFT_50_NDC, ESCITALOPRAM_10, Duplicate(), id="zoloft-ndc-escitalopram"),
    # Combination products sharing acetaminophen (4 g/day limit; Percocet/Norco labels boxed
    # warning on hepatotoxicity with other acetaminophen-containing products).
    pytest.param(PERCOCET_5_325, NORCO_5_325, Duplicate("acetaminophen"), id="percocet-norco-apap"),
    pytest.param(PERCOCET_5_325, NORCO_5_325, Duplicate(), id="percocet-norco-two-opioids"),
    pytest.param(
        PERCOCET_NDC, TYLENOL_PM, Duplicate("acetaminophen"), id="percocet-ndc-tylenol-pm"
    ),
    kb_gap(
        PERCOCET_5_325,
        TYLENOL_325,
        Duplicate("acetaminophen"),
        id="percocet-tylenol",
        kind="RxNorm table gap",
        reason=(
            "the shipped RxNorm table lacks single-ingredient acetaminophen products (A-gap), "
            "so Tylenol 325 mg tablets (SBD 209387) do not resolve and Percocet + Tylenol is "
            "not seen as duplicate acetaminophen (Percocet label boxed warning: hepatotoxicity "
            "with other acetaminophen products)"
        ),
    ),
    pytest.param(PERCOCET_5_325, OXYCODONE_5, Duplicate("oxycodone"), id="percocet-oxycodone"),
    # A combination product and its single-ingredient component.
    pytest.param(LISINOPRIL_HCTZ, HCTZ_25, Duplicate("hydrochlorothiazide"), id="zestoretic-hctz"),
    pytest.param(
        LISINOPRIL_10_NDC, LISINOPRIL_HCTZ, Duplicate("lisinopril"), id="lisinopril-ndc-zestoretic"
    ),
    pytest.param(OMEPRAZOLE_20, OMECLAMOX, Duplicate("omeprazole"), id="omeprazole-omeclamox"),
    # The same drug ordered twice under different codes (generic SCD and an NDC).
    pytest.param(WARFARIN_5_NDC, WARFARIN_5, Duplicate("warfarin"), id="warfarin-twice"),
    # Two drugs of one class.
    pytest.param(NAPROXEN_500, IBUPROFEN_800, Duplicate(), id="naproxen-ibuprofen"),
    pytest.param(LORAZEPAM_1, ALPRAZOLAM_05, Duplicate(), id="lorazepam-alprazolam"),
    pytest.param(ROSUVASTATIN_40, SIMVASTATIN_40, Duplicate(), id="rosuvastatin-simvastatin"),
    pytest.param(ENALAPRIL_10, LISINOPRIL_10, Duplicate(), id="enalapril-lisinopril"),
    pytest.param(TICAGRELOR_90, CLOPIDOGREL_75, Duplicate(), id="ticagrelor-clopidogrel"),
    pytest.param(APIXABAN_5, WARFARIN_5, Duplicate(), id="apixaban-warfarin"),
    pytest.param(MEDROL_DOSEPAK, PREDNISONE_20, Duplicate(), id="medrol-dosepak-prednisone"),
    # Near misses: topical and oral corticosteroids are not duplicates; nor is topical and oral
    # hydrocortisone (different routes).
    pytest.param(HYDROCORTISONE_CREAM, PREDNISONE_20, NotDuplicate(), id="hc-cream-prednisone"),
    pytest.param(
        HYDROCORTISONE_CREAM, HYDROCORTISONE_10_TAB, NotDuplicate(), id="hc-cream-hc-tablet"
    ),
    pytest.param(METFORMIN_500, LISINOPRIL_10, NotDuplicate(), id="metformin-lisinopril"),
]


@pytest.mark.parametrize(("proposed", "active", "expected"), DUPLICATES)
def test_duplicate_therapy(
    proposed: Product, active: Product, expected: Duplicate | NotDuplicate
) -> None:
    result = run([order(proposed, "new")], [order(active, "current")])
    assert_all_checked(result)
    expected.verify(result, ("new", "current"))


def test_duplicate_between_two_proposed_orders() -> None:
    result = run([order(SERTRALINE_50, "new"), order(FLUOXETINE_20, "current")])
    Duplicate().verify(result, ("new", "current"))


# --------------------------------------------------------------------------- coverage


def test_drugs_the_kb_does_not_mention_are_checked_and_nothing_is_found() -> None:
    result = run(
        [order(METFORMIN_500_NDC, "new")],
        [order(LISINOPRIL_10, "current"), order(AMLODIPINE_5, "other")],
    )
    assert_all_checked(result)
    assert result.issues == (), describe(result.issues)
    items = {s.item_id: s for s in result.items}
    assert [x.name for x in items["new"].ingredients] == ["metformin"]
    assert items["new"].dose == "no-limit"


def test_unknown_rxcui_is_unresolved_and_raises_unable_to_check() -> None:
    result = run([order(UNKNOWN_RXCUI, "new")], [order(WARFARIN_5, "current")])
    assert statuses(result) == {"new": "unresolved", "current": "checked"}
    assert [(u.item_id, u.code, u.reason) for u in result.unresolved] == [
        ("new", "99999999", "unknown-code")
    ]
    assert [i.rule_id for i in result.issues] == [RULE_UNABLE_TO_CHECK]
    assert result.issues[0].category is IssueCategory.UNABLE_TO_CHECK
    assert [i.id for i in result.issues[0].implicated] == ["new"]


def test_unknown_ndc_is_unresolved() -> None:
    result = run([order(UNKNOWN_NDC, "new")])
    assert statuses(result) == {"new": "unresolved"}
    assert [(u.system, u.reason) for u in result.unresolved] == [(NDC_SYSTEM, "unknown-code")]
    assert [i.rule_id for i in result.issues] == [RULE_UNABLE_TO_CHECK]


def test_free_text_medication_is_not_checkable() -> None:
    free_text = MedicationInput("new", "grandma's herbal tea", text="herbal tea, 1 cup daily")
    result = run([free_text], [order(WARFARIN_5, "current")])
    assert statuses(result) == {"new": "not_checkable", "current": "checked"}
    assert [(u.item_id, u.reason) for u in result.not_checkable] == [("new", "free-text-only")]
    assert [i.rule_id for i in result.issues] == [RULE_UNABLE_TO_CHECK]


def test_allopurinol_tablets_missing_from_the_table_are_reported_not_passed() -> None:
    # Allopurinol + azathioprine is a major interaction (Zyloprim, Imuran labels); the shipped
    # table cannot resolve allopurinol tablets, so the order must say it was not screened.
    result = run([order(ALLOPURINOL_300, "new")], [order(AZATHIOPRINE_50, "current")])
    assert statuses(result) == {"new": "unresolved", "current": "checked"}
    assert [u.code for u in result.unresolved] == ["197320"]
    assert [i.rule_id for i in result.issues] == [RULE_UNABLE_TO_CHECK]


def test_active_amiodarone_missing_from_the_table_is_reported() -> None:
    # Digoxin + amiodarone is a major interaction (Lanoxin label 7: halve digoxin); an active
    # amiodarone the table cannot resolve is listed as unresolved, not silently dropped.
    result = run([order(DIGOXIN_0125, "new")], [order(AMIODARONE_200, "current")])
    assert statuses(result) == {"new": "checked", "current": "unresolved"}
    assert [(u.item_id, u.code) for u in result.unresolved] == [("current", "833528")]


def test_tylenol_tablets_missing_from_the_table_are_reported() -> None:
    result = run([order(TYLENOL_325, "new")], [order(PERCOCET_5_325, "current")])
    assert statuses(result) == {"new": "unresolved", "current": "checked"}
    assert [i.rule_id for i in result.issues] == [RULE_UNABLE_TO_CHECK]


def test_unhyphenated_ten_digit_ndc_is_refused_not_guessed() -> None:
    ambiguous = ndc("0093172101", "warfarin 5 mg tablet, 10-digit NDC without hyphens")
    result = run([order(ambiguous, "new")])
    assert statuses(result) == {"new": "unresolved"}
    assert [u.reason for u in result.unresolved] == ["unknown-code"]


def test_non_drug_allergy_is_reported_unresolved() -> None:
    result = run([order(AMOX_CLAV_875, "new")], allergies=[allergy_record(LATEX_ALLERGY)])
    assert statuses(result)["alg"] == "unresolved"
    assert [(u.item_id, u.kind, u.code) for u in result.unresolved] == [
        ("alg", "allergy", "300916003")
    ]
    assert result.issues == ()


def test_hyphenated_and_plain_ndc_resolve_like_the_rxcui() -> None:
    resolver = _resolver()
    for product, rxcui in [
        (WARFARIN_5_NDC, "855332"),
        (IBUPROFEN_800_NDC, "197807"),
        (ZOCOR_40_NDC, "152923"),
        (PERCOCET_NDC, "1049640"),
        (AUGMENTIN_875_NDC, "824194"),
        (FUROSEMIDE_40_NDC, "313988"),
    ]:
        resolution = resolver.resolve(product.system, product.code)
        assert resolution is not None, product
        assert resolution.rxcui == rxcui, (product, resolution)


# --------------------------------------------------------------------------- dose range


def per_day(tablets: float, times_a_day: float, unit: str = "{tbl}") -> Dosage:
    return Dosage(DoseQuantity(tablets, unit), per_day=times_a_day)


DOSES = [
    # Methotrexate for RA/psoriasis is weekly; daily dosing has killed patients (ISMP).
    pytest.param(METHOTREXATE_25, per_day(1, 1), 70.0, "flagged", id="methotrexate-daily"),
    pytest.param(
        METHOTREXATE_25, per_day(6, 1 / 7), 70.0, "within-limits", id="methotrexate-15mg-weekly"
    ),
    # Apixaban: 10 mg twice daily is the labelled VTE loading dose; 30 mg/day is not (Eliquis).
    pytest.param(APIXABAN_5, per_day(2, 2), 70.0, "within-limits", id="apixaban-2-tabs-bid"),
    pytest.param(APIXABAN_5, per_day(2, 3), 70.0, "flagged", id="apixaban-2-tabs-tid"),
    # Enoxaparin: 1 mg/kg every 12 h (Lovenox label); 100 mg q12h at 45 kg is 2.2 mg/kg.
    pytest.param(
        ENOXAPARIN_100_SYRINGE, per_day(1, 2, "{syringe}"), 45.0, "flagged", id="enox-100-45kg"
    ),
    pytest.param(
        ENOXAPARIN_80_SYRINGE,
        per_day(1, 2, "{syringe}"),
        80.0,
        "within-limits",
        id="enox-80-80kg",
    ),
    # Percocet 5/325: 2 tablets every 3 h is 5.2 g acetaminophen a day (> 4 g); 1 q6h is 1.3 g.
    pytest.param(PERCOCET_5_325, per_day(2, 8), 70.0, "flagged", id="percocet-2-q3h"),
    pytest.param(PERCOCET_NDC, per_day(1, 4), 70.0, "within-limits", id="percocet-ndc-1-q6h"),
]


@pytest.mark.parametrize(("product", "dosage", "weight", "expected"), DOSES)
def test_dose_range(product: Product, dosage: Dosage, weight: float, expected: str) -> None:
    result = run([order(product, "new", dosage)], weight_kg=weight)
    assert_all_checked(result)
    (status,) = (s for s in result.items if s.item_id == "new")
    assert status.dose == expected, describe(result.issues)
    dose_issues = [i for i in result.issues if i.category is IssueCategory.DOSE_RANGE]
    if expected == "flagged":
        assert dose_issues, describe(result.issues)
        assert all(i.implicated[0].id == "new" for i in dose_issues)
    else:
        assert not dose_issues, describe(dose_issues)
