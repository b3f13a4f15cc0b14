"""Who is calling a CDS service: CDS Hooks 2.0.1 "Trusting CDS Clients", deny unless proven.

Every call to ``/cds-services...`` (discovery too) carries ``Authorization: Bearer <JWT>`` signed
by a registered CDS client (:class:`~ehr.core.db.models.CdsClient`) with an asymmetric key. The
token is
accepted only if, in this order:

1. the header is ``Bearer`` + three base64url segments, at most :data:`MAX_TOKEN_LENGTH` chars;
2. the JOSE header's ``alg`` is in ``settings.cds_hooks.algorithms`` AND asymmetric (``none`` and
   every ``HS*`` are refused whatever the settings say); ``kid`` is present; no ``crit``;
3. the (unverified) ``iss`` names an enabled client of an active tenant (one indexed read on
   PostgreSQL, no transaction);
4. the key: the client's stored JWKS and/or the JWKS at the header's ``jku`` — only if that exact
   URL is on the client's ``jku_allowlist``; without ``jku``, the stored JWKS then the allow-listed
   URLs. Fetched key sets are cached per process (:class:`JwksCache`); an unknown ``kid`` refetches
   at most once per ``jwks_min_refresh_seconds`` per URL (key rotation);
5. the key's type and curve fit ``alg`` (ES256 = EC P-256, ES384 = P-384, ES512 = P-521, RS*/PS* =
   RSA ≥ 2048 bits) and the signature verifies (python-jose; PS* with ``cryptography``). Only
   public EC/RSA keys are ever used: ``oct`` keys and keys with private members are ignored, so an
   HMAC "signed with the public key" cannot verify;
6. claims: ``iss``, ``aud``, ``exp``, ``iat``, ``jti`` present; ``exp`` not passed, ``iat`` and
   ``nbf`` not in the future (``clock_skew_seconds`` either way); ``exp - iat`` at most
   ``max_token_lifetime_seconds``; ``aud`` (a string, or a list holding it) EXACTLY
   ``{public_base}{request path}``;
7. the ``jti`` was not seen before for this issuer: Redis ``SET NX EX`` until the token expires.
   Redis unreachable → 503 (fail closed).

Every refusal is :class:`CdsClientUnauthorized` (401, ``WWW-Authenticate: Bearer``) with a reason
code (``extra["reason"]``) and a detail saying what was wrong; neither — nor the logs
(``cds_hooks.client_auth.refused``) — ever contain the token.

Routes use :data:`CdsClientDep`; its dependency carries the :data:`CDS_CLIENT_JWT` access marker
(``tests/unit/platform/auth/test_route_permissions.py``).

Files: ``tokens.py`` (steps 1, 2, 5, 6: header, signature, claims), ``keys.py`` (which JWKs are
usable), ``jwks.py`` (fetching and caching ``jku`` key sets), ``replay.py`` (step 7),
``refusals.py`` (the 401), ``service.py`` (the registered client and the whole check in order),
``dependencies.py`` (the FastAPI dependency).
"""

from ehr.modules.cds_hooks.client_auth.dependencies import (
    CDS_CLIENT_JWT,
    CdsClientDep,
    get_cds_client,
)
from ehr.modules.cds_hooks.client_auth.jwks import (
    MAX_JWKS_BYTES,
    JwksCache,
    JwksFetchError,
    fetch_jwks,
    jwks_cache_for,
)
from ehr.modules.cds_hooks.client_auth.refusals import CdsClientUnauthorized
from ehr.modules.cds_hooks.client_auth.replay import JTI_KEY_PREFIX, record_jti, replay_key
from ehr.modules.cds_hooks.client_auth.service import (
    CdsClientIdentity,
    RegisteredClient,
    authenticate_cds_client,
    load_client,
)
from ehr.modules.cds_hooks.client_auth.tokens import (
    MAX_TOKEN_LENGTH,
    TokenHeader,
    VerifiedClaims,
    accepted_algorithms,
    bearer_token,
    check_claims,
    expected_audience,
    public_base_url,
    read_header,
    verify_signature,
)
from ehr.platform.auth.client_keys import ASYMMETRIC_ALGORITHMS, jwk_problem, usable_keys

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "CDS_CLIENT_JWT",
    "JTI_KEY_PREFIX",
    "MAX_JWKS_BYTES",
    "MAX_TOKEN_LENGTH",
    "CdsClientDep",
    "CdsClientIdentity",
    "CdsClientUnauthorized",
    "JwksCache",
    "JwksFetchError",
    "RegisteredClient",
    "TokenHeader",
    "VerifiedClaims",
    "accepted_algorithms",
    "authenticate_cds_client",
    "bearer_token",
    "check_claims",
    "expected_audience",
    "fetch_jwks",
    "get_cds_client",
    "jwk_problem",
    "jwks_cache_for",
    "load_client",
    "public_base_url",
    "read_header",
    "record_jti",
    "replay_key",
    "usable_keys",
    "verify_signature",
]
