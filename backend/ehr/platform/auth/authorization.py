"""Authorization dependencies: every route declares what it needs, explicitly.

- ``RequirePermission(Permission.PATIENT_READ)`` — the caller must be authenticated and hold the
  permission (through a role, or an API key's explicit grant); else 403 problem+json.
- ``PublicRoute`` — the route is deliberately open (login, JWKS, health, readiness, metrics).

A route with neither fails ``tests/unit/platform/auth/test_route_permissions.py``: deny unless
allowed.

Break-glass (emergency access to restricted records): a resource whose ``meta.security`` carries
the confidentiality code ``R`` (restricted) or ``V`` (very restricted) is only shown to a
principal holding ``break_glass:assert`` who states a reason in the ``X-Break-Glass-Reason``
header (at least :data:`BREAK_GLASS_MIN_REASON` characters). The access is allowed, and the
handler flags it on the audit trail. ``BreakGlassDep`` parses the header;
:func:`check_restricted_access` applies the rule to one resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Header
from fastapi.params import Depends as DependsParam

from ehr.core.errors import PermissionDenied
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = [
    "BREAK_GLASS_HEADER",
    "BREAK_GLASS_MIN_REASON",
    "CONFIDENTIALITY_SYSTEM",
    "PERMISSION_ATTRIBUTE",
    "RESTRICTED_CONFIDENTIALITY",
    "BreakGlassDep",
    "BreakGlassRequest",
    "BreakGlassRequired",
    "PublicRoute",
    "RequirePermission",
    "check_restricted_access",
    "get_break_glass",
    "is_restricted",
    "public_route",
]

# Set on every permission checker, so tests (and OpenAPI tooling) can find what a route needs.
PERMISSION_ATTRIBUTE = "__ehr_permission__"

CONFIDENTIALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RESTRICTED_CONFIDENTIALITY: Final = frozenset({"R", "V"})
BREAK_GLASS_HEADER: Final = "X-Break-Glass-Reason"
BREAK_GLASS_MIN_REASON: Final = 10
BREAK_GLASS_MAX_REASON: Final = 500


def RequirePermission(permission: Permission) -> Any:  # noqa: N802 - reads like a type in routes
    """A dependency that authenticates the caller and requires ``permission``.

    Use as a parameter (``principal: Annotated[Principal, RequirePermission(P.PATIENT_READ)]``)
    or in ``dependencies=[RequirePermission(...)]``.
    """

    async def check(
        principal: Annotated[Principal, Depends(get_current_principal)],
    ) -> Principal:
        if not principal.has(permission):
            raise PermissionDenied(f"This action needs the {permission.value} permission")
        return principal

    setattr(check, PERMISSION_ATTRIBUTE, permission)
    check.__name__ = f"require_{permission.value.replace(':', '_')}"
    return Depends(check)


async def public_route() -> None:
    """Marks a route as deliberately unauthenticated."""


setattr(public_route, PERMISSION_ATTRIBUTE, "public")

PublicRoute: DependsParam = Depends(public_route)


# --- break-glass ----------------------------------------------------------------------------


class BreakGlassRequired(PermissionDenied):
    """A restricted record needs a break-glass assertion (``X-Break-Glass-Reason``)."""

    code = "break_glass_required"
    title = "Break-glass required"


@dataclass(frozen=True, slots=True)
class BreakGlassRequest:
    """What the caller sent in ``X-Break-Glass-Reason`` (validated on use, not here)."""

    reason: str | None

    @property
    def asserted(self) -> bool:
        return self.reason is not None and len(self.reason) >= BREAK_GLASS_MIN_REASON


async def get_break_glass(
    reason: Annotated[
        str | None,
        Header(
            alias=BREAK_GLASS_HEADER,
            max_length=BREAK_GLASS_MAX_REASON,
            description=(
                "Emergency access to a restricted record: the reason (at least "
                f"{BREAK_GLASS_MIN_REASON} characters). Needs `break_glass:assert`; audited."
            ),
        ),
    ] = None,
) -> BreakGlassRequest:
    cleaned = " ".join(reason.split()) if reason is not None else None
    return BreakGlassRequest(reason=cleaned or None)


BreakGlassDep = Annotated[BreakGlassRequest, Depends(get_break_glass)]


def is_restricted(resource: Mapping[str, Any]) -> bool:
    """Whether ``meta.security`` carries the confidentiality code R or V."""
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, Mapping) else None
    for label in labels if isinstance(labels, list) else []:
        if (
            isinstance(label, Mapping)
            and label.get("system") == CONFIDENTIALITY_SYSTEM
            and label.get("code") in RESTRICTED_CONFIDENTIALITY
        ):
            return True
    return False


def check_restricted_access(
    resource: Mapping[str, Any], principal: Principal, break_glass: BreakGlassRequest
) -> bool:
    """Apply the break-glass rule to ``resource``; returns True when break-glass was used.

    Unrestricted resources pass (False). A restricted one raises :class:`PermissionDenied`
    if the principal lacks ``break_glass:assert``, :class:`BreakGlassRequired` without a
    valid reason; otherwise the access is allowed and the caller must flag it on the audit
    trail (True).
    """
    if not is_restricted(resource):
        return False
    if not principal.has(Permission.BREAK_GLASS):
        raise PermissionDenied("This record is restricted")
    if not break_glass.asserted:
        raise BreakGlassRequired(
            f"This record is restricted: state the reason in the {BREAK_GLASS_HEADER} header "
            f"(at least {BREAK_GLASS_MIN_REASON} characters)"
        )
    return True
