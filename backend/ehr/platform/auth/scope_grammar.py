"""SMART App Launch scope grammar: parsing (v2 ``patient/Observation.rs``, v1 ``.read``).

Grammar accepted (anything else grants nothing)::

    scope    = context "/" type "." actions
    context  = "patient" | "user" | "system"
    type     = "*" | a FHIR resource type name
    actions  = v2 letters, a non-empty subsequence of "cruds" in that order
             | "read"  (v1: r + s) | "write" (v1: c + u + d) | "*" (v1: c r u d s)

v2 *granular* scopes with a query (``patient/Observation.rs?category=laboratory``) grant nothing:
the gateway does not enforce the query restriction, so honouring them would widen access.
Shared by the gateway (what a token may do) and the SMART authorization server (what a user may
delegate to an app).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Context", "Scope", "parse_scope", "parse_scopes"]

Context = Literal["patient", "user", "system"]
Action = Literal["c", "r", "u", "d", "s"]

_SCOPE: Final = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<actions>[a-z*]+)"
)
_V2_ORDER: Final = "cruds"
_V1: Final[dict[str, frozenset[str]]] = {
    "read": frozenset("rs"),
    "write": frozenset("cud"),
    "*": frozenset("cruds"),
}


@dataclass(frozen=True, slots=True)
class Scope:
    context: Context
    resource_type: str  # "*" for every type
    actions: frozenset[str]

    def covers(self, resource_type: str | None, action: str) -> bool:
        """True if this scope grants ``action`` on ``resource_type`` (None: every type)."""
        if action not in self.actions:
            return False
        return self.resource_type == "*" or (
            resource_type is not None and self.resource_type == resource_type
        )


def _v2_actions(text: str) -> frozenset[str] | None:
    # A non-empty subsequence of "cruds", each letter at most once, in order.
    position = 0
    for letter in text:
        found = _V2_ORDER.find(letter, position)
        if found < 0:
            return None
        position = found + 1
    return frozenset(text) if text else None


@functools.lru_cache(maxsize=4096)
def parse_scope(text: str) -> Scope | None:
    """The :class:`Scope` of a scope string, or None (malformed, granular, not a resource)."""
    match = _SCOPE.fullmatch(text)
    if match is None:
        return None
    raw = match["actions"]
    actions = _V1.get(raw) or _v2_actions(raw)
    if actions is None:
        return None
    context: Context = match["context"]  # type: ignore[assignment]
    return Scope(context=context, resource_type=match["type"], actions=actions)


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    if isinstance(texts, frozenset):
        return _parsed_set(texts)
    return tuple(s for s in (parse_scope(t) for t in texts) if s is not None)


@functools.lru_cache(maxsize=1024)
def _parsed_set(texts: frozenset[str]) -> tuple[Scope, ...]:
    """A principal's scope set, parsed once per process (every request checks it; the scope
    strings come from verified credentials, so the set of distinct sets is small)."""
    return tuple(s for s in (parse_scope(t) for t in sorted(texts)) if s is not None)
