"""SMART scopes on the gateway: which scopes a principal may exercise and what they grant.

The grammar is :mod:`ehr.platform.auth.scope_grammar`. Which context a principal may use is
decided by the policy (:func:`usable_contexts`): API keys and Backend Services clients use
``system/``; principals with a patient context (the portal role, a SMART app launched for a
patient) use ``patient/`` only; other users use ``user/`` only.
"""

from __future__ import annotations

from collections.abc import Iterable

from ehr.platform.auth.principal import Principal
from ehr.platform.auth.scope_grammar import Context, Scope, parse_scope, parse_scopes

__all__ = [
    "Context",
    "Scope",
    "grants",
    "parse_scope",
    "parse_scopes",
    "usable_contexts",
]


def usable_contexts(principal: Principal) -> frozenset[Context]:
    """The scope contexts this principal may exercise."""
    if principal.is_system_client:
        return frozenset({"system"})
    if principal.patient_id is not None:
        return frozenset({"patient"})
    return frozenset({"user"})


def grants(principal: Principal, resource_type: str | None, actions: Iterable[str]) -> bool:
    """True if the principal's usable scopes grant every one of ``actions`` on the type.

    ``resource_type=None`` (system-level interactions) needs a wildcard ``*`` scope.
    Actions may come from different scopes (``Observation.r`` + ``Observation.s``).
    """
    contexts = usable_contexts(principal)
    scopes = [s for s in parse_scopes(principal.scopes) if s.context in contexts]
    return all(any(s.covers(resource_type, a) for s in scopes) for a in actions)


def grants_any(principal: Principal, action: str) -> bool:
    """True if some usable scope grants ``action`` on some type."""
    contexts = usable_contexts(principal)
    return any(action in s.actions for s in parse_scopes(principal.scopes) if s.context in contexts)
