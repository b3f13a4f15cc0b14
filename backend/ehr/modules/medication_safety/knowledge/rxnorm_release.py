"""Import an operator's full RxNorm table from NLM's ``RxNorm_full_prescribe_*.zip``.

``RXNCONSO.RRF``, ``RXNREL.RRF`` and ``RXNSAT.RRF`` are streamed from the zip (hostile archives
refused: unsafe paths, members or ratios over the caps, over-long lines); the table is written
with :func:`~.rxnorm_files.write_table` into ``settings.medication_safety.rxnorm_dir``, which
:func:`~.loading.load_resolver` then prefers to the shipped table.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from ehr.modules.medication_safety.knowledge.rxnorm_files import (
    NDC11,
    RXCUI,
    TABLE_FORMAT,
    ConceptRow,
    RxNormImportError,
    sorted_ids,
    write_table,
)
from ehr.modules.medication_safety.knowledge.rxnorm_table import TTYS

__all__ = [
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_RATIO",
    "ImportReport",
    "ProgressCallback",
    "import_rrf_zip",
]

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
            if not RXCUI.match(rxcui) or "\t" in name or not name:
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
            if not NDC11.match(atv):
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
        rxcui: ConceptRow(rxcui, concepts[rxcui][0], concepts[rxcui][1], sorted_ids(found))
        for rxcui, found in ingredients.items()
        if found
    }
