"""The authentication dependency: who is calling (deny unless proven).

``CurrentPrincipal`` resolves a bearer access token (JWT) or an API key (``X-API-Key`` or
bearer) to a :class:`~ehr.auth.principal.Principal`; anything else is 401 problem+json.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ehr.auth.principal import Principal
from ehr.errors import AuthenticationRequired

__all__ = ["CurrentPrincipal", "get_current_principal"]


async def get_current_principal(request: Request) -> Principal:
    """Authenticate the request. (Contract placeholder: denies everything until implemented.)"""
    raise AuthenticationRequired("No valid credentials were presented")


CurrentPrincipal = Annotated[Principal, Depends(get_current_principal)]
