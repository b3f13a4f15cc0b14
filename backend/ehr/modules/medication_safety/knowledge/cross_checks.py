"""The cross-checks of the merged sources (step 2 of :mod:`.compiler`).

Ids are unique across files (citations, classes, allergen groups, duplicate classes; rule ids
across interactions, cross-sensitivities, the rule ids derived from duplicate classes and the
engine's built-in rule ids); every referenced citation, class and allergen group exists; one
RxCUI has one name everywhere and one name one RxCUI; no member is listed twice in a list; member
overrides name a member of the rule; near misses do not match their own rule; a rule's sides are
not one and the same ingredient; a duplicate class has at least ``allowance + 2`` members; a rule's
display is its severity's (``DEFAULT_DISPLAY``: contraindicated and major interruptive, moderate
passive, minor informational) unless it gives a ``display_reason``. Every problem is reported, not
only the first.
"""

from __future__ import annotations

from collections.abc import Iterable

from ehr.modules.medication_safety.knowledge.base import BUILTIN_RULE_IDS, duplicate_rule_id
from ehr.modules.medication_safety.knowledge.reading import CompileProblem, LoadedSources
from ehr.modules.medication_safety.knowledge.sources import (
    DEFAULT_DISPLAY,
    Display,
    Member,
    RuleSide,
    Severity,
)

__all__ = ["cross_check"]

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


def cross_check(loaded: LoadedSources) -> list[CompileProblem]:
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
    rule_ids += [(f, d.id) for f, d in loaded.entries("dose_limits")]
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

    def coherent(
        file: str, entry_id: str, severity: Severity, display: Display, reason: str | None
    ) -> None:
        """A display follows its severity (DEFAULT_DISPLAY) unless the entry says why not."""
        default = DEFAULT_DISPLAY[severity]
        if display != default and reason is None:
            problems.append(
                CompileProblem(
                    file,
                    entry_id,
                    f"{severity.value} is {default.value} by default, not {display.value}: "
                    "give a display_reason",
                )
            )
        elif display == default and reason is not None:
            problems.append(
                CompileProblem(file, entry_id, "display_reason given for the default display")
            )

    for file, rule in interactions:
        cites(file, rule.id, rule.citations)
        coherent(file, rule.id, rule.severity, rule.display, rule.display_reason)
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
        coherent(file, dup.id, dup.severity, dup.display, dup.display_reason)
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
    for file, limit in loaded.entries("dose_limits"):
        cites(file, limit.id, limit.citations)
        named(file, limit.id, (limit.ingredient,))
        coherent(file, limit.id, limit.severity, limit.display, limit.display_reason)
    return problems
