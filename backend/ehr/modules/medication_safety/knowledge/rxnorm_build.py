"""Build the RxNorm table shipped in the package (``data/rxnorm``): :func:`build_table`.

From the derived TSVs of the RxNorm Current Prescribable Content — the base directory
(``rxnorm_concepts.tsv``, ``rxnorm_ingredients.tsv``, ``rxnorm_ingredients_partial.tsv``,
``rxnorm_ndc.tsv``) and any supplement directories in the same format (the "A" supplement:
products of A-initial ingredients and completions of the base's partial rows) — plus the
hand-verified ``data/rxnorm/supplement.tsv``; written with :func:`~.rxnorm_files.write_table`
(the other producer of the table :mod:`.rxnorm_table` loads is :mod:`.rxnorm_release`).

Deterministic: the same inputs give the same bytes.

Scope: **every** concept of the inputs whose ingredient set is complete, with every NDC — the
whole prescribable formulary as far as the inputs hold it, not only what the knowledge base names:
a drug the knowledge base does not mention must resolve (and be reported as checked with nothing
found), never come back "unknown".

Partial rows (an A-initial ingredient is missing from the derived source, see its SOURCE.md):
completed from a supplement directory's ``rxnorm_ingredients.tsv`` when it has the row, else by
name parsing (:mod:`.rxnorm_names`) only when every component of the name is exactly the name of a
known IN or PIN (``amoxicillin 875 MG / clavulanate potassium 125 MG Oral Tablet`` →
amoxicillin IN 723 + clavulanate via its PIN) and the result contains the ingredients the source
did know. A row that cannot be completed is left out and counted in ``release.json``: an
incomplete ingredient set would hide the missing ingredient's interactions, while an unknown code
is reported to the user as unresolved ("unable to check").

Build-time check (:func:`check_kb_coverage`): every knowledge-base ingredient has its IN row and
at least one single-ingredient clinical drug (an SCD of that ingredient alone), unless
``data/rxnorm/not_prescribable.tsv`` lists it with the reason (no longer marketed in the US,
combination-only, an A-gap product the inputs lack). A listed ingredient that does resolve fails
the build too (the list must not go stale).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ehr.modules.medication_safety.knowledge.rxnorm_files import (
    NDC11,
    RXCUI,
    TABLE_FORMAT,
    ConceptRow,
    RxNormBuildError,
    sorted_ids,
    write_table,
)
from ehr.modules.medication_safety.knowledge.rxnorm_names import ingredients_from_name
from ehr.modules.medication_safety.knowledge.rxnorm_table import NDC_HEADER, TTYS

__all__ = [
    "NOT_PRESCRIBABLE_HEADER",
    "SUPPLEMENT_HEADER",
    "BuildReport",
    "KbCoverageGap",
    "build_table",
    "check_kb_coverage",
    "kb_ingredients",
    "read_not_prescribable",
    "read_supplement",
]

SUPPLEMENT_HEADER: Final = ("rxcui", "tty", "name", "ingredient_rxcuis", "ndc11s", "source")
NOT_PRESCRIBABLE_HEADER: Final = ("rxcui", "name", "reason")


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


# ---- The build ------------------------------------------------------------------------------


@dataclass
class BuildReport:
    concepts: Counter[str] = field(default_factory=Counter)
    ndc: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    kb_ingredients: int = 0
    not_prescribable: tuple[str, ...] = ()
    completed_by_supplement: int = 0
    partial_completed: int = 0
    partial_left_out: Counter[str] = field(default_factory=Counter)  # by TTY
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


@dataclass
class _Derived:
    rows: dict[str, ConceptRow]
    ndc: dict[str, str]
    completed_by_supplement: int
    completed_by_name: int
    left_out: Counter[str]


def _load_derived(source_dirs: Sequence[Path], supplement: list[SupplementRow]) -> _Derived:
    """All concepts with a complete ingredient set, and all NDCs, from sources + supplement."""
    names: dict[str, tuple[str, str]] = {}
    complete: dict[str, tuple[str, ...]] = {}
    partial: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    completed_by_supplement = 0
    for number, source_dir in enumerate(source_dirs):
        where = source_dir.name
        for rxcui, tty, name in _read_tsv(
            source_dir / "rxnorm_concepts.tsv", ("rxcui", "tty", "name")
        ):
            if tty not in TTYS:
                continue
            if names.setdefault(rxcui, (tty, name)) != (tty, name):
                raise RxNormBuildError(f"{where}: {rxcui} {tty} {name!r} != {names[rxcui]}")
        for rxcui, tty, ingredient_field in _read_tsv(
            source_dir / "rxnorm_ingredients.tsv", ("rxcui", "tty", "ingredient_rxcuis")
        ):
            if names.get(rxcui, ("", ""))[0] != tty:
                raise RxNormBuildError(f"{where}: rxnorm_ingredients.tsv: {rxcui} {tty} unknown")
            found = sorted_ids(ingredient_field.split(","))
            if complete.setdefault(rxcui, found) != found:
                raise RxNormBuildError(f"{where}: {rxcui} ingredients {found} != {complete[rxcui]}")
            if number > 0 and rxcui in partial:
                known = partial.pop(rxcui)[2]
                if not set(known) <= set(found):
                    raise RxNormBuildError(f"{where}: {rxcui} completion drops {known}")
                completed_by_supplement += 1
        for rxcui, tty, known_field, _status, name in _read_tsv(
            source_dir / "rxnorm_ingredients_partial.tsv",
            ("rxcui", "tty", "known_ingredient_rxcuis", "status", "name"),
        ):
            if rxcui not in complete and tty in TTYS:
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
    # Salt forms are accepted for the INs that have no PIN rows in the inputs: the A-initial
    # ones (the supplement's and the supplement directories').
    salt_bases = {
        row.name.lower(): row.rxcui
        for row in rows.values()
        if row.tty == "IN" and row.name[:1].lower() == "a"
    }

    completed = 0
    left_out: Counter[str] = Counter()
    for rxcui, (tty, name, known) in sorted(partial.items(), key=lambda item: int(item[0])):
        if rxcui in supplement_ids:
            continue  # a hand-verified row wins
        named = ingredients_from_name(tty, name, index, salt_bases)
        if named is None or not set(known) <= set(named):
            left_out[tty] += 1
            continue
        rows[rxcui] = ConceptRow(rxcui, tty, name, named)
        completed += 1

    ndc: dict[str, str] = {}
    for source_dir in source_dirs:
        for ndc11, rxcui in _read_tsv(source_dir / "rxnorm_ndc.tsv", NDC_HEADER):
            if ndc.setdefault(ndc11, rxcui) != rxcui:
                raise RxNormBuildError(f"NDC {ndc11} maps to {rxcui} and {ndc[ndc11]}")
    for extra in supplement:
        for ndc11 in extra.ndcs:
            if ndc.setdefault(ndc11, extra.rxcui) != extra.rxcui:
                raise RxNormBuildError(
                    f"supplement NDC {ndc11} → {extra.rxcui}, source says {ndc[ndc11]}"
                )
    # An NDC of a concept left out (its ingredients are unknown) is left out with it.
    kept_ndc = {code: rxcui for code, rxcui in ndc.items() if rxcui in rows}
    for row in rows.values():
        for ingredient in row.ingredients:
            if ingredient not in rows or rows[ingredient].tty != "IN":
                raise RxNormBuildError(f"{row.rxcui}: ingredient {ingredient} is not an IN row")
    return _Derived(rows, kept_ndc, completed_by_supplement, completed, left_out)


def read_not_prescribable(path: Path) -> dict[str, tuple[str, str]]:
    """KB ingredients known to have no single-ingredient product in the table, with why."""
    listed: dict[str, tuple[str, str]] = {}
    for rxcui, name, reason in _read_tsv(path, NOT_PRESCRIBABLE_HEADER):
        if not RXCUI.match(rxcui) or rxcui in listed or len(reason.strip()) < 10:
            raise RxNormBuildError(f"{path.name}: {rxcui}: bad, repeated or unexplained row")
        listed[rxcui] = (name, reason.strip())
    return listed


@dataclass(frozen=True, slots=True)
class KbCoverageGap:
    rxcui: str
    problem: str


def check_kb_coverage(
    rows: Mapping[str, ConceptRow], kb: frozenset[str], not_prescribable: Mapping[str, object]
) -> list[KbCoverageGap]:
    """KB ingredients without an IN row or a single-ingredient SCD (and stale exemptions)."""
    single = {row.ingredients[0] for row in rows.values() if row.tty == "SCD"
              and len(row.ingredients) == 1}  # fmt: skip
    gaps: list[KbCoverageGap] = []
    for rxcui in sorted(kb, key=int):
        covered = rxcui in rows and rows[rxcui].tty == "IN" and rxcui in single
        if covered and rxcui in not_prescribable:
            gaps.append(KbCoverageGap(rxcui, "listed as not prescribable but it resolves"))
        elif not covered and rxcui not in not_prescribable:
            what = "no IN row" if rxcui not in rows else "no single-ingredient clinical drug"
            gaps.append(KbCoverageGap(rxcui, what))
    for rxcui in sorted(set(not_prescribable) - kb, key=int):
        gaps.append(KbCoverageGap(rxcui, "listed as not prescribable but the KB does not name it"))
    return gaps


def build_table(
    source_dirs: Sequence[Path],
    out_dir: Path,
    *,
    sources_dir: Path,
    supplement_path: Path,
    not_prescribable_path: Path,
    release_label: str,
) -> BuildReport:
    """Build the shipped RxNorm table (deterministic: same inputs → same bytes).

    ``source_dirs``: the base derived directory first, then supplement directories.
    Raises :class:`RxNormBuildError` on inconsistent inputs and on KB coverage gaps.
    """
    if not source_dirs:
        raise RxNormBuildError("no derived directory given")
    for source_dir in source_dirs:
        for name in DERIVED_FILES:
            if not (source_dir / name).is_file():
                raise RxNormBuildError(f"{source_dir}: {name} is missing")
    supplement = read_supplement(supplement_path)
    not_prescribable = read_not_prescribable(not_prescribable_path)
    kb = kb_ingredients(sources_dir)
    derived = _load_derived(source_dirs, supplement)
    gaps = check_kb_coverage(derived.rows, kb, not_prescribable)
    if gaps:
        listed = "; ".join(f"{gap.rxcui}: {gap.problem}" for gap in gaps)
        raise RxNormBuildError(f"knowledge-base ingredients not covered by the table: {listed}")
    concepts = list(derived.rows.values())
    a_ingredients = sorted(
        (row for row in concepts if row.tty == "IN" and row.name[:1].lower() == "a"),
        key=lambda row: row.name,
    )
    report = BuildReport(
        concepts=Counter(row.tty for row in concepts),
        ndc=len(derived.ndc),
        kb_ingredients=len(kb),
        not_prescribable=tuple(sorted(not_prescribable, key=int)),
        completed_by_supplement=derived.completed_by_supplement,
        partial_completed=derived.completed_by_name,
        partial_left_out=derived.left_out,
        supplement_rows=len(supplement),
    )
    inputs = {
        f"{source_dir.name}/{name}": _sha256(source_dir / name)
        for source_dir in source_dirs
        for name in DERIVED_FILES
    }
    inputs["supplement.tsv"] = _sha256(supplement_path)
    inputs["not_prescribable.tsv"] = _sha256(not_prescribable_path)
    release: dict[str, object] = {
        "format": TABLE_FORMAT,
        "kind": "formulary",
        "rxnorm_release": release_label,
        "derived_from": [source_dir.name for source_dir in source_dirs],
        "inputs_sha256": inputs,
        "scope": "every concept of the inputs with a complete ingredient set, and its NDCs",
        "kb_ingredients": len(kb),
        "kb_ingredients_not_prescribable": {
            rxcui: {"name": name, "reason": reason}
            for rxcui, (name, reason) in sorted(not_prescribable.items(), key=lambda i: int(i[0]))
        },
        "partial_rows_completed_by_supplement": derived.completed_by_supplement,
        "partial_rows_completed_by_name": derived.completed_by_name,
        "partial_rows_left_out": dict(sorted(derived.left_out.items())),
        "a_initial_ingredients": len(a_ingredients),
        "cannot_resolve": (
            "The inputs lack most ingredients whose name starts with 'A' (the base source lost "
            "about 509 A-initial ingredient records; the supplements recover "
            f"{len(a_ingredients)} A-initial ingredients and some of their products). Codes of "
            "the missing ingredients' products, of the partial rows left out above and NDCs "
            "the inputs do not map resolve to 'unknown' and are reported as unresolved. Import "
            "a full NLM release (ehr medication-safety import-rxnorm) for a complete table."
        ),
        "counts": dict(sorted(report.concepts.items())),
        "ndc": len(derived.ndc),
    }
    report.sizes = write_table(out_dir, concepts, derived.ndc, release)
    return report
