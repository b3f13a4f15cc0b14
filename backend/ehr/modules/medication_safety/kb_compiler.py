"""The knowledge-base compiler: ``data/sources/*.yaml`` → one immutable runtime index.

Steps (all deterministic — the same sources give the same :class:`KnowledgeBase`, byte for byte):

1. **Load** every ``*.yaml`` under the sources directory (sorted by file name) with
   PyYAML's safe loader and validate each as a :class:`~.kb_sources.KnowledgeFile`.
2. **Merge and cross-check**: ids are unique across files (citations, classes, allergen groups,
   duplicate classes; rule ids across interactions, cross-sensitivities, the rule ids derived from
   duplicate classes and the engine's built-in rule ids); every referenced citation, class and
   allergen group exists; one RxCUI has one name everywhere and one name one RxCUI; no member is
   listed twice in a list; member overrides name a member of the rule; near misses do not match
   their own rule; a rule's sides are not one and the same ingredient; a duplicate class has at
   least ``allowance + 2`` members. Every problem is reported (file + offending id), not only
   the first.
3. **Compile** to plain frozen dataclasses and dicts (no pydantic on the hot path):
   ``pair_index[(x, y)]`` → the interaction hits for ingredient ``x`` in one medication and ``y``
   in the other (both orders are keys; member overrides are already applied per pair; route
   qualifiers are carried per side); ``memberships[x]`` → the (rule, side) pairs ``x`` belongs to;
   allergen-group, SNOMED-code and cross-sensitivity indexes; duplicate-class membership.

Version: ``<release>+<first 12 hex of sha256>`` where ``release`` is the ``release:`` of the one
source file that sets it (``0.0.0`` when none does) and the hash covers the canonical JSON of the
merged, id-sorted content (comments, formatting and the split into files do not change it).
Provenance: each source file with the sha256 of its bytes, and every citation.

``load_knowledge_base()`` compiles the shipped sources once (cached); ``compile_knowledge(dir)``
compiles any directory (tests).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import ValidationError

from ehr.core.errors import AppError
from ehr.modules.medication_safety.kb_sources import (
    CrossSensitivityLevel,
    Display,
    KnowledgeFile,
    Member,
    RouteCategory,
    RuleSide,
    Severity,
)

__all__ = [
    "BUILTIN_RULE_IDS",
    "DEFAULT_RELEASE",
    "DISPLAY_RANK",
    "LEVEL_RANK",
    "RULE_ALLERGY_SAME_GROUP",
    "RULE_ALLERGY_SAME_INGREDIENT",
    "RULE_DUPLICATE_INGREDIENT",
    "SEVERITY_RANK",
    "SOURCES_DIR",
    "CitationRef",
    "CompileProblem",
    "CompiledAllergenGroup",
    "CompiledClass",
    "CompiledCrossSensitivity",
    "CompiledDuplicateClass",
    "CompiledInteraction",
    "CompiledOverride",
    "CompiledSide",
    "Ingredient",
    "KnowledgeBase",
    "KnowledgeBaseInvalid",
    "Membership",
    "NearMissPair",
    "PairHit",
    "SourceFile",
    "compile_knowledge",
    "duplicate_rule_id",
    "load_knowledge_base",
]

SOURCES_DIR: Final = Path(__file__).resolve().parent / "data" / "sources"
DEFAULT_RELEASE: Final = "0.0.0"

# The engine's own rules (not in the sources); reserved so a source rule cannot take their ids.
RULE_ALLERGY_SAME_INGREDIENT: Final = "ALG-SAME-INGREDIENT"
RULE_ALLERGY_SAME_GROUP: Final = "ALG-SAME-GROUP"
RULE_DUPLICATE_INGREDIENT: Final = "DUP-SAME-INGREDIENT"
BUILTIN_RULE_IDS: Final = frozenset(
    {RULE_ALLERGY_SAME_INGREDIENT, RULE_ALLERGY_SAME_GROUP, RULE_DUPLICATE_INGREDIENT}
)

# Lower = more severe / more intrusive / stronger.
SEVERITY_RANK: Final[Mapping[Severity, int]] = {
    Severity.CONTRAINDICATED: 0,
    Severity.MAJOR: 1,
    Severity.MODERATE: 2,
    Severity.MINOR: 3,
}
DISPLAY_RANK: Final[Mapping[Display, int]] = {
    Display.INTERRUPTIVE: 0,
    Display.PASSIVE: 1,
    Display.INFORMATIONAL: 2,
}
LEVEL_RANK: Final[Mapping[CrossSensitivityLevel, int]] = {
    CrossSensitivityLevel.ALERT: 0,
    CrossSensitivityLevel.INFO: 1,
    CrossSensitivityLevel.NONE: 2,
}

# libyaml's safe loader when PyYAML was built with it (~10x faster), else the pure-Python one.
_SAFE_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_SECTIONS: Final = (
    "citations",
    "classes",
    "interactions",
    "allergen_groups",
    "cross_sensitivities",
    "duplicate_classes",
)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class CompileProblem:
    """One thing wrong with the sources: the file, the offending entry id (if any), what."""

    file: str
    entry_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry_id}" if self.entry_id else self.file
        return f"{where}: {self.message}"


class KnowledgeBaseInvalid(AppError):  # noqa: N818 - the domain's words, like ehr.core.errors
    """The knowledge-base sources do not compile (a deployment defect, never a caller's)."""

    status_code = 500
    code = "medication_knowledge_invalid"
    title = "The medication-safety knowledge base is invalid"

    def __init__(self, problems: Iterable[CompileProblem]) -> None:
        self.problems: tuple[CompileProblem, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the knowledge base:\n{lines}")


# --------------------------------------------------------------------------- runtime form


@dataclass(frozen=True, slots=True)
class CitationRef:
    id: str
    text: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Ingredient:
    rxcui: str
    name: str


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class CompiledClass:
    id: str
    label: str
    members: tuple[Ingredient, ...]
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledSide:
    """One side of an interaction rule: a class or a single ingredient."""

    label: str
    class_id: str | None
    members: tuple[Ingredient, ...]  # source order (a class's members, or the one ingredient)
    member_ids: frozenset[str]
    routes: frozenset[RouteCategory] | None  # None = any route


@dataclass(frozen=True, slots=True)
class CompiledOverride:
    rxcui: str
    severity: Severity
    display: Display
    note: str


@dataclass(frozen=True, slots=True)
class NearMissPair:
    a: str
    b: str
    why: str


@dataclass(frozen=True, slots=True)
class CompiledInteraction:
    id: str
    a: CompiledSide
    b: CompiledSide
    severity: Severity
    display: Display
    mechanism: str
    consequence: str
    management: str
    citations: tuple[CitationRef, ...]
    source_list: str
    overrides: tuple[CompiledOverride, ...]
    near_misses: tuple[NearMissPair, ...]

    def override_for(self, rxcui: str) -> CompiledOverride | None:
        for override in self.overrides:
            if override.rxcui == rxcui:
                return override
        return None


@dataclass(frozen=True, slots=True)
class PairHit:
    """Rule ``rule`` for the key ``(first, second)`` of :attr:`KnowledgeBase.pair_index`.

    ``first_side`` is the rule side the key's first ingredient is on; ``first_routes`` /
    ``second_routes`` are the route qualifiers of the medications carrying the first / second
    ingredient. ``severity``/``display`` already include the member override (``override``).
    """

    rule: CompiledInteraction
    first_side: Literal["a", "b"]
    first_routes: frozenset[RouteCategory] | None
    second_routes: frozenset[RouteCategory] | None
    severity: Severity
    display: Display
    override: CompiledOverride | None


@dataclass(frozen=True, slots=True)
class Membership:
    rule_id: str
    side: Literal["a", "b"]


@dataclass(frozen=True, slots=True)
class CompiledAllergenGroup:
    id: str
    label: str
    members: tuple[Ingredient, ...]
    member_ids: frozenset[str]
    snomed_codes: tuple[str, ...]
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledCrossSensitivity:
    id: str
    from_group: str
    from_label: str
    to_group: str | None
    target_label: str
    targets: tuple[Ingredient, ...]
    target_ids: frozenset[str]
    level: CrossSensitivityLevel
    rationale: str
    management: str
    citations: tuple[CitationRef, ...]


@dataclass(frozen=True, slots=True)
class CompiledDuplicateClass:
    id: str
    rule_id: str
    label: str
    members: tuple[Ingredient, ...]
    member_ids: frozenset[str]
    members_of: str | None
    allowance: int
    severity: Severity
    display: Display
    management: str
    citations: tuple[CitationRef, ...]
    routes: frozenset[RouteCategory] | None


@dataclass(frozen=True, slots=True, eq=False)
class KnowledgeBase:
    """The compiled knowledge base. Treat every mapping as read-only."""

    version: str
    release: str
    content_hash: str
    sources: tuple[SourceFile, ...]
    citations: Mapping[str, CitationRef]
    ingredients: Mapping[str, str]  # rxcui -> name, every ingredient the sources name
    classes: Mapping[str, CompiledClass]
    interactions: Mapping[str, CompiledInteraction]
    memberships: Mapping[str, tuple[Membership, ...]]
    pair_index: Mapping[tuple[str, str], tuple[PairHit, ...]]
    allergen_groups: Mapping[str, CompiledAllergenGroup]
    ingredient_allergen_groups: Mapping[str, tuple[str, ...]]
    snomed_allergen_groups: Mapping[str, tuple[str, ...]]
    cross_sensitivities: Mapping[str, CompiledCrossSensitivity]
    # (allergen group of the allergy, ingredient of the drug) -> strongest first, then by id
    cross_sensitivity_index: Mapping[tuple[str, str], tuple[CompiledCrossSensitivity, ...]]
    duplicate_classes: Mapping[str, CompiledDuplicateClass]
    ingredient_duplicate_classes: Mapping[str, tuple[CompiledDuplicateClass, ...]]

    def provenance(self) -> dict[str, Any]:
        """JSON-ready: version, source files with hashes, rule counts, citations."""
        return {
            "version": self.version,
            "release": self.release,
            "content_hash": self.content_hash,
            "sources": [{"file": s.name, "sha256": s.sha256} for s in self.sources],
            "counts": {
                "interactions": len(self.interactions),
                "classes": len(self.classes),
                "allergen_groups": len(self.allergen_groups),
                "cross_sensitivities": len(self.cross_sensitivities),
                "duplicate_classes": len(self.duplicate_classes),
                "ingredients": len(self.ingredients),
            },
            "citations": [
                {"id": c.id, "text": c.text, "url": c.url} for c in self.citations.values()
            ],
        }


def duplicate_rule_id(duplicate_class_id: str) -> str:
    """``ehr:dup/ace-inhibitors`` → ``DUP-ACE-INHIBITORS`` (the rule id its issues carry)."""
    return "DUP-" + duplicate_class_id.split("/", 1)[1].upper()


# --------------------------------------------------------------------------- loading


@dataclass(slots=True)
class _Loaded:
    """The validated files, each entry tagged with the file it came from."""

    files: list[tuple[str, KnowledgeFile]] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    problems: list[CompileProblem] = field(default_factory=list)

    def entries(self, section: str) -> list[tuple[str, Any]]:
        return [(name, e) for name, kf in self.files for e in getattr(kf, section)]


def _entry_id(raw: Any, loc: tuple[int | str, ...]) -> str | None:
    """The ``id`` of the raw entry an error location points into (``section[i]...``)."""
    if len(loc) >= 2 and isinstance(raw, dict) and isinstance(loc[1], int):
        section = raw.get(loc[0])
        if isinstance(section, list) and loc[1] < len(section):
            entry = section[loc[1]]
            if isinstance(entry, dict) and entry.get("id") is not None:
                return str(entry["id"])
            return f"{loc[0]}[{loc[1]}]"
    return None


def _load(sources_dir: Path) -> _Loaded:
    loaded = _Loaded()
    paths = sorted(sources_dir.glob("*.yaml"))
    if not paths:
        loaded.problems.append(CompileProblem(str(sources_dir), None, "no *.yaml source files"))
    for path in paths:
        data = path.read_bytes()
        loaded.sources.append(SourceFile(path.name, hashlib.sha256(data).hexdigest()))
        try:
            raw = yaml.load(data.decode("utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - safe loader
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            loaded.problems.append(CompileProblem(path.name, None, f"not valid YAML: {exc}"))
            continue
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            loaded.problems.append(CompileProblem(path.name, None, "top level is not a mapping"))
            continue
        if isinstance(raw.get("release"), datetime.date):  # an unquoted ISO date in YAML
            raw["release"] = raw["release"].isoformat()
        try:
            loaded.files.append((path.name, KnowledgeFile.model_validate(raw)))
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                message = f"{'.'.join(str(p) for p in loc)}: {error['msg']}"
                if error["type"] == "string_type" and isinstance(error.get("input"), int):
                    message += ' (quote codes and RxCUIs in YAML, e.g. rxcui: "11289")'
                loaded.problems.append(CompileProblem(path.name, _entry_id(raw, loc), message))
    return loaded


# --------------------------------------------------------------------------- cross-checks


def _check_unique(
    namespace: str, items: Iterable[tuple[str, str]], problems: list[CompileProblem]
) -> None:
    seen: dict[str, str] = {}
    for file, entry_id in items:
        if entry_id in seen:
            problems.append(
                CompileProblem(
                    file, entry_id, f"duplicate {namespace} id (also defined in {seen[entry_id]})"
                )
            )
        else:
            seen[entry_id] = file


def _cross_check(loaded: _Loaded) -> list[CompileProblem]:
    problems: list[CompileProblem] = []
    citations = loaded.entries("citations")
    classes = loaded.entries("classes")
    interactions = loaded.entries("interactions")
    groups = loaded.entries("allergen_groups")
    crosses = loaded.entries("cross_sensitivities")
    dups = loaded.entries("duplicate_classes")

    releases = sorted({kf.release for _, kf in loaded.files if kf.release is not None})
    if len(releases) > 1:
        setters = [name for name, kf in loaded.files if kf.release is not None]
        problems.append(
            CompileProblem(", ".join(setters), None, f"conflicting release labels {releases}")
        )

    _check_unique("citation", ((f, c.id) for f, c in citations), problems)
    _check_unique("class", ((f, c.id) for f, c in classes), problems)
    _check_unique("allergen group", ((f, g.id) for f, g in groups), problems)
    _check_unique("duplicate class", ((f, d.id) for f, d in dups), problems)
    rule_ids = [("(engine built-in)", r) for r in sorted(BUILTIN_RULE_IDS)]
    rule_ids += [(f, r.id) for f, r in interactions]
    rule_ids += [(f, c.id) for f, c in crosses]
    rule_ids += [(f, duplicate_rule_id(d.id)) for f, d in dups]
    _check_unique("rule", rule_ids, problems)

    citation_ids = {c.id for _, c in citations}
    class_members = {c.id: {m.rxcui for m in c.members} for _, c in classes}
    group_ids = {g.id for _, g in groups}

    def cites(file: str, entry_id: str, refs: Iterable[str]) -> None:
        for ref in refs:
            if ref not in citation_ids:
                problems.append(CompileProblem(file, entry_id, f"unknown citation {ref!r}"))

    def no_repeats(file: str, entry_id: str, what: str, members: Iterable[Member]) -> None:
        seen: set[str] = set()
        for member in members:
            if member.rxcui in seen:
                problems.append(
                    CompileProblem(file, entry_id, f"{what} lists {member.rxcui} twice")
                )
            seen.add(member.rxcui)

    # One RxCUI, one name; one name, one RxCUI (catches mistyped CUIs).
    names: dict[str, tuple[str, str, str]] = {}
    cuis: dict[str, tuple[str, str, str]] = {}

    def named(file: str, entry_id: str, members: Iterable[Member]) -> None:
        for m in members:
            first = names.setdefault(m.rxcui, (m.name, file, entry_id))
            if first[0] != m.name:
                problems.append(
                    CompileProblem(
                        file,
                        entry_id,
                        f"RxCUI {m.rxcui} is named {m.name!r} here but {first[0]!r} in "
                        f"{first[1]} ({first[2]})",
                    )
                )
            other = cuis.setdefault(m.name, (m.rxcui, file, entry_id))
            if other[0] != m.rxcui:
                problems.append(
                    CompileProblem(
                        file,
                        entry_id,
                        f"{m.name!r} is RxCUI {m.rxcui} here but {other[0]} in "
                        f"{other[1]} ({other[2]})",
                    )
                )

    for file, cls in classes:
        cites(file, cls.id, cls.citations)
        no_repeats(file, cls.id, "the class", cls.members)
        named(file, cls.id, cls.members)

    def side_members(file: str, rule_id: str, side: RuleSide, label: str) -> set[str] | None:
        if side.ingredient is not None:
            named(file, rule_id, (side.ingredient,))
            return {side.ingredient.rxcui}
        class_id = side.class_id or ""  # the schema guarantees exactly one of the two
        if class_id not in class_members:
            problems.append(
                CompileProblem(file, rule_id, f"side {label}: unknown class {class_id!r}")
            )
            return None
        return class_members[class_id]

    for file, rule in interactions:
        cites(file, rule.id, rule.citations)
        a = side_members(file, rule.id, rule.a, "a")
        b = side_members(file, rule.id, rule.b, "b")
        seen_overrides: set[str] = set()
        for override in rule.member_overrides:
            if override.rxcui in seen_overrides:
                problems.append(
                    CompileProblem(file, rule.id, f"member override {override.rxcui} repeated")
                )
            seen_overrides.add(override.rxcui)
            if a is not None and b is not None and override.rxcui not in a | b:
                problems.append(
                    CompileProblem(
                        file, rule.id, f"member override {override.rxcui} is on neither side"
                    )
                )
        if a is not None and b is not None:
            if len(a | b) < 2:
                problems.append(
                    CompileProblem(file, rule.id, "both sides are the same single ingredient")
                )
            for miss in rule.near_misses:
                if (miss.a in a and miss.b in b and miss.a != miss.b) or (
                    miss.b in a and miss.a in b and miss.a != miss.b
                ):
                    problems.append(
                        CompileProblem(
                            file,
                            rule.id,
                            f"near miss {miss.a}+{miss.b} matches the rule itself",
                        )
                    )

    for file, group in groups:
        cites(file, group.id, group.citations)
        no_repeats(file, group.id, "the allergen group", group.members)
        named(file, group.id, group.members)

    for file, cross in crosses:
        cites(file, cross.id, cross.citations)
        if cross.from_group not in group_ids:
            problems.append(
                CompileProblem(file, cross.id, f"unknown allergen group {cross.from_group!r}")
            )
        if cross.to_group is not None and cross.to_group not in group_ids:
            problems.append(
                CompileProblem(file, cross.id, f"unknown allergen group {cross.to_group!r}")
            )
        if cross.to_group is not None and cross.to_group == cross.from_group:
            problems.append(CompileProblem(file, cross.id, "'from' and 'to' are the same group"))
        no_repeats(file, cross.id, "to_members", cross.to_members)
        named(file, cross.id, cross.to_members)

    for file, dup in dups:
        cites(file, dup.id, dup.citations)
        no_repeats(file, dup.id, "the duplicate class", dup.members)
        named(file, dup.id, dup.members)
        if dup.members_of is not None:
            if dup.members_of not in class_members:
                problems.append(
                    CompileProblem(file, dup.id, f"members_of: unknown class {dup.members_of!r}")
                )
                continue
            count = len(class_members[dup.members_of])
        else:
            count = len(dup.members)
        if count < dup.allowance + 2:
            problems.append(
                CompileProblem(
                    file,
                    dup.id,
                    f"{count} member(s) with allowance {dup.allowance}: it can never fire "
                    f"(needs at least {dup.allowance + 2})",
                )
            )
    return problems


# --------------------------------------------------------------------------- compiling


def _content_hash(loaded: _Loaded) -> str:
    merged: dict[str, list[Any]] = {}
    for section in _SECTIONS:
        entries = [e.model_dump(mode="json", by_alias=True) for _, e in loaded.entries(section)]
        merged[section] = sorted(entries, key=lambda e: str(e["id"]))
    canonical = json.dumps(merged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _routes(routes: tuple[RouteCategory, ...] | None) -> frozenset[RouteCategory] | None:
    return None if routes is None else frozenset(routes)


def _ingredients(members: Iterable[Member]) -> tuple[Ingredient, ...]:
    return tuple(Ingredient(m.rxcui, m.name) for m in members)


def _strongest_override(
    a: CompiledOverride | None, b: CompiledOverride | None
) -> CompiledOverride | None:
    """When both ingredients of a pair carry an override, the more severe one applies."""
    if a is None or b is None:
        return a or b
    return min(
        (a, b),
        key=lambda o: (SEVERITY_RANK[o.severity], DISPLAY_RANK[o.display], o.rxcui),
    )


def _compile(loaded: _Loaded) -> KnowledgeBase:
    citations = {
        c.id: CitationRef(c.id, c.text, c.url)
        for _, c in sorted(loaded.entries("citations"), key=lambda fc: fc[1].id)
    }

    def refs(ids: Iterable[str]) -> tuple[CitationRef, ...]:
        return tuple(citations[i] for i in ids)

    ingredients: dict[str, str] = {}

    def remember(members: Iterable[Ingredient]) -> None:
        for m in members:
            ingredients.setdefault(m.rxcui, m.name)

    classes: dict[str, CompiledClass] = {}
    for _, cls in sorted(loaded.entries("classes"), key=lambda fc: fc[1].id):
        members = _ingredients(cls.members)
        remember(members)
        classes[cls.id] = CompiledClass(cls.id, cls.label, members, refs(cls.citations))

    def side(rule_side: RuleSide) -> CompiledSide:
        class_id = rule_side.class_id
        if rule_side.ingredient is not None:
            members = _ingredients((rule_side.ingredient,))
            label = rule_side.ingredient.name
        elif class_id is not None:
            members = classes[class_id].members
            label = classes[class_id].label
        else:  # pragma: no cover - the schema guarantees exactly one of the two
            raise ValueError("a rule side names neither an ingredient nor a class")
        remember(members)
        return CompiledSide(
            label, class_id, members, frozenset(m.rxcui for m in members), _routes(rule_side.routes)
        )

    interactions: dict[str, CompiledInteraction] = {}
    pairs: dict[tuple[str, str], list[PairHit]] = defaultdict(list)
    memberships: dict[str, set[Membership]] = defaultdict(set)
    for _, rule in sorted(loaded.entries("interactions"), key=lambda fr: fr[1].id):
        compiled = CompiledInteraction(
            id=rule.id,
            a=side(rule.a),
            b=side(rule.b),
            severity=rule.severity,
            display=rule.display,
            mechanism=rule.mechanism,
            consequence=rule.consequence,
            management=rule.management,
            citations=refs(rule.citations),
            source_list=rule.source_list,
            overrides=tuple(
                CompiledOverride(o.rxcui, o.severity, o.display, o.note)
                for o in sorted(rule.member_overrides, key=lambda o: o.rxcui)
            ),
            near_misses=tuple(NearMissPair(n.a, n.b, n.why) for n in rule.near_misses),
        )
        interactions[rule.id] = compiled
        for m in compiled.a.members:
            memberships[m.rxcui].add(Membership(rule.id, "a"))
        for m in compiled.b.members:
            memberships[m.rxcui].add(Membership(rule.id, "b"))
        for x in compiled.a.members:
            for y in compiled.b.members:
                if x.rxcui == y.rxcui:
                    continue  # the same ingredient twice is duplicate therapy, not an interaction
                override = _strongest_override(
                    compiled.override_for(x.rxcui), compiled.override_for(y.rxcui)
                )
                severity = compiled.severity if override is None else override.severity
                display = compiled.display if override is None else override.display
                pairs[(x.rxcui, y.rxcui)].append(
                    PairHit(
                        compiled,
                        "a",
                        compiled.a.routes,
                        compiled.b.routes,
                        severity,
                        display,
                        override,
                    )
                )
                pairs[(y.rxcui, x.rxcui)].append(
                    PairHit(
                        compiled,
                        "b",
                        compiled.b.routes,
                        compiled.a.routes,
                        severity,
                        display,
                        override,
                    )
                )
    pair_index = {
        key: tuple(sorted(hits, key=lambda h: (h.rule.id, h.first_side)))
        for key, hits in sorted(pairs.items())
    }

    allergen_groups: dict[str, CompiledAllergenGroup] = {}
    by_ingredient: dict[str, list[str]] = defaultdict(list)
    by_snomed: dict[str, list[str]] = defaultdict(list)
    for _, group in sorted(loaded.entries("allergen_groups"), key=lambda fg: fg[1].id):
        members = _ingredients(group.members)
        remember(members)
        allergen_groups[group.id] = CompiledAllergenGroup(
            group.id,
            group.label,
            members,
            frozenset(m.rxcui for m in members),
            tuple(group.snomed_codes),
            refs(group.citations),
        )
        for m in members:
            by_ingredient[m.rxcui].append(group.id)
        for code in group.snomed_codes:
            by_snomed[code].append(group.id)

    crosses: dict[str, CompiledCrossSensitivity] = {}
    cross_index: dict[tuple[str, str], list[CompiledCrossSensitivity]] = defaultdict(list)
    for _, cross in sorted(loaded.entries("cross_sensitivities"), key=lambda fc: fc[1].id):
        if cross.to_group is not None:
            targets = allergen_groups[cross.to_group].members
            target_label = allergen_groups[cross.to_group].label
        else:
            targets = _ingredients(cross.to_members)
            target_label = ", ".join(m.name for m in targets)
        remember(targets)
        compiled_cross = CompiledCrossSensitivity(
            id=cross.id,
            from_group=cross.from_group,
            from_label=allergen_groups[cross.from_group].label,
            to_group=cross.to_group,
            target_label=target_label,
            targets=targets,
            target_ids=frozenset(m.rxcui for m in targets),
            level=cross.level,
            rationale=cross.rationale,
            management=cross.management,
            citations=refs(cross.citations),
        )
        crosses[cross.id] = compiled_cross
        for m in targets:
            cross_index[(cross.from_group, m.rxcui)].append(compiled_cross)

    duplicates: dict[str, CompiledDuplicateClass] = {}
    dup_by_ingredient: dict[str, list[CompiledDuplicateClass]] = defaultdict(list)
    for _, dup in sorted(loaded.entries("duplicate_classes"), key=lambda fd: fd[1].id):
        members = (
            classes[dup.members_of].members
            if dup.members_of is not None
            else _ingredients(dup.members)
        )
        remember(members)
        compiled_dup = CompiledDuplicateClass(
            id=dup.id,
            rule_id=duplicate_rule_id(dup.id),
            label=dup.label,
            members=members,
            member_ids=frozenset(m.rxcui for m in members),
            members_of=dup.members_of,
            allowance=dup.allowance,
            severity=dup.severity,
            display=dup.display,
            management=dup.management,
            citations=refs(dup.citations),
            routes=_routes(dup.routes),
        )
        duplicates[dup.id] = compiled_dup
        for m in members:
            dup_by_ingredient[m.rxcui].append(compiled_dup)

    digest = _content_hash(loaded)
    release = next((kf.release for _, kf in loaded.files if kf.release), DEFAULT_RELEASE)
    return KnowledgeBase(
        version=f"{release}+{digest[:12]}",
        release=release,
        content_hash=digest,
        sources=tuple(loaded.sources),
        citations=citations,
        ingredients=dict(sorted(ingredients.items())),
        classes=classes,
        interactions=interactions,
        memberships={
            k: tuple(sorted(v, key=lambda m: (m.rule_id, m.side)))
            for k, v in sorted(memberships.items())
        },
        pair_index=pair_index,
        allergen_groups=allergen_groups,
        ingredient_allergen_groups={k: tuple(v) for k, v in sorted(by_ingredient.items())},
        snomed_allergen_groups={k: tuple(v) for k, v in sorted(by_snomed.items())},
        cross_sensitivities=crosses,
        cross_sensitivity_index={
            k: tuple(sorted(v, key=lambda c: (LEVEL_RANK[c.level], c.id)))
            for k, v in sorted(cross_index.items())
        },
        duplicate_classes=duplicates,
        ingredient_duplicate_classes={k: tuple(v) for k, v in sorted(dup_by_ingredient.items())},
    )


def compile_knowledge(sources_dir: Path) -> KnowledgeBase:
    """Compile every ``*.yaml`` under ``sources_dir``; raises :class:`KnowledgeBaseInvalid`."""
    loaded = _load(sources_dir)
    if loaded.problems:
        raise KnowledgeBaseInvalid(loaded.problems)
    problems = _cross_check(loaded)
    if problems:
        raise KnowledgeBaseInvalid(problems)
    return _compile(loaded)


@functools.cache
def load_knowledge_base() -> KnowledgeBase:
    """The shipped knowledge base (``data/sources``), compiled once per process."""
    return compile_knowledge(SOURCES_DIR)
