"""Authorization dependencies: every route declares what it needs, explicitly.

- ``RequirePermission(Permission.PATIENT_READ)`` — the caller must be authenticated and hold the
  permission (through a role, or an API key's explicit grant); else 403 problem+json.
- ``PublicRoute`` — the route is deliberately open (login, JWKS, health, readiness, metrics).

A route with neither fails ``tests/unit/auth/test_route_permissions.py``: deny unless allowed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.params import Depends as DependsParam

from ehr.auth.dependencies import get_current_principal
from ehr.auth.permissions import Permission
from ehr.auth.principal import Principal
from ehr.errors import PermissionDenied

__all__ = ["PERMISSION_ATTRIBUTE", "PublicRoute", "RequirePermission", "public_route"]

# Set on every permission checker, so tests (and OpenAPI tooling) can find what a route needs.
PERMISSION_ATTRIBUTE = "__ehr_permission__"


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
