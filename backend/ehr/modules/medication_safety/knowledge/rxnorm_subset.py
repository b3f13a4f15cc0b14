"""Build the compact RxNorm table shipped in the package (``data/rxnorm``): :func:`build_subset`.

From the derived TSVs of the RxNorm Current Prescribable Content (``rxnorm_concepts.tsv``,
``rxnorm_ingredients.tsv``, ``rxnorm_ingredients_partial.tsv``, ``rxnorm_ndc.tsv``) plus the
hand-verified ``data/rxnorm/supplement.tsv``, restricted to the knowledge base's ingredients;
written with :func:`~.rxnorm_files.write_table` (the other producer of the table
:mod:`.rxnorm_table` loads is :mod:`.rxnorm_release`).

Deterministic: the same inputs give the same bytes.

Scope of the shipped subset (:func:`select_scope`)
- every IN that the knowledge base names (any ``rxcui`` in ``data/sources/*.yaml``);
- every PIN/MIN/SCDC/SCD/SBD/GPCK/BPCK with at least one knowledge-base ingredient: this
  includes the concepts made only of KB ingredients and also combinations with an ingredient the
  KB does not cover (ibuprofen/famotidine must still be seen as an NSAID); their other
  ingredients are listed too (with their IN rows), so every ingredient in the table has a name;
- the NDCs of those concepts.

Partial rows (an A-initial ingredient is missing from the derived source, see its SOURCE.md):
completed by name parsing (:func:`ingredients_from_name`) only when every component of the name
is exactly the name of a known IN or PIN (``amoxicillin 875 MG / clavulanate potassium 125 MG
Oral Tablet`` → amoxicillin IN 723 from the supplement + clavulanate via its PIN) and the result
contains the ingredients the source did know. A row that cannot be completed is left out: an
incomplete ingredient set would hide the missing ingredient's interactions, while an unknown
code is reported to the user as unresolved.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ehr.modules.medication_safety.knowledge.dose_forms import pack_components
from ehr.modules.medication_safety.knowledge.rxnorm_files import (
    NDC11,
    RXCUI,
    TABLE_FORMAT,
    ConceptRow,
    RxNormBuildError,
    sorted_ids,
    write_table,
)
from ehr.modules.medication_safety.knowledge.rxnorm_table import NDC_HEADER, TTYS

__all__ = [
    "SUPPLEMENT_HEADER",
    "BuildReport",
    "build_subset",
    "ingredients_from_name",
    "kb_ingredients",
    "read_supplement",
    "select_scope",
]

SUPPLEMENT_HEADER: Final = ("rxcui", "tty", "name", "ingredient_rxcuis", "ndc11s", "source")


# ---- Knowledge-base ingredients -------------------------------------------------------------

_RXCUI_KEYS: Final = frozenset({"rxcui", "a", "b"})


def _collect_rxcuis(node: object, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _RXCUI_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
                text = str(value)
                if RXCUI.match(text):
                    found.add(text)
            else:
                _collect_rxcuis(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_rxcuis(item, found)


def kb_ingredients(sources_dir: Path) -> frozenset[str]:
    """Every RxCUI named in ``sources_dir/*.yaml`` (``rxcui:`` values, near-miss ``a``/``b``)."""
    import yaml  # only the build needs it

    found: set[str] = set()
    for path in sorted(sources_dir.glob("*.yaml")):
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RxNormBuildError(f"{path.name}: not valid YAML ({exc})") from None
        _collect_rxcuis(loaded, found)
    return frozenset(found)


# ---- Inputs of the subset build -------------------------------------------------------------


def _read_tsv(path: Path, header: tuple[str, ...]) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        first = next(reader, None)
        if first is None or tuple(first) != header:
            raise RxNormBuildError(f"{path.name}: header {first!r}, expected {list(header)!r}")
        for number, fields in enumerate(reader, start=2):
            if len(fields) != len(header):
                raise RxNormBuildError(f"{path.name}:{number}: {len(fields)} fields")
            yield fields


@dataclass(frozen=True, slots=True)
class SupplementRow:
    rxcui: str
    tty: str
    name: str
    ingredients: tuple[str, ...]
    ndcs: tuple[str, ...]
    source: str


def read_supplement(path: Path) -> list[SupplementRow]:
    """The hand-verified rows (``supplement.tsv``); every row must name its source."""
    rows: list[SupplementRow] = []
    seen: set[str] = set()
    for fields in _read_tsv(path, SUPPLEMENT_HEADER):
        rxcui, tty, name, ingredient_field, ndc_field, source = (f.strip() for f in fields)
        where = f"{path.name}: {rxcui}"
        if not RXCUI.match(rxcui) or rxcui in seen:
            raise RxNormBuildError(f"{where}: bad or repeated rxcui")
        seen.add(rxcui)
        if tty not in TTYS:
            raise RxNormBuildError(f"{where}: TTY {tty!r}")
        if not name or not source:
            raise RxNormBuildError(f"{where}: name and source are required")
        ingredients = tuple(i.strip() for i in ingredient_field.split(",") if i.strip())
        if tty == "IN" and ingredients not in ((), (rxcui,)):
            raise RxNormBuildError(f"{where}: an IN's ingredient is itself")
        if tty == "IN":
            ingredients = (rxcui,)
        if not ingredients or not all(RXCUI.match(i) for i in ingredients):
            raise RxNormBuildError(f"{where}: ingredient_rxcuis {ingredient_field!r}")
        ndcs = tuple(n.strip() for n in ndc_field.split(",") if n.strip())
        if not all(NDC11.match(n) for n in ndcs):
            raise RxNormBuildError(f"{where}: ndc11s must be 11 digits: {ndc_field!r}")
        if ndcs and tty not in {"SCD", "SBD", "GPCK", "BPCK"}:
            raise RxNormBuildError(f"{where}: only drugs and packs carry NDCs")
        rows.append(SupplementRow(rxcui, tty, name, sorted_ids(ingredients), ndcs, source))
    return rows


# ---- Completing partial rows by name ---------------------------------------------------------

# Leading words before the first substance: a quantity factor ("12 HR", "0.5 ML") and/or a
# qualitative distinction ("3-Bead", "Abuse-Deterrent", "40/60 Release"); substance names start
# with a lower-case letter (a few start with a capital, e.g. "Bordetella": the unstripped name is
# tried first).
_PREFIX = re.compile(r"^(?:[A-Z0-9][^ ]* )+")
# The strength: the first "<number> <UNIT>" whose unit starts with a capital or "%"; the
# substance is what comes before (non-greedy, so "polyethylene glycol 3350 100000 MG" keeps
# "3350" in the substance because "100000" is not a unit).
_STRENGTH = re.compile(
    r"^(?P<substance>.+?) [0-9][0-9.]* (?:[A-Z%][A-Za-z%]*)(?:/[A-Za-z0-9.%]+)*(?: |$)"
)
_BRAND_SUFFIX = re.compile(r"\s*\[[^\[\]]*\]\s*$")


def _drug_substances(name: str) -> list[list[str]]:
    """Readings of an SCD/SBD/SCDC name as substance names (as written, then without prefix)."""
    text = _BRAND_SUFFIX.sub("", name).strip()
    readings: list[list[str]] = []
    for candidate in dict.fromkeys((text, _PREFIX.sub("", text))):
        substances: list[str] = []
        for component in candidate.split(" / "):
            match = _STRENGTH.match(component.strip())
            if match is None:
                break
            substances.append(match.group("substance"))
        else:
            readings.append(substances)
    return readings


# Salt and hydrate words that RxNorm appends to an ingredient name to form a precise ingredient
# (PIN) name: "amphetamine aspartate monohydrate", "atorvastatin calcium".
SALT_WORDS: Final = frozenset(
    {
        "acetate", "aspartate", "benzoate", "besylate", "bitartrate", "bromide", "calcium",
        "citrate", "dihydrate", "fumarate", "gluconate", "hydrobromide", "hydrochloride",
        "hydrate", "lactate", "magnesium", "malate", "maleate", "mesylate", "monohydrate",
        "phosphate", "potassium", "saccharate", "sodium", "succinate", "sulfate", "tartrate",
        "trihydrate",
    }
)  # fmt: skip


def _lookup(substance: str, index: Mapping[str, str], salt_bases: Mapping[str, str]) -> str | None:
    key = substance.lower()
    found = index.get(key)
    if found is not None:
        return found
    words = key.split()
    for cut in range(len(words) - 1, 0, -1):
        base = " ".join(words[:cut])
        if base in salt_bases and all(word in SALT_WORDS for word in words[cut:]):
            return salt_bases[base]
    return None


def ingredients_from_name(
    tty: str,
    name: str,
    name_index: Mapping[str, str],
    salt_bases: Mapping[str, str] | None = None,
) -> tuple[str, ...] | None:
    """The IN RxCUIs named by a concept's name, or ``None`` unless every component is known.

    ``name_index``: lower-case IN/PIN name → IN RxCUI (unambiguous names only): a component must
    be exactly one of these names, or (``salt_bases``: lower-case IN name → RxCUI) one of those
    INs followed only by salt/hydrate words (:data:`SALT_WORDS`). MIN names list ingredient
    names (``amlodipine / benazepril``); drug names carry strengths and a dose form; pack names
    list drugs (``{n (drug) / ...} Pack``).
    """
    if tty == "MIN":
        return _resolve_all([[part.strip() for part in name.split(" / ")]], name_index, salt_bases)
    if tty in {"GPCK", "BPCK"}:
        components = pack_components(name)
        if not components:
            return None
        found: set[str] = set()
        for component in components:
            drug = _resolve_all(_drug_substances(component), name_index, salt_bases)
            if drug is None:
                return None
            found.update(drug)
        return sorted_ids(found)
    if tty in {"SCDC", "SCD", "SBD"}:
        return _resolve_all(_drug_substances(name), name_index, salt_bases)
    return None


def _resolve_all(
    readings: list[list[str]],
    name_index: Mapping[str, str],
    salt_bases: Mapping[str, str] | None,
) -> tuple[str, ...] | None:
    """The ingredients of the first reading whose every substance is known."""
    for substances in readings:
        ingredients: set[str] = set()
        for substance in substances:
            rxcui = _lookup(substance, name_index, salt_bases or {})
            if rxcui is None:
                break
            ingredients.add(rxcui)
        else:
            if ingredients:
                return sorted_ids(ingredients)
    return None


# ---- The subset build -----------------------------------------------------------------------


@dataclass
class BuildReport:
    concepts: Counter[str] = field(default_factory=Counter)
    ndc: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    kb_ingredients: int = 0
    kb_ingredients_without_concept: tuple[str, ...] = ()
    partial_completed: int = 0
    partial_left_out: int = 0
    supplement_rows: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


DERIVED_FILES: Final = (
    "rxnorm_concepts.tsv",
    "rxnorm_ingredients.tsv",
    "rxnorm_ingredients_partial.tsv",
    "rxnorm_ndc.tsv",
)


def _load_derived(
    source_dir: Path, supplement: list[SupplementRow]
) -> tuple[dict[str, ConceptRow], dict[str, str], int, int]:
    """All concepts with a complete ingredient set, and all NDCs, from source + supplement."""
    names: dict[str, tuple[str, str]] = {}
    for rxcui, tty, name in _read_tsv(source_dir / "rxnorm_concepts.tsv", ("rxcui", "tty", "name")):
        if tty in TTYS:
            names[rxcui] = (tty, name)
    complete: dict[str, tuple[str, ...]] = {}
    for rxcui, tty, ingredient_field in _read_tsv(
        source_dir / "rxnorm_ingredients.tsv", ("rxcui", "tty", "ingredient_rxcuis")
    ):
        if names.get(rxcui, ("", ""))[0] != tty:
            raise RxNormBuildError(f"rxnorm_ingredients.tsv: {rxcui} {tty} not in concepts")
        complete[rxcui] = sorted_ids(ingredient_field.split(","))
    partial: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for rxcui, tty, known_field, _status, name in _read_tsv(
        source_dir / "rxnorm_ingredients_partial.tsv",
        ("rxcui", "tty", "known_ingredient_rxcuis", "status", "name"),
    ):
        partial[rxcui] = (tty, name, sorted_ids(k for k in known_field.split(",") if k))

    rows: dict[str, ConceptRow] = {}
    for rxcui, (tty, name) in names.items():
        if tty == "IN":
            rows[rxcui] = ConceptRow(rxcui, tty, name, (rxcui,))
        elif rxcui in complete:
            rows[rxcui] = ConceptRow(rxcui, tty, name, complete[rxcui])

    supplement_ids = {row.rxcui for row in supplement}
    for extra in supplement:
        existing = rows.get(extra.rxcui)
        candidate = ConceptRow(extra.rxcui, extra.tty, extra.name, extra.ingredients)
        if existing is not None and existing != candidate:
            raise RxNormBuildError(
                f"supplement {extra.rxcui} disagrees with the source row {existing}"
            )
        if extra.rxcui in names and names[extra.rxcui][0] != extra.tty:
            raise RxNormBuildError(f"supplement {extra.rxcui}: TTY differs from the source")
        rows[extra.rxcui] = candidate

    # Name index for completing partial rows: IN names and PIN names (→ their IN).
    index: dict[str, str] = {}
    ambiguous: set[str] = set()

    def _index(name: str, rxcui: str) -> None:
        key = name.lower()
        if index.setdefault(key, rxcui) != rxcui:
            ambiguous.add(key)

    for row in rows.values():
        if row.tty == "IN" or (row.tty == "PIN" and len(row.ingredients) == 1):
            _index(row.name, row.ingredients[0])
    for key in ambiguous:
        del index[key]
    # Salt forms are accepted for the supplement's INs only (the source lacks their PINs).
    salt_bases = {row.name.lower(): row.rxcui for row in supplement if row.tty == "IN"}

    completed = left_out = 0
    for rxcui, (tty, name, known) in sorted(partial.items(), key=lambda item: int(item[0])):
        if rxcui in supplement_ids:
            continue  # a hand-verified row wins
        if tty not in TTYS:
            continue
        found = ingredients_from_name(tty, name, index, salt_bases)
        if found is None or not set(known) <= set(found):
            left_out += 1
            continue
        rows[rxcui] = ConceptRow(rxcui, tty, name, found)
        completed += 1

    ndc: dict[str, str] = {}
    for ndc11, rxcui in _read_tsv(source_dir / "rxnorm_ndc.tsv", NDC_HEADER):
        ndc[ndc11] = rxcui
    for extra in supplement:
        for ndc11 in extra.ndcs:
            if ndc.setdefault(ndc11, extra.rxcui) != extra.rxcui:
                raise RxNormBuildError(
                    f"supplement NDC {ndc11} → {extra.rxcui}, source says {ndc[ndc11]}"
                )
    for row in rows.values():
        for ingredient in row.ingredients:
            if ingredient not in rows or rows[ingredient].tty != "IN":
                raise RxNormBuildError(f"{row.rxcui}: ingredient {ingredient} is not an IN row")
    return rows, ndc, completed, left_out


def select_scope(
    rows: Mapping[str, ConceptRow], ndc: Mapping[str, str], kb: frozenset[str]
) -> tuple[list[ConceptRow], dict[str, str]]:
    """The concepts with a KB ingredient, the IN rows they and the KB name, and their NDCs."""
    selected = {
        rxcui: row
        for rxcui, row in rows.items()
        if row.tty != "IN" and not kb.isdisjoint(row.ingredients)
    }
    wanted_ins = set(kb)
    for row in selected.values():
        wanted_ins.update(row.ingredients)
    for rxcui in wanted_ins:
        ingredient = rows.get(rxcui)
        if ingredient is not None and ingredient.tty == "IN":
            selected[rxcui] = ingredient
    kept_ndc = {code: rxcui for code, rxcui in ndc.items() if rxcui in selected}
    return list(selected.values()), kept_ndc


def build_subset(
    source_dir: Path,
    out_dir: Path,
    *,
    sources_dir: Path,
    supplement_path: Path,
    release_label: str,
) -> BuildReport:
    """Build the shipped compact table (deterministic: same inputs → same bytes)."""
    for name in DERIVED_FILES:
        if not (source_dir / name).is_file():
            raise RxNormBuildError(f"{source_dir}: {name} is missing")
    supplement = read_supplement(supplement_path)
    kb = kb_ingredients(sources_dir)
    rows, ndc, completed, left_out = _load_derived(source_dir, supplement)
    concepts, kept_ndc = select_scope(rows, ndc, kb)
    present_ins = {row.rxcui for row in concepts if row.tty == "IN"}
    report = BuildReport(
        concepts=Counter(row.tty for row in concepts),
        ndc=len(kept_ndc),
        kb_ingredients=len(kb),
        kb_ingredients_without_concept=sorted_ids(kb - present_ins),
        partial_completed=completed,
        partial_left_out=left_out,
        supplement_rows=len(supplement),
    )
    release: dict[str, object] = {
        "format": TABLE_FORMAT,
        "kind": "subset",
        "rxnorm_release": release_label,
        "derived_from": source_dir.name,
        "inputs_sha256": {name: _sha256(source_dir / name) for name in DERIVED_FILES}
        | {"supplement.tsv": _sha256(supplement_path)},
        "scope": "KB ingredients (data/sources/*.yaml) and the concepts containing one",
        "kb_ingredients": len(kb),
        "kb_ingredients_without_concept": list(report.kb_ingredients_without_concept),
        "partial_rows_completed_by_name": completed,
        "counts": dict(sorted(report.concepts.items())),
        "ndc": len(kept_ndc),
    }
    report.sizes = write_table(out_dir, concepts, kept_ndc, release)
    return report
