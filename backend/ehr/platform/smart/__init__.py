"""SMART on FHIR authorization (ADR 0032): the client registry, the App Launch flows
(authorization code + PKCE, EHR and standalone launch, consent, id_token, refresh tokens),
Backend Services (``client_credentials`` + ``private_key_jwt``), introspection and revocation.

Tokens are bound to the client's tenant and work on ``/fhir`` with their scopes: an app's with
the user's consented ``patient/``/``user/`` scopes (narrowed to the user's own access on every
request) and launch patient; a Backend Services client's with its ``system/`` scopes.
"""

from ehr.platform.smart.app_tokens import fhir_base
from ehr.platform.smart.assertions import ASSERTION_ALGORITHMS
from ehr.platform.smart.clients import (
    BACKEND_SERVICE,
    CONFIDENTIAL_APP,
    PUBLIC_APP,
    RegisteredSmartClient,
    disable_client,
    list_clients,
    register_app,
    register_backend_service,
)
from ehr.platform.smart.launches import MintedLaunch, mint_launch
from ehr.platform.smart.router import TOKEN_PATH, router, token_endpoint_url

__all__ = [
    "ASSERTION_ALGORITHMS",
    "BACKEND_SERVICE",
    "CONFIDENTIAL_APP",
    "PUBLIC_APP",
    "TOKEN_PATH",
    "MintedLaunch",
    "RegisteredSmartClient",
    "disable_client",
    "fhir_base",
    "list_clients",
    "mint_launch",
    "register_app",
    "register_backend_service",
    "router",
    "token_endpoint_url",
]
