"""Code normalisation: any RxCUI (IN, PIN, MIN, SCDC, SCD, SBD, GPCK, BPCK) or NDC → ingredients.

Contract (implemented by the RxNorm table work; the engine depends only on this surface):

- ``RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"``,
  ``NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"``.
- ``CodeResolver.resolve(system, code) -> Resolution | None``: ``None`` = unknown code
  (the caller reports it as unresolved).
- ``Resolution``: ``rxcui`` (the concept the code resolved to), ``tty``, ``name``,
  ``ingredients`` (frozenset of IN RxCUIs), ``route`` (a ``RouteCategory`` parsed from the
  dose form in the name, or ``None`` when the concept carries no dose form, e.g. IN/PIN/MIN).
- ``load_resolver() -> CodeResolver``: the shipped compact table (cached; cheap to call).

Implementation
- :class:`RxNormTable` holds two dicts built once: RxCUI → :class:`Resolution` and 11-digit NDC →
  the same :class:`Resolution` object. ``resolve`` is one dict lookup (plus NDC reformatting).
- The table is two gzip TSV files (``concepts.tsv.gz``: rxcui, tty, name, ingredient_rxcuis;
  ``ndc.tsv.gz``: ndc11, rxcui) written by ``rxnorm_import`` (``ehr medication-safety
  build-rxnorm-subset`` for the shipped subset, ``ehr medication-safety import-rxnorm`` for an
  operator's full NLM release). :func:`load_resolver` prefers the operator table in
  ``settings.medication_safety.rxnorm_dir`` when that directory holds one.
- NDC input forms: 11 digits (``00093111310``), hyphenated 5-4-2 (``00093-1113-10``) and the
  hyphenated 10-digit forms 4-4-2 / 5-3-2 / 5-4-1, normalised to 5-4-2 by zero-padding the short
  segment (the HIPAA 11-digit form RxNorm stores). **An unhyphenated 10-digit NDC is refused**
  (``None``): it has three possible 11-digit readings, and a reading found in our table does not
  prove it is the right one (the shipped table is a subset, and RxNorm omits many NDCs), so
  resolving it could silently name the wrong drug. HL7 Terminology (THO) defines codes of
  ``http://hl7.org/fhir/sid/ndc`` as the 10-digit NDC *with* its hyphens; the 11-digit form is
  the one US claims and RxNorm use, so it is accepted too.
- Route: parsed from the RxNorm dose form at the end of the name (see :func:`route_of`). When in
  doubt between a local and a systemic reading the route is ``systemic`` (systemic rules then
  fire); an unrecognised dose form gives ``None`` (the engine treats an unknown route as matching).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final, Protocol

import structlog

from ehr.modules.medication_safety.kb_sources import RouteCategory

__all__ = [
    "CONCEPTS_FILE",
    "NDC_FILE",
    "NDC_SYSTEM",
    "RELEASE_FILE",
    "RXNORM_SYSTEM",
    "TTYS",
    "CodeResolver",
    "Resolution",
    "RxNormTable",
    "TableFormatError",
    "load_resolver",
    "normalise_ndc",
    "pack_components",
    "route_of",
    "shipped_table_dir",
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


# --------------------------------------------------------------------------------------------
# Implementation
# --------------------------------------------------------------------------------------------

_log = structlog.get_logger(__name__)

CONCEPTS_FILE: Final = "concepts.tsv.gz"
NDC_FILE: Final = "ndc.tsv.gz"
RELEASE_FILE: Final = "release.json"
CONCEPTS_HEADER: Final = ("rxcui", "tty", "name", "ingredient_rxcuis")
NDC_HEADER: Final = ("ndc11", "rxcui")
# The term types a table may hold (and resolve).
TTYS: Final = frozenset({"IN", "PIN", "MIN", "SCDC", "SCD", "SBD", "GPCK", "BPCK"})
_NO_DOSE_FORM: Final = frozenset({"IN", "PIN", "MIN", "SCDC"})
_PACKS: Final = frozenset({"GPCK", "BPCK"})


class TableFormatError(ValueError):
    """A table file is not in the format ``rxnorm_import`` writes."""


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


# ---- Route ----------------------------------------------------------------------------------

_S = RouteCategory.SYSTEMIC
_T = RouteCategory.TOPICAL
_E = RouteCategory.OPHTHALMIC
_O = RouteCategory.OTIC
_N = RouteCategory.NASAL
_I = RouteCategory.INHALED
_V = RouteCategory.VAGINAL
_R = RouteCategory.RECTAL_LOCAL

# RxNorm dose forms (lower case, as they end an SCD/SBD name) → route category. The choices that
# are not obvious, all towards "systemic" when part of the dose is absorbed or the form is used
# for systemically acting drugs (so systemic rules keep firing):
# - oral-cavity forms that are swallowed or absorbed (oral gel/paste/spray, lozenges, buccal,
#   sublingual, chewing gum): systemic (miconazole oral gel, fentanyl lozenge, nicotine gum);
#   mouthwash and toothpaste: topical;
# - rectal suppository and rectal gel (diazepam): systemic; rectal cream/foam/ointment/enema/
#   solution/spray: rectal-local;
# - vaginal system (rings: ethinyl estradiol/etonogestrel, estradiol acetate) and intrauterine
#   system: systemic; other vaginal forms: vaginal;
# - gas for inhalation (nitrous oxide, oxygen, anaesthetic gases): systemic; other inhalation
#   forms and inhalers: inhaled; nasal inhalant: nasal;
# - medicated patch (lidocaine, diclofenac epolamine, capsaicin): topical; transdermal system:
#   systemic;
# - intravesical, intraperitoneal, intratracheal, irrigation into body cavities, implants,
#   injections of any kind: systemic (irrigation solution: topical).
_DOSE_FORMS: Final[Mapping[str, RouteCategory]] = {
    # oral and other enteral
    "oral tablet": _S,
    "oral capsule": _S,
    "oral solution": _S,
    "oral suspension": _S,
    "oral granules": _S,
    "oral powder": _S,
    "oral pellet": _S,
    "oral film": _S,
    "oral wafer": _S,
    "oral lozenge": _S,
    "oral gel": _S,
    "oral paste": _S,
    "oral cream": _S,
    "oral ointment": _S,
    "oral foam": _S,
    "oral spray": _S,
    "oral strip": _S,
    "oral emulsion": _S,
    "oral liquid": _S,
    "oral syrup": _S,
    "oral elixir": _S,
    "oral tincture": _S,
    "oral product": _S,
    "oral flakes": _S,
    "chewable tablet": _S,
    "chewable bar": _S,
    "chewing gum": _S,
    "buccal film": _S,
    "buccal tablet": _S,
    "sublingual tablet": _S,
    "sublingual film": _S,
    "sublingual powder": _S,
    "sublingual spray": _S,
    "disintegrating oral tablet": _S,
    "effervescent oral tablet": _S,
    "extended release oral tablet": _S,
    "extended release oral capsule": _S,
    "extended release suspension": _S,
    "extended release oral suspension": _S,
    "chewable extended release oral tablet": _S,
    "delayed release oral tablet": _S,
    "delayed release oral capsule": _S,
    "delayed release oral granules": _S,
    "granules for oral solution": _S,
    "granules for oral suspension": _S,
    "powder for oral solution": _S,
    "powder for oral suspension": _S,
    "tablet for oral suspension": _S,
    "mucosal spray": _S,
    # parenteral, implants, other systemic
    "injection": _S,
    "injectable solution": _S,
    "injectable suspension": _S,
    "injectable foam": _S,
    "extended release injectable suspension": _S,
    "injectable product": _S,
    "prefilled syringe": _S,
    "pen injector": _S,
    "auto-injector": _S,
    "cartridge": _S,
    "jet injector": _S,
    "drug implant": _S,
    "transdermal system": _S,
    "rectal suppository": _S,
    "rectal gel": _S,
    "vaginal system": _S,
    "intrauterine system": _S,
    "gas for inhalation": _S,
    "intraperitoneal solution": _S,
    "intravesical solution": _S,
    "intravesical suspension": _S,
    "powder for intravesical solution": _S,
    "powder for intravesical suspension": _S,
    "powder for pyelocalyceal solution": _S,
    "intratracheal suspension": _S,
    # topical (skin and mouth rinses)
    "topical cream": _T,
    "topical gel": _T,
    "topical solution": _T,
    "topical lotion": _T,
    "topical ointment": _T,
    "topical foam": _T,
    "topical spray": _T,
    "topical powder": _T,
    "topical oil": _T,
    "topical suspension": _T,
    "topical liquefied gas": _T,
    "topical emulsion": _T,
    "topical stick": _T,
    "topical swab": _T,
    "topical shampoo": _T,
    "mucous membrane topical solution": _T,
    "medicated patch": _T,
    "medicated pad": _T,
    "medicated shampoo": _T,
    "medicated bar soap": _T,
    "medicated liquid soap": _T,
    "medicated tape": _T,
    "medicated nail polish": _T,
    "powder spray": _T,
    "paste": _T,
    "mouthwash": _T,
    "toothpaste": _T,
    "irrigation solution": _T,
    # eye, ear, nose, lung
    "ophthalmic solution": _E,
    "ophthalmic suspension": _E,
    "ophthalmic gel": _E,
    "ophthalmic ointment": _E,
    "ophthalmic spray": _E,
    "ophthalmic irrigation solution": _E,
    "ophthalmic insert": _E,
    "ophthalmic emulsion": _E,
    "otic solution": _O,
    "otic suspension": _O,
    "otic ointment": _O,
    "nasal spray": _N,
    "metered dose nasal spray": _N,
    "nasal solution": _N,
    "nasal gel": _N,
    "nasal ointment": _N,
    "nasal powder": _N,
    "nasal inhalant": _N,
    "powder for nasal solution": _N,
    "inhalation powder": _I,
    "inhalation solution": _I,
    "inhalation spray": _I,
    "inhalation suspension": _I,
    "inhalant solution": _I,
    "metered dose inhaler": _I,
    "dry powder inhaler": _I,
    # vaginal, rectal
    "vaginal cream": _V,
    "vaginal gel": _V,
    "vaginal insert": _V,
    "vaginal ointment": _V,
    "vaginal film": _V,
    "vaginal foam": _V,
    "vaginal suppository": _V,
    "vaginal tablet": _V,
    "vaginal ring": _S,
    "douche": _V,
    "rectal cream": _R,
    "rectal foam": _R,
    "rectal ointment": _R,
    "rectal solution": _R,
    "rectal spray": _R,
    "rectal suspension": _R,
    "enema": _R,
}
_LONGEST_DOSE_FORM: Final = max(len(form.split()) for form in _DOSE_FORMS)

# Fallback for a dose form missing above (a newer RxNorm release): the first keyword that starts
# one of the last four words wins ("otic" must not match "exotic").
_KEYWORDS: Final[tuple[tuple[str, RouteCategory], ...]] = (
    ("ophthalmic", _E),
    ("otic", _O),
    ("transdermal", _S),
    ("inject", _S),
    ("syringe", _S),
    ("vaginal", _V),
    ("nasal", _N),
    ("inhal", _I),
    ("suppository", _S),
    ("rectal", _R),
    ("enema", _R),
    ("topical", _T),
    ("cutaneous", _T),
    ("shampoo", _T),
    ("soap", _T),
    ("oral", _S),
    ("sublingual", _S),
    ("buccal", _S),
    ("tablet", _S),
    ("capsule", _S),
)
_BRAND: Final = re.compile(r"\s*\[[^\[\]]*\]\s*$")
_PACK_QUANTITY: Final = re.compile(r"^[0-9][0-9.]* [A-Z]+$")


def _dose_form_route(name: str) -> RouteCategory | None:
    """The route of a clinical/branded drug name (``... Oral Tablet [Brand]``)."""
    words = _BRAND.sub("", name).lower().split()
    for size in range(min(_LONGEST_DOSE_FORM, len(words)), 0, -1):
        route = _DOSE_FORMS.get(" ".join(words[-size:]))
        if route is not None:
            return route
    tail = words[-4:]
    for keyword, route in _KEYWORDS:
        if any(word.startswith(keyword) for word in tail):
            return route
    return None


def pack_components(name: str) -> list[str]:
    """The drug names inside a pack name ``{n (drug) / m (drug) } Pack [Brand]``."""
    start, end = name.find("{"), name.rfind("}")
    if start < 0 or end < start:
        return []
    components: list[str] = []
    depth = 0
    begin = 0
    for index in range(start + 1, end):
        char = name[index]
        if char == "(":
            depth += 1
            if depth == 1:
                begin = index + 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                component = name[begin:index].strip()
                if not _PACK_QUANTITY.match(component):  # "1 (118 ML) (drug)": a size, not a drug
                    components.append(component)
            elif depth < 0:
                return []
    return components if depth == 0 else []


def route_of(tty: str, name: str) -> RouteCategory | None:
    """The route category of a concept, parsed from the dose form in its name.

    IN/PIN/MIN/SCDC carry no dose form → ``None``. A pack is ``systemic`` when any component
    is; otherwise the components' common route, or ``None`` when they differ or are unknown.
    """
    if tty in _NO_DOSE_FORM:
        return None
    if tty in _PACKS:
        routes = {_dose_form_route(component) for component in pack_components(name)}
        if _S in routes:
            return _S
        if len(routes) == 1:
            return routes.pop()
        return None
    return _dose_form_route(name)


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


def shipped_table_dir() -> Traversable:
    """The compact table shipped in the package (``data/rxnorm``)."""
    return files("ehr.modules.medication_safety").joinpath("data", "rxnorm")


@functools.cache
def load_resolver() -> RxNormTable:
    """The operator's imported table when configured and present, else the shipped subset.

    Loaded once per process (``functools.cache``); later calls are free.
    """
    from ehr.core.config import get_settings  # settings are read once, on first use

    configured = get_settings().medication_safety.rxnorm_dir
    if configured is not None:
        if configured.joinpath(CONCEPTS_FILE).is_file():
            table = RxNormTable.from_directory(configured)
            _log.info("medication_safety.rxnorm.loaded", source="operator", concepts=len(table))
            return table
        _log.warning("medication_safety.rxnorm.operator_table_missing", fallback="shipped")
    table = RxNormTable.from_directory(shipped_table_dir())
    _log.info("medication_safety.rxnorm.loaded", source="shipped", concepts=len(table))
    return table
