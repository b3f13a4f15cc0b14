"""Medication-safety check in process: one new drug against a 20-drug profile with 5 allergies.

    .venv/bin/python benchmarks/medication_safety.py [--rounds 7] [--iterations 2000] \
        [--sources DIR]

Target P10 (/work/shared/docs/performance.md): median < 1 ms. No stack needed (pure in-process).

The profile uses realistic codes: each medication is coded with the first single-ingredient SCD
the shipped RxNorm table has for its ingredient (the ingredient's IN code when it has none; free
text when the table lacks the ingredient, as tamsulosin: outside the KB, not in the subset); the
allergies are three RxNorm ingredients, one SNOMED CT substance (as EHRs record "penicillin") and
one free-text entry. Variants, measured in interleaved rounds (order alternating
between rounds), each call timed with perf_counter_ns:

  check/alerting   engine.check: the new drug (naproxen) fires interactions, a duplicate class
                   and an allergy (aspirin) issue
  check/clean      engine.check: a new drug that fires nothing (the common case)
  check+render     check/alerting plus every issue rendered as a CDS card and a DetectedIssue
  check/dose       engine.check: a new apixaban 5 mg tablet order, 2 tablets three times a day
                   (the dose-range check: strength from the RxNorm name, flagged above 20 mg/day)

Prints the median of the round medians and of the round p95s, the spread (min..max of round
medians), and median ÷ 1 ms (< 1 means within target). Also the one-off costs: compiling the KB
and loading the RxNorm table (each done once per process and cached).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ehr.modules.cds_hooks.medication_cards import to_cds_card
from ehr.modules.medication_safety.engine import check
from ehr.modules.medication_safety.issues import (
    SNOMED_SYSTEM,
    AllergyInput,
    Coding,
    Dosage,
    DoseQuantity,
    MedicationInput,
)
from ehr.modules.medication_safety.knowledge import (
    CONCEPTS_FILE,
    RXNORM_SYSTEM,
    SOURCES_DIR,
    RxNormTable,
    compile_knowledge,
    shipped_table_dir,
)
from ehr.modules.medication_safety.rendering import to_detected_issue

TARGET_MS = 1.0

# A plausible older adult's active list (cardiometabolic, pain, mood, GI, anticoagulation).
PROFILE = [
    "lisinopril", "metformin", "atorvastatin", "amlodipine", "metoprolol", "omeprazole",
    "warfarin", "furosemide", "levothyroxine", "sertraline", "gabapentin", "ibuprofen",
    "simvastatin", "hydrochlorothiazide", "tamsulosin", "allopurinol", "prednisone",
    "spironolactone", "digoxin", "tramadol",
]  # fmt: skip
ALLERGIES = ["amoxicillin", "sulfamethoxazole", "aspirin"]
PENICILLIN_SNOMED = "764146007"  # Substance: penicillin
APIXABAN_5MG_TABLET = "1364445"  # apixaban 5 MG Oral Tablet (SCD)
NEW_ALERTING = "naproxen"  # warfarin, ACE inhibitor/diuretics, a second NSAID, aspirin allergy
NEW_CLEAN = "acetaminophen"


def _first_codes() -> tuple[dict[str, str], dict[str, str]]:
    """Ingredient name → IN rxcui, and ingredient rxcui → its first single-ingredient SCD."""
    with shipped_table_dir().joinpath(CONCEPTS_FILE).open("rb") as handle:
        rows = gzip.decompress(handle.read()).decode("utf-8").splitlines()[1:]
    by_name: dict[str, str] = {}
    first_scd: dict[str, str] = {}
    for row in rows:
        rxcui, tty, name, ingredients = row.split("\t")
        if tty == "IN":
            by_name.setdefault(name, rxcui)
        elif tty == "SCD" and "," not in ingredients:
            first_scd.setdefault(ingredients, rxcui)
    return by_name, first_scd


def _medication(
    name: str, by_name: dict[str, str], first_scd: dict[str, str], kb_names: dict[str, str]
) -> MedicationInput:
    rxcui = by_name.get(name) or kb_names.get(name)
    if rxcui is None:
        return MedicationInput(f"med-{name}", name, text=name)  # not checkable, still realistic
    code = first_scd.get(rxcui, rxcui)
    return MedicationInput(
        f"MedicationRequest/{name}",
        name,
        (Coding(RXNORM_SYSTEM, code),),
        reference=f"MedicationRequest/{name}",
    )


def _timed(call: Callable[[], object], iterations: int) -> tuple[float, float]:
    """(median, p95) in ms of ``iterations`` calls."""
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    kb = compile_knowledge(args.sources)
    compile_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    resolver = RxNormTable.from_directory(shipped_table_dir())
    table_ms = (time.perf_counter() - started) * 1000

    by_name, first_scd = _first_codes()
    kb_names = {name: rxcui for rxcui, name in kb.ingredients.items()}
    active = [_medication(n, by_name, first_scd, kb_names) for n in PROFILE]
    allergies = [
        AllergyInput(
            f"AllergyIntolerance/{n}",
            f"{n} allergy",
            (Coding(RXNORM_SYSTEM, by_name.get(n) or kb_names.get(n, "0")),),
        )
        for n in ALLERGIES
    ]
    allergies.append(
        AllergyInput(
            "AllergyIntolerance/pcn", "penicillin", (Coding(SNOMED_SYSTEM, PENICILLIN_SNOMED),)
        )
    )
    allergies.append(AllergyInput("AllergyIntolerance/latex", "latex", text="latex gloves"))
    alerting = [_medication(NEW_ALERTING, by_name, first_scd, kb_names)]
    clean = [_medication(NEW_CLEAN, by_name, first_scd, kb_names)]

    def check_alerting() -> object:
        return check(alerting, active, allergies, kb=kb, resolver=resolver)

    def check_clean() -> object:
        return check(clean, active, allergies, kb=kb, resolver=resolver)

    dosed = [
        MedicationInput(
            "MedicationRequest/new-apixaban",
            "apixaban 5 MG Oral Tablet",
            (Coding(RXNORM_SYSTEM, APIXABAN_5MG_TABLET),),
            dosage=Dosage(DoseQuantity(2, "{tbl}"), per_day=3),
        )
    ]

    def check_dose() -> object:
        return check(dosed, active, allergies, kb=kb, resolver=resolver)

    def check_and_render() -> object:
        result = check(alerting, active, allergies, kb=kb, resolver=resolver)
        return [
            (to_cds_card(i, kb_version=result.kb_version), to_detected_issue(i, "Patient/1"))
            for i in result.issues
        ]

    variants: dict[str, Callable[[], object]] = {
        "check/alerting": check_alerting,
        "check/clean": check_clean,
        "check+render": check_and_render,
        "check/dose": check_dose,
    }
    sample = check(alerting, active, allergies, kb=kb, resolver=resolver)
    coded = sum(1 for m in active if m.codings and m.codings[0].code in first_scd.values())
    print(f"KB {kb.version}: {len(kb.interactions)} interactions, {len(kb.pair_index)} pair keys")
    print(f"profile: {len(active)} active ({coded} coded by SCD), {len(allergies)} allergies")
    print(
        f"alerting check → {len(sample.issues)} issues "
        f"({', '.join(sorted({i.rule_id for i in sample.issues}))}); "
        f"{len(sample.unresolved)} unresolved codes, {len(sample.not_checkable)} not checkable"
    )
    print(f"one-off: compile KB {compile_ms:.1f} ms, load RxNorm table {table_ms:.1f} ms")

    for call in variants.values():  # warm-up
        _timed(call, args.iterations // 4)
    medians: dict[str, list[float]] = {name: [] for name in variants}
    p95s: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            median, p95 = _timed(variants[name], args.iterations)
            medians[name].append(median)
            p95s[name].append(p95)

    print(
        f"\n{args.rounds} interleaved rounds x {args.iterations} calls (ms; median of round "
        f"medians / of round p95s, spread = min..max of round medians)"
    )
    print(
        f"  {'variant':<16} {'median':>8} {'p95':>8}   {'spread':>17}   median / {TARGET_MS:g} ms"
    )
    for name in names:
        median = statistics.median(medians[name])
        p95 = statistics.median(p95s[name])
        low, high = min(medians[name]), max(medians[name])
        print(
            f"  {name:<16} {median:8.4f} {p95:8.4f}   {low:7.4f} .. {high:7.4f}"
            f"   {median / TARGET_MS:6.3f}"
        )


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--sources", type=Path, default=SOURCES_DIR, help="KB sources directory (default: shipped)"
    )
    parser.add_argument("--iterations", type=int, default=2000, help="calls per variant per round")
    return parser.parse_args()


if __name__ == "__main__":
    main(_parse())
