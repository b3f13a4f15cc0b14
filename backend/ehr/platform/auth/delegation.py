"""What a user may delegate to a SMART app: the app's resource scopes narrowed to the user's own.

A user's own scopes come from their roles (:func:`~ehr.platform.auth.permissions.scopes_for`:
``user/`` for staff, ``patient/`` for the portal role). An app may act for the user with
``patient/`` scopes (confined to the launch patient's compartment by the gateway) or, for staff,
``user/`` scopes — each narrowed to the actions the user holds on that type; a wildcard type
(``patient/*.rs``) becomes the types the user may read. ``system/`` is never delegated. Other
scopes (``openid``, ``fhirUser``, ``launch/patient``, ``offline_access`` …) pass unchanged: they
grant no resource access.

Applied when the user consents and again on every request (a role taken away narrows the app's
tokens at once).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Final

from ehr.platform.auth.permissions import scopes_for
from ehr.platform.auth.scope_grammar import Scope, parse_scope, parse_scopes

__all__ = ["delegable_scopes", "is_resource_scope"]

_ORDER: Final = "cruds"


def is_resource_scope(text: str) -> bool:
    """True for ``patient/``, ``user/`` and ``system/`` scopes (those that grant FHIR access)."""
    return text.split("/", 1)[0] in ("patient", "user", "system")


def _v2(context: str, resource_type: str, actions: Iterable[str]) -> str:
    letters = "".join(a for a in _ORDER if a in set(actions))
    return f"{context}/{resource_type}.{letters}"


def _narrowed(scope: Scope, own: tuple[Scope, ...]) -> list[str]:
    if scope.resource_type != "*":
        held = {a for u in own if u.resource_type in ("*", scope.resource_type) for a in u.actions}
        actions = scope.actions & held
        return [_v2(scope.context, scope.resource_type, actions)] if actions else []
    narrowed: dict[str, set[str]] = {}
    for u in own:
        actions = scope.actions & u.actions
        if actions:
            narrowed.setdefault(u.resource_type, set()).update(actions)
    return [_v2(scope.context, t, a) for t, a in sorted(narrowed.items())]


@functools.lru_cache(maxsize=2048)
def _delegable(requested: frozenset[str], roles: frozenset[str]) -> frozenset[str]:
    own_texts = scopes_for(roles)
    own = parse_scopes(frozenset(own_texts))
    portal = any(t.startswith("patient/") for t in own_texts)
    granted: set[str] = set()
    for text in requested:
        if not is_resource_scope(text):
            granted.add(text)
            continue
        scope = parse_scope(text)
        if scope is None or scope.context == "system" or (portal and scope.context == "user"):
            continue
        if scope.resource_type != "*" and text in own_texts:
            granted.add(text)
            continue
        granted.update(_narrowed(scope, own))
    return frozenset(granted)


def delegable_scopes(requested: Iterable[str], roles: Iterable[str]) -> frozenset[str]:
    """``requested`` narrowed to what a user with ``roles`` may delegate (see the module doc)."""
    return _delegable(frozenset(requested), frozenset(roles))
