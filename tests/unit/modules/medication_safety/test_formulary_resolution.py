"""Every code of the shared RxNorm tables resolves to the right ingredients through the shipped
table (issue: "every prescribable code resolves"), generated over the tables themselves.

The tables (the base derived tables and the "A" supplement) live outside the repository
(``support.rxnorm_sources``: skipped on a machine without them, a failure under CI); the shipped
table is built from them (``ehr medication-safety build-rxnorm-table``), and ``test_rxnorm_import``
checks it is reproducible from them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from support.rxnorm_sources import RXNORM_SOURCES, needs_rxnorm_sources

from ehr.modules.medication_safety.knowledge import (
    NDC_SYSTEM,
    RXNORM_SYSTEM,
    load_resolver,
    shipped_table_dir,
)
from ehr.modules.medication_safety.knowledge.rxnorm_build import kb_ingredients

TABLES = RXNORM_SOURCES
PRODUCTS = frozenset({"SCD", "SBD", "GPCK", "BPCK"})

pytestmark = [needs_rxnorm_sources, pytest.mark.usefixtures("no_operator_table")]


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)


@cache
def _complete() -> dict[str, tuple[str, frozenset[str]]]:
    """Every concept the shared tables give a complete ingredient set: rxcui → (tty, INs)."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for table in TABLES:
        for row in _rows(table / "rxnorm_ingredients.tsv"):
            found[row["rxcui"]] = (row["tty"], frozenset(row["ingredient_rxcuis"].split(",")))
    return found


@cache
def _kb() -> frozenset[str]:
    return kb_ingredients(Path(str(shipped_table_dir())).parent / "sources")


def _mismatches(system: str, codes: dict[str, frozenset[str]]) -> list[str]:
    resolver = load_resolver()
    wrong: list[str] = []
    for code, expected in sorted(codes.items()):
        resolution = resolver.resolve(system, code)
        got = None if resolution is None else resolution.ingredients
        if got != expected:
            wrong.append(f"{code}: {sorted(got) if got else None} != {sorted(expected)}")
    return wrong


def test_every_product_of_a_kb_ingredient_resolves_to_its_ingredients() -> None:
    products = {
        rxcui: ingredients
        for rxcui, (tty, ingredients) in _complete().items()
        if tty in PRODUCTS and not ingredients.isdisjoint(_kb())
    }
    assert len(products) > 5000  # SCD/SBD/packs of the KB's ingredients in the tables
    wrong = _mismatches(RXNORM_SYSTEM, products)
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"


def test_every_ndc_of_a_kb_ingredient_resolves_to_its_ingredients() -> None:
    complete = _complete()
    ndcs: dict[str, frozenset[str]] = {}
    for table in TABLES:
        for row in _rows(table / "rxnorm_ndc.tsv"):
            concept = complete.get(row["rxcui"])
            if concept is not None and not concept[1].isdisjoint(_kb()):
                ndcs[row["ndc11"]] = concept[1]
    assert len(ndcs) > 50000
    wrong = _mismatches(NDC_SYSTEM, ndcs)
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"
    # The hyphenated 5-4-2 form too (how NDCs are printed on packages).
    sample = dict(sorted(ndcs.items())[:: max(1, len(ndcs) // 500)])
    hyphenated = {f"{c[:5]}-{c[5:9]}-{c[9:]}": ingredients for c, ingredients in sample.items()}
    assert not _mismatches(NDC_SYSTEM, hyphenated)


def test_drugs_the_kb_does_not_mention_resolve_too() -> None:
    others = {
        rxcui: ingredients
        for rxcui, (tty, ingredients) in _complete().items()
        if ingredients.isdisjoint(_kb())
    }
    assert len(others) > 10000
    wrong = _mismatches(RXNORM_SYSTEM, others)
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"


def test_partial_rows_resolve_completely_or_not_at_all() -> None:
    """A row the tables know only partly resolves to what they know plus the ingredient the
    completion found (by name: every component must be a known ingredient), or not at all —
    never to the incomplete set. (A few equal sets are right: "nitrofurantoin, macrocrystals /
    nitrofurantoin, monohydrate" is nitrofurantoin twice.)"""
    resolver = load_resolver()
    complete = _complete()
    seen = grown = same = 0
    for table in TABLES:
        for row in _rows(table / "rxnorm_ingredients_partial.tsv"):
            if row["rxcui"] in complete:
                continue
            known = {k for k in row["known_ingredient_rxcuis"].split(",") if k}
            resolution = resolver.resolve(RXNORM_SYSTEM, row["rxcui"])
            if resolution is not None:
                assert known <= resolution.ingredients, row
                if len(resolution.ingredients) > len(known):
                    grown += 1
                else:
                    same += 1
            seen += 1
    assert seen > 400
    assert grown > 150
    assert same <= 5
