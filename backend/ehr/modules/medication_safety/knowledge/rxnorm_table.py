"""Code normalisation: any RxCUI (IN, PIN, MIN, SCDC, SCD, SBD, GPCK, BPCK) or NDC → ingredients.

Contract (implemented by the RxNorm table work; the engine depends only on this surface):

- ``RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"``,
  ``NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"``.
- ``CodeResolver.resolve(system, code) -> Resolution | None``: ``None`` = unknown code
  (the caller reports it as unresolved).
- ``Resolution``: ``rxcui`` (the concept the code resolved to), ``tty``, ``name``,
  ``ingredients`` (frozenset of IN RxCUIs), ``route`` (a ``RouteCategory`` parsed from the
  dose form in the name, or ``None`` when the concept carries no dose form, e.g. IN/PIN/MIN).
- ``load_resolver() -> CodeResolver`` (:mod:`.loading`): the shipped compact table (cached; cheap
  to call).

Implementation
- :class:`RxNormTable` holds two dicts built once: RxCUI → :class:`Resolution` and 11-digit NDC →
  the same :class:`Resolution` object. ``resolve`` is one dict lookup (plus NDC reformatting).
- The table is two gzip TSV files (``concepts.tsv.gz``: rxcui, tty, name, ingredient_rxcuis;
  ``ndc.tsv.gz``: ndc11, rxcui) written by :mod:`.rxnorm_files` (``ehr medication-safety
  build-rxnorm-table`` for the shipped table, ``ehr medication-safety import-rxnorm`` for an
  operator's full NLM release). :func:`~.loading.load_resolver` prefers the operator table in
  ``settings.medication_safety.rxnorm_dir`` when that directory holds one.
- NDC input forms: 11 digits (``00093111310``), hyphenated 5-4-2 (``00093-1113-10``) and the
  hyphenated 10-digit forms 4-4-2 / 5-3-2 / 5-4-1, normalised to 5-4-2 by zero-padding the short
  segment (the HIPAA 11-digit form RxNorm stores). **An unhyphenated 10-digit NDC is refused**
  (``None``): it has three possible 11-digit readings, and a reading found in our table does not
  prove it is the right one (the shipped table is a subset, and RxNorm omits many NDCs), so
  resolving it could silently name the wrong drug. HL7 Terminology (THO) defines codes of
  ``http://hl7.org/fhir/sid/ndc`` as the 10-digit NDC *with* its hyphens; the 11-digit form is
  the one US claims and RxNorm use, so it is accepted too.
- Route: parsed from the RxNorm dose form at the end of the name
  (:func:`~.dose_forms.route_of`).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final, Protocol

from ehr.modules.medication_safety.knowledge.dose_forms import route_of
from ehr.modules.medication_safety.knowledge.sources import RouteCategory

__all__ = [
    "CONCEPTS_FILE",
    "CONCEPTS_HEADER",
    "NDC_FILE",
    "NDC_HEADER",
    "NDC_SYSTEM",
    "RELEASE_FILE",
    "RXNORM_SYSTEM",
    "TTYS",
    "CodeResolver",
    "Resolution",
    "RxNormTable",
    "TableFormatError",
    "normalise_ndc",
]

RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC_SYSTEM: Final = "http://hl7.org/fhir/sid/ndc"


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a medication code means for safety checking."""

    rxcui: str
    tty: str
    name: str
    ingredients: frozenset[str]
    route: RouteCategory | None


class CodeResolver(Protocol):
    def resolve(self, system: str, code: str) -> Resolution | None:
        """The ingredients behind ``code``; ``None`` when the code is unknown."""
        ...


CONCEPTS_FILE: Final = "concepts.tsv.gz"
NDC_FILE: Final = "ndc.tsv.gz"
RELEASE_FILE: Final = "release.json"
CONCEPTS_HEADER: Final = ("rxcui", "tty", "name", "ingredient_rxcuis")
NDC_HEADER: Final = ("ndc11", "rxcui")
# The term types a table may hold (and resolve).
TTYS: Final = frozenset({"IN", "PIN", "MIN", "SCDC", "SCD", "SBD", "GPCK", "BPCK"})


class TableFormatError(ValueError):
    """A table file is not in the format :mod:`.rxnorm_files` writes."""


# ---- NDC ------------------------------------------------------------------------------------


def normalise_ndc(code: str) -> str | None:
    """The 11-digit (5-4-2) NDC for ``code``, or ``None`` when it is not a form we accept.

    Accepted: 11 digits; hyphenated 5-4-2; hyphenated 10-digit 4-4-2 / 5-3-2 / 5-4-1 (the short
    segment is zero-padded on the left). Refused: unhyphenated 10 digits (ambiguous: see the
    module docstring), anything else.
    """
    text = code.strip()
    if not text.isascii():
        return None
    if "-" not in text:
        return text if len(text) == 11 and text.isdigit() else None
    parts = text.split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    labeler, product, package = parts
    match (len(labeler), len(product), len(package)):
        case (5, 4, 2):
            return labeler + product + package
        case (4, 4, 2):
            return "0" + labeler + product + package
        case (5, 3, 2):
            return labeler + "0" + product + package
        case (5, 4, 1):
            return labeler + product + "0" + package
        case _:
            return None


# ---- The table ------------------------------------------------------------------------------


def _rows(raw: bytes, header: tuple[str, ...], source: str) -> Iterator[list[str]]:
    lines = io.StringIO(raw.decode("utf-8"), newline="\n")
    first = lines.readline().rstrip("\n").split("\t")
    if tuple(first) != header:
        raise TableFormatError(f"{source}: header {first!r}, expected {list(header)!r}")
    for number, line in enumerate(lines, start=2):
        fields = line.rstrip("\n").split("\t")
        if len(fields) != len(header):
            raise TableFormatError(f"{source}:{number}: {len(fields)} fields")
        yield fields


class RxNormTable:
    """A :class:`CodeResolver` over an RxNorm table (RxCUI and NDC lookups, built once)."""

    __slots__ = ("_by_ndc", "_by_rxcui", "release")

    def __init__(
        self,
        concepts: Mapping[str, Resolution],
        ndc: Mapping[str, str],
        release: Mapping[str, object] | None = None,
    ) -> None:
        self._by_rxcui: dict[str, Resolution] = dict(concepts)
        self._by_ndc: dict[str, Resolution] = {}
        for ndc11, rxcui in ndc.items():
            resolution = self._by_rxcui.get(rxcui)
            if resolution is None:
                raise TableFormatError(f"NDC {ndc11} maps to {rxcui}, which is not in the table")
            self._by_ndc[ndc11] = resolution
        # What the table was built from (release.json), for provenance shown to users.
        self.release: Mapping[str, object] = dict(release or {})

    def resolve(self, system: str, code: str) -> Resolution | None:
        if system == RXNORM_SYSTEM:
            return self._by_rxcui.get(code.strip())
        if system == NDC_SYSTEM:
            ndc11 = normalise_ndc(code)
            return None if ndc11 is None else self._by_ndc.get(ndc11)
        return None

    def __len__(self) -> int:
        return len(self._by_rxcui)

    def __iter__(self) -> Iterator[Resolution]:
        """Every concept of the table (for checks and tooling; ``resolve`` is the fast path)."""
        return iter(self._by_rxcui.values())

    @property
    def ndc_count(self) -> int:
        return len(self._by_ndc)

    @classmethod
    def from_directory(cls, directory: Traversable | Path) -> RxNormTable:
        """Load ``concepts.tsv.gz`` + ``ndc.tsv.gz`` (+ optional ``release.json``)."""
        with directory.joinpath(CONCEPTS_FILE).open("rb") as handle:
            concepts_raw = gzip.decompress(handle.read())
        with directory.joinpath(NDC_FILE).open("rb") as handle:
            ndc_raw = gzip.decompress(handle.read())
        release_file = directory.joinpath(RELEASE_FILE)
        release: dict[str, object] = {}
        if release_file.is_file():
            loaded = json.loads(release_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                release = loaded
        return cls.from_rows(
            _rows(concepts_raw, CONCEPTS_HEADER, CONCEPTS_FILE),
            _rows(ndc_raw, NDC_HEADER, NDC_FILE),
            release,
        )

    @classmethod
    def from_rows(
        cls,
        concepts: Iterator[list[str]],
        ndc: Iterator[list[str]],
        release: Mapping[str, object] | None = None,
    ) -> RxNormTable:
        by_rxcui: dict[str, Resolution] = {}
        shared: dict[frozenset[str], frozenset[str]] = {}
        for rxcui, tty, name, ingredient_field in concepts:
            if tty not in TTYS:
                raise TableFormatError(f"{rxcui}: unexpected TTY {tty!r}")
            ingredients = frozenset(ingredient_field.split(",")) if ingredient_field else None
            if tty == "IN":
                ingredients = frozenset((rxcui,))
            if not ingredients:
                raise TableFormatError(f"{rxcui}: no ingredients")
            ingredients = shared.setdefault(ingredients, ingredients)
            by_rxcui[rxcui] = Resolution(rxcui, tty, name, ingredients, route_of(tty, name))
        return cls(by_rxcui, {ndc11: rxcui for ndc11, rxcui in ndc}, release)
