"""The knowledge-base compiler: ``data/sources/*.yaml`` → one immutable runtime index.

Steps (all deterministic — the same sources give the same :class:`KnowledgeBase`, byte for byte):

1. **Load** every ``*.yaml`` under the sources directory (sorted by file name) with
   PyYAML's safe loader and validate each as a :class:`~.sources.KnowledgeFile`
   (:mod:`.reading`).
2. **Merge and cross-check** (:mod:`.cross_checks`): unique ids across files, every reference
   resolved, one name per RxCUI, rules and classes that can fire. Every problem is reported
   (file + offending id), not only the first.
3. **Compile** to plain frozen dataclasses and dicts (no pydantic on the hot path):
   ``pair_index[(x, y)]`` → the interaction hits for ingredient ``x`` in one medication and ``y``
   in the other (both orders are keys; member overrides are already applied per pair; route
   qualifiers are carried per side); ``memberships[x]`` → the (rule, side) pairs ``x`` belongs to;
   allergen-group, SNOMED-code and cross-sensitivity indexes; duplicate-class membership.

Version: ``<release>+<first 12 hex of sha256>`` where ``release`` is the ``release:`` of the one
source file that sets it (``0.0.0`` when none does) and the hash covers the canonical JSON of the
merged, id-sorted content (comments, formatting and the split into files do not change it).
Provenance: each source file with the sha256 of its bytes, and every citation.

``compile_knowledge(dir)`` compiles any directory (tests);
:func:`~.loading.load_knowledge_base` the shipped sources, once per process.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from ehr.modules.medication_safety.knowledge.base import (
    DISPLAY_RANK,
    LEVEL_RANK,
    SEVERITY_RANK,
    CitationRef,
    CompiledAllergenGroup,
    CompiledClass,
    CompiledCrossSensitivity,
    CompiledDoseLimit,
    CompiledDuplicateClass,
    CompiledInteraction,
    CompiledOverride,
    CompiledSide,
    Ingredient,
    KnowledgeBase,
    Membership,
    NearMissPair,
    PairHit,
    duplicate_rule_id,
)
from ehr.modules.medication_safety.knowledge.cross_checks import cross_check
from ehr.modules.medication_safety.knowledge.reading import (
    KnowledgeBaseInvalid,
    LoadedSources,
    load_sources,
)
from ehr.modules.medication_safety.knowledge.sources import Member, RouteCategory, RuleSide

__all__ = ["DEFAULT_RELEASE", "compile_knowledge"]

DEFAULT_RELEASE: Final = "0.0.0"

_SECTIONS: Final = (
    "citations",
    "classes",
    "interactions",
    "allergen_groups",
    "cross_sensitivities",
    "duplicate_classes",
)


# --------------------------------------------------------------------------- compiling


def _content_hash(loaded: LoadedSources) -> str:
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


def _compile(loaded: LoadedSources) -> KnowledgeBase:
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
        # The same ingredient on both sides is duplicate therapy, not an interaction — unless the
        # sides are for different routes (timolol eye drops with oral timolol).
        routes_apart = (
            compiled.a.routes is not None
            and compiled.b.routes is not None
            and compiled.a.routes.isdisjoint(compiled.b.routes)
        )
        for x in compiled.a.members:
            for y in compiled.b.members:
                if x.rxcui == y.rxcui and not routes_apart:
                    continue
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

    dose_limits: dict[str, CompiledDoseLimit] = {}
    dose_by_ingredient: dict[str, list[CompiledDoseLimit]] = defaultdict(list)
    for _, limit in sorted(loaded.entries("dose_limits"), key=lambda fl: fl[1].id):
        (ingredient,) = _ingredients((limit.ingredient,))
        remember((ingredient,))
        compiled_limit = CompiledDoseLimit(
            id=limit.id,
            ingredient=ingredient,
            routes=_routes(limit.routes),
            administration=limit.administration,
            unit=limit.unit.value,
            per_kg=limit.per_kg,
            max_single=limit.max_single,
            max_daily=limit.max_daily,
            max_weekly=limit.max_weekly,
            max_administrations_per_week=limit.max_administrations_per_week,
            min_daily=limit.min_daily,
            indication_note=limit.indication_note,
            severity=limit.severity,
            display=limit.display,
            rationale=limit.rationale,
            management=limit.management,
            citations=refs(limit.citations),
        )
        dose_limits[limit.id] = compiled_limit
        dose_by_ingredient[ingredient.rxcui].append(compiled_limit)

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
        dose_limits=dose_limits,
        ingredient_dose_limits={k: tuple(v) for k, v in sorted(dose_by_ingredient.items())},
        ingredient_duplicate_classes={k: tuple(v) for k, v in sorted(dup_by_ingredient.items())},
    )


def compile_knowledge(sources_dir: Path) -> KnowledgeBase:
    """Compile every ``*.yaml`` under ``sources_dir``; raises :class:`KnowledgeBaseInvalid`."""
    loaded = load_sources(sources_dir)
    if loaded.problems:
        raise KnowledgeBaseInvalid(loaded.problems)
    problems = cross_check(loaded)
    if problems:
        raise KnowledgeBaseInvalid(problems)
    return _compile(loaded)
