"""The FastAPI dependency of the CDS routes: :data:`CdsClientDep`, the authenticated client.

Its dependency carries the :data:`CDS_CLIENT_JWT` access marker
(``tests/unit/platform/auth/test_route_permissions.py``).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request

from ehr.core.dependencies import ResourcesDep
from ehr.modules.cds_hooks.client_auth.jwks import jwks_cache_for
from ehr.modules.cds_hooks.client_auth.service import CdsClientIdentity, authenticate_cds_client
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE

__all__ = ["CDS_CLIENT_JWT", "CdsClientDep", "get_cds_client"]

# The access marker of routes that CDS clients call with a signed JWT (see the route test).
CDS_CLIENT_JWT: Final = "cds-client-jwt"


async def get_cds_client(request: Request, resources: ResourcesDep) -> CdsClientIdentity:
    """FastAPI dependency: the CDS client whose JWT authenticates this call (else 401)."""
    identity = await authenticate_cds_client(
        authorization=request.headers.get("authorization"),
        path=request.url.path,
        resources=resources,
        cache=jwks_cache_for(request),
    )
    request.state.cds_client = identity
    return identity


setattr(get_cds_client, PERMISSION_ATTRIBUTE, CDS_CLIENT_JWT)

CdsClientDep = Annotated[CdsClientIdentity, Depends(get_cds_client)]
