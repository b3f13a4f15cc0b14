"""Build the RxNorm tables that :mod:`normalisation` loads.

Two producers, one format (``concepts.tsv.gz``, ``ndc.tsv.gz``, ``release.json``; see
:func:`write_table`):

- :func:`build_subset`: the compact table shipped in the package (``data/rxnorm``), from the
  derived TSVs of the RxNorm Current Prescribable Content (``rxnorm_concepts.tsv``,
  ``rxnorm_ingredients.tsv``, ``rxnorm_ingredients_partial.tsv``, ``rxnorm_ndc.tsv``) plus the
  hand-verified ``data/rxnorm/supplement.tsv``, restricted to the knowledge base's ingredients.
- :func:`import_rrf_zip`: an operator's full table from NLM's ``RxNorm_full_prescribe_*.zip``
  (``RXNCONSO.RRF``, ``RXNREL.RRF``, ``RXNSAT.RRF``), streamed from the zip.

Both are deterministic: rows sorted (RxCUI numerically, NDC lexically), gzip with mtime 0 and no
file name, ``release.json`` with sorted keys and no timestamps.

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
import gzip
import hashlib
import io
import json
import os
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from ehr.modules.medication_safety.normalisation import (
    CONCEPTS_FILE,
    CONCEPTS_HEADER,
    NDC_FILE,
    NDC_HEADER,
    RELEASE_FILE,
    TTYS,
    pack_components,
)

__all__ = [
    "SUPPLEMENT_HEADER",
    "BuildReport",
    "ConceptRow",
    "ImportReport",
    "RxNormBuildError",
    "RxNormImportError",
    "build_subset",
    "import_rrf_zip",
    "ingredients_from_name",
    "kb_ingredients",
    "read_supplement",
    "select_scope",
    "write_table",
]

SUPPLEMENT_HEADER: Final = ("rxcui", "tty", "name", "ingredient_rxcuis", "ndc11s", "source")
_RXCUI = re.compile(r"^[0-9]{1,8}$")
_NDC11 = re.compile(r"^[0-9]{11}$")
TABLE_FORMAT: Final = 1


class RxNormBuildError(ValueError):
    """The inputs of the subset build are inconsistent (the message names the row)."""


class RxNormImportError(ValueError):
    """The NLM release cannot be imported (refused archive, missing file, bad row)."""


@dataclass(frozen=True, slots=True)
class ConceptRow:
    rxcui: str
    tty: str
    name: str
    ingredients: tuple[str, ...]  # IN RxCUIs, sorted numerically


def _sorted_ids(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ids), key=int))


# ---- Writing --------------------------------------------------------------------------------


def _gzip_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    # filename="" and mtime=0: the bytes depend on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(text.encode("utf-8"))
    return buffer.getvalue()


def _check_field(value: str, what: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise RxNormBuildError(f"{what}: tab or line break in {value!r}")
    return value


def _replace(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


def write_table(
    out_dir: Path,
    concepts: Iterable[ConceptRow],
    ndc: Mapping[str, str],
    release: Mapping[str, object],
) -> dict[str, int]:
    """Write the table files into ``out_dir`` (created if needed); returns their sizes in bytes."""
    rows = sorted(concepts, key=lambda row: int(row.rxcui))
    lines = ["\t".join(CONCEPTS_HEADER)]
    for row in rows:
        lines.append(
            "\t".join(
                (
                    row.rxcui,
                    row.tty,
                    _check_field(row.name, row.rxcui),
                    ",".join(row.ingredients),
                )
            )
        )
    concepts_data = _gzip_bytes("\n".join(lines) + "\n")
    ndc_lines = ["\t".join(NDC_HEADER)] + [f"{code}\t{ndc[code]}" for code in sorted(ndc)]
    ndc_data = _gzip_bytes("\n".join(ndc_lines) + "\n")
    release_data = (json.dumps(release, indent=2, sort_keys=True) + "\n").encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Concepts before NDCs: a reader between the two renames sees a superset of the NDCs' rxcuis
    # only when concepts grow; the server loads once at start-up, so this is a best effort.
    _replace(out_dir / CONCEPTS_FILE, concepts_data)
    _replace(out_dir / NDC_FILE, ndc_data)
    _replace(out_dir / RELEASE_FILE, release_data)
    return {
        CONCEPTS_FILE: len(concepts_data),
        NDC_FILE: len(ndc_data),
        RELEASE_FILE: len(release_data),
    }


# ---- Knowledge-base ingredients -------------------------------------------------------------

_RXCUI_KEYS: Final = frozenset({"rxcui", "a", "b"})


def _collect_rxcuis(node: object, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _RXCUI_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
                text = str(value)
                if _RXCUI.match(text):
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
        if not _RXCUI.match(rxcui) or rxcui in seen:
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
        if not ingredients or not all(_RXCUI.match(i) for i in ingredients):
            raise RxNormBuildError(f"{where}: ingredient_rxcuis {ingredient_field!r}")
        ndcs = tuple(n.strip() for n in ndc_field.split(",") if n.strip())
        if not all(_NDC11.match(n) for n in ndcs):
            raise RxNormBuildError(f"{where}: ndc11s must be 11 digits: {ndc_field!r}")
        if ndcs and tty not in {"SCD", "SBD", "GPCK", "BPCK"}:
            raise RxNormBuildError(f"{where}: only drugs and packs carry NDCs")
        rows.append(SupplementRow(rxcui, tty, name, _sorted_ids(ingredients), ndcs, source))
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
        return _sorted_ids(found)
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
                return _sorted_ids(ingredients)
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
        complete[rxcui] = _sorted_ids(ingredient_field.split(","))
    partial: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for rxcui, tty, known_field, _status, name in _read_tsv(
        source_dir / "rxnorm_ingredients_partial.tsv",
        ("rxcui", "tty", "known_ingredient_rxcuis", "status", "name"),
    ):
        partial[rxcui] = (tty, name, _sorted_ids(k for k in known_field.split(",") if k))

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
        kb_ingredients_without_concept=_sorted_ids(kb - present_ins),
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


# ---- Import of an NLM release (RRF in a zip) ------------------------------------------------

# Column positions (RxNorm technical documentation, section 12: RRF file formats).
# RXNCONSO: RXCUI LAT TS LUI STT SUI ISPREF RXAUI SAUI SCUI SDUI SAB TTY CODE STR SRL SUPPRESS CVF
_CONSO_COLUMNS: Final = 18
# RXNREL: RXCUI1 RXAUI1 STYPE1 REL RXCUI2 RXAUI2 STYPE2 RELA RUI SRUI SAB SL DIR RG SUPPRESS CVF
_REL_COLUMNS: Final = 16
# RXNSAT: RXCUI LUI SUI RXAUI STYPE CODE ATUI SATUI ATN SAB ATV SUPPRESS CVF
_SAT_COLUMNS: Final = 13

DEFAULT_MAX_MEMBER_BYTES: Final = 4 * 1024**3  # one RRF file, uncompressed
DEFAULT_MAX_RATIO: Final = 200  # uncompressed / compressed, for members over 1 MiB
_MAX_LINE: Final = 1 << 20

# Relationships (by RELA, either direction) and the TTY pair they link.
_LINKS: Final[Mapping[frozenset[str], str]] = {
    frozenset({"has_ingredient", "ingredient_of"}): "ingredient",  # SCDC — IN
    frozenset({"form_of", "has_form"}): "form",  # PIN — IN
    frozenset({"has_part", "part_of"}): "part",  # MIN — IN
    frozenset({"consists_of", "constitutes"}): "consists",  # SCD — SCDC
    frozenset({"tradename_of", "has_tradename"}): "tradename",  # SBD — SCD, BPCK — GPCK
    frozenset({"contains", "contained_in"}): "contains",  # pack — SCD/SBD
}
_RELA_KIND: Final = {rela: kind for pair, kind in _LINKS.items() for rela in pair}

ProgressCallback = Callable[[str, int, int], None]  # (file, bytes read, total bytes)


@dataclass
class ImportReport:
    concepts: Counter[str] = field(default_factory=Counter)
    ndc: int = 0
    without_ingredients: int = 0
    ndc_conflicts: int = 0
    sizes: dict[str, int] = field(default_factory=dict)


def _check_archive(
    archive: zipfile.ZipFile, max_member_bytes: int, max_ratio: int
) -> dict[str, zipfile.ZipInfo]:
    """Refuse hostile entries; return the three RRF members by base name."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        path = PurePosixPath(name)
        if (
            not name
            or "\\" in name
            or "\x00" in name
            or name.startswith("/")
            or re.match(r"^[A-Za-z]:", name)
            or ".." in path.parts
        ):
            raise RxNormImportError(f"refused: unsafe path in the archive: {name!r}")
        if info.is_dir():
            continue
        if info.file_size > max_member_bytes:
            raise RxNormImportError(
                f"refused: {name} would unpack to {info.file_size} bytes (cap {max_member_bytes})"
            )
        if info.file_size > 1 << 20 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise RxNormImportError(f"refused: {name} has a compression ratio above {max_ratio}")
        base = path.name.upper()
        if base in {"RXNCONSO.RRF", "RXNREL.RRF", "RXNSAT.RRF"}:
            if base in members:
                raise RxNormImportError(f"the archive holds {base} twice")
            members[base] = info
    missing = {"RXNCONSO.RRF", "RXNREL.RRF", "RXNSAT.RRF"} - set(members)
    if missing:
        raise RxNormImportError(f"not an RxNorm release: {', '.join(sorted(missing))} missing")
    return members


def _rrf_rows(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    columns: int,
    max_member_bytes: int,
    progress: ProgressCallback | None,
) -> Iterator[list[str]]:
    label = PurePosixPath(info.filename).name
    read = 0
    reported = 0
    with archive.open(info) as stream:
        while True:
            raw = stream.readline(_MAX_LINE)
            if not raw:
                break
            read += len(raw)
            if read > max_member_bytes:
                raise RxNormImportError(f"refused: {label} unpacks beyond {max_member_bytes} bytes")
            if not raw.endswith(b"\n") and len(raw) >= _MAX_LINE:
                raise RxNormImportError(f"{label}: a line longer than {_MAX_LINE} bytes")
            fields = raw.decode("utf-8").rstrip("\r\n").split("|")
            # Every RRF line ends with "|": one empty field after the last column.
            if len(fields) != columns + 1:
                raise RxNormImportError(
                    f"{label}: {len(fields) - 1} columns, expected {columns} (not RRF?)"
                )
            if progress is not None and read - reported >= 1 << 20:
                progress(label, read, info.file_size)
                reported = read
            yield fields
    if progress is not None:
        progress(label, read, info.file_size)


def import_rrf_zip(
    zip_path: Path,
    out_dir: Path,
    *,
    progress: ProgressCallback | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    max_ratio: int = DEFAULT_MAX_RATIO,
) -> ImportReport:
    """Import an NLM RxNorm release zip into ``out_dir`` (every prescribable concept of our TTYs).

    Reads SAB=RXNORM, SUPPRESS=N rows of RXNCONSO (concepts), RXNREL (links) and RXNSAT
    (ATN=NDC); ingredients: IN itself, PIN/MIN/SCDC via their IN links, SCD = union of its
    SCDCs, SBD = its SCD, packs = union of their contained drugs. NDCs claimed by two concepts
    are dropped (ambiguous).
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise RxNormImportError(f"{zip_path.name}: not a readable zip ({exc})") from None
    with archive:
        members = _check_archive(archive, max_member_bytes, max_ratio)

        concepts: dict[str, tuple[str, str]] = {}
        for fields in _rrf_rows(
            archive, members["RXNCONSO.RRF"], _CONSO_COLUMNS, max_member_bytes, progress
        ):
            rxcui, lat, sab, tty, name, suppress = (
                fields[0], fields[1], fields[11], fields[12], fields[14], fields[16],
            )  # fmt: skip
            if sab != "RXNORM" or suppress != "N" or tty not in TTYS or lat != "ENG":
                continue
            if not _RXCUI.match(rxcui) or "\t" in name or not name:
                raise RxNormImportError(f"RXNCONSO.RRF: bad row for {rxcui!r}")
            concepts.setdefault(rxcui, (tty, name))

        links: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for fields in _rrf_rows(
            archive, members["RXNREL.RRF"], _REL_COLUMNS, max_member_bytes, progress
        ):
            rxcui1, rxcui2, rela, sab, suppress = (
                fields[0], fields[4], fields[7], fields[10], fields[14],
            )  # fmt: skip
            kind = _RELA_KIND.get(rela)
            if kind is None or sab != "RXNORM" or suppress not in {"N", ""}:
                continue
            if rxcui1 in concepts and rxcui2 in concepts:
                # Both directions are stored; the TTYs, not the direction, say who is who.
                links[rxcui1][kind].add(rxcui2)
                links[rxcui2][kind].add(rxcui1)

        rows = _derive_ingredients(concepts, links)

        ndc_owner: dict[str, str] = {}
        conflicts: set[str] = set()
        for fields in _rrf_rows(
            archive, members["RXNSAT.RRF"], _SAT_COLUMNS, max_member_bytes, progress
        ):
            rxcui, atn, sab, atv, suppress = fields[0], fields[8], fields[9], fields[10], fields[11]
            if atn != "NDC" or sab != "RXNORM" or suppress != "N" or rxcui not in rows:
                continue
            if not _NDC11.match(atv):
                continue
            if ndc_owner.setdefault(atv, rxcui) != rxcui:
                conflicts.add(atv)
    for code in conflicts:
        del ndc_owner[code]

    report = ImportReport(
        concepts=Counter(row.tty for row in rows.values()),
        ndc=len(ndc_owner),
        without_ingredients=len(concepts) - len(rows),
        ndc_conflicts=len(conflicts),
    )
    release: dict[str, object] = {
        "format": TABLE_FORMAT,
        "kind": "full",
        "rxnorm_release": zip_path.name,
        "counts": dict(sorted(report.concepts.items())),
        "ndc": len(ndc_owner),
        "ndc_dropped_ambiguous": len(conflicts),
        "concepts_without_ingredients": report.without_ingredients,
    }
    report.sizes = write_table(out_dir, rows.values(), ndc_owner, release)
    return report


def _derive_ingredients(
    concepts: Mapping[str, tuple[str, str]], links: Mapping[str, Mapping[str, set[str]]]
) -> dict[str, ConceptRow]:
    def tty(rxcui: str) -> str:
        return concepts[rxcui][0]

    def linked(rxcui: str, kind: str, *ttys: str) -> set[str]:
        return {other for other in links.get(rxcui, {}).get(kind, ()) if tty(other) in ttys}

    ingredients: dict[str, set[str]] = {}
    for rxcui, (kind, _name) in concepts.items():
        if kind == "IN":
            ingredients[rxcui] = {rxcui}
        elif kind == "PIN":
            ingredients[rxcui] = linked(rxcui, "form", "IN")
        elif kind == "MIN":
            ingredients[rxcui] = linked(rxcui, "part", "IN")
        elif kind == "SCDC":
            ingredients[rxcui] = linked(rxcui, "ingredient", "IN")
    for rxcui, (kind, _name) in concepts.items():
        if kind == "SCD":
            parts = linked(rxcui, "consists", "SCDC")
            found = set().union(*(ingredients[p] for p in parts)) if parts else set()
            # An SCDC without an IN link makes the SCD incomplete: leave it out.
            ingredients[rxcui] = found if all(ingredients[p] for p in parts) else set()
    for rxcui, (kind, _name) in concepts.items():
        if kind == "SBD":
            generic = linked(rxcui, "tradename", "SCD")
            ingredients[rxcui] = (
                set(ingredients[next(iter(generic))]) if len(generic) == 1 else set()
            )
    for pack in ("GPCK", "BPCK"):  # a BPCK may fall back to its GPCK: GPCKs first
        for rxcui, (kind, _name) in concepts.items():
            if kind != pack:
                continue
            drugs = linked(rxcui, "contains", "SCD", "SBD")
            found = set()
            if drugs and all(ingredients[d] for d in drugs):
                found = set().union(*(ingredients[d] for d in drugs))
            elif kind == "BPCK":
                generic = linked(rxcui, "tradename", "GPCK")
                if len(generic) == 1:
                    found = set(ingredients.get(next(iter(generic)), set()))
            ingredients[rxcui] = found
    return {
        rxcui: ConceptRow(rxcui, concepts[rxcui][0], concepts[rxcui][1], _sorted_ids(found))
        for rxcui, found in ingredients.items()
        if found
    }
