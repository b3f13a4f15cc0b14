"""SMART on FHIR authorization (ADR 0032): the client registry and the token endpoint.

Built so far: SMART Backend Services — a registered client (per tenant, its JWKS, the
``system/`` scopes it may be granted) gets an access token with ``client_credentials`` and a
``private_key_jwt`` assertion at ``POST /oauth2/token``; the token is bound to the client's tenant
and works on ``/fhir`` with its ``system/`` scopes. The App Launch flows (authorization code +
PKCE, EHR and standalone launch) come next.
"""

from ehr.platform.smart.assertions import ASSERTION_ALGORITHMS
from ehr.platform.smart.clients import (
    BACKEND_SERVICE,
    RegisteredSmartClient,
    disable_client,
    list_clients,
    register_backend_service,
)
from ehr.platform.smart.router import TOKEN_PATH, router, token_endpoint_url

__all__ = [
    "ASSERTION_ALGORITHMS",
    "BACKEND_SERVICE",
    "TOKEN_PATH",
    "RegisteredSmartClient",
    "disable_client",
    "list_clients",
    "register_backend_service",
    "router",
    "token_endpoint_url",
]
