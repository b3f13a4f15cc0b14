"""Discovery documents: HAPI's CapabilityStatement rewritten, and SMART's configuration.

``/fhir/metadata`` states OUR base URL (``implementation.url``), OUR security (SMART on FHIR, with
the ``oauth-uris`` extension pointing at our auth endpoints) and only what the gateway forwards:
operations off the allow-list and system ``_history`` are removed. Any remaining occurrence of
HAPI's address is rewritten like every other body. :func:`capability_statement` fetches HAPI's and
answers it rewritten; :func:`active_tenant` admits a tenant-qualified base ``/fhir/{tenant}``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any, Final

from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.core.dependencies import AppResources
from ehr.fhir import FhirClient
from ehr.fhir.errors import FhirResourceNotFound, FhirUpstreamError
from ehr.fhir.passthrough import FhirPassThrough
from ehr.platform.gateway.intake import FHIR_JSON
from ehr.platform.gateway.response import SMALL_ANSWER
from ehr.platform.smart import ASSERTION_ALGORITHMS
from ehr.platform.smart import TOKEN_PATH as SMART_TOKEN_PATH
from ehr.platform.tenancy.service import RESERVED_SLUGS

__all__ = [
    "OAUTH_URIS_EXTENSION",
    "SMART_CAPABILITIES",
    "SMART_SCOPES_SUPPORTED",
    "active_tenant",
    "capability_statement",
    "openid_configuration",
    "public_fhir",
    "rewrite_capability_statement",
    "smart_configuration",
]

OAUTH_URIS_EXTENSION: Final = (
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
)
SMART_SCOPES_SUPPORTED: Final = (
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
)
# Exactly what ehr.platform.smart implements (SMART App Launch 2.x capability names).
SMART_CAPABILITIES: Final = (
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
)


def public_fhir(settings: Settings, tenant: str | None = None) -> str:
    """The public FHIR base: ``/fhir``, or ``/fhir/{tenant}`` when the client used that form."""
    base = f"{settings.gateway.public_base_url.rstrip('/')}/fhir"
    return f"{base}/{tenant}" if tenant else base


def _endpoints(settings: Settings) -> dict[str, str]:
    """The OAuth endpoints SMART clients use (the business API's own login is not one of them:
    it is not an OAuth endpoint, so discovery does not advertise it)."""
    public = settings.gateway.public_base_url.rstrip("/")
    return {
        "authorize": f"{public}/oauth2/authorize",
        "token": f"{public}{SMART_TOKEN_PATH}",
        "introspect": f"{public}/oauth2/introspect",
        "revoke": f"{public}/oauth2/revoke",
        "jwks": f"{public}/.well-known/jwks.json",
    }


def _operation_name(entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str):
        return ""
    return name if name.startswith("$") else f"${name}"


def _filter_operations(container: dict[str, Any], allowed: Collection[str]) -> None:
    operations = container.get("operation")
    if not isinstance(operations, list):
        return
    kept = [op for op in operations if _operation_name(op) in allowed]
    if kept:
        container["operation"] = kept
    else:
        container.pop("operation", None)


def rewrite_capability_statement(
    statement: dict[str, Any],
    settings: Settings,
    hapi_bases: Iterable[str],
    *,
    public: str | None = None,
) -> dict[str, Any]:
    """HAPI's CapabilityStatement as the gateway's (see the module doc); ``public`` is the
    FHIR base it describes (default ``/fhir``; ``/fhir/{tenant}`` for a tenant-qualified base)."""
    from ehr.platform.gateway.rewrite import rewrite_text

    public = public or public_fhir(settings)
    allowed = set(settings.gateway.operations)
    endpoints = _endpoints(settings)
    statement["implementation"] = {"description": "EHR platform FHIR gateway", "url": public}
    statement.pop("contained", None)
    for rest in statement.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        rest["security"] = {
            "cors": True,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ],
                    "text": "OAuth2 bearer tokens (SMART on FHIR v2 scopes) or API keys",
                }
            ],
            "extension": [
                {
                    "url": OAUTH_URIS_EXTENSION,
                    "extension": [
                        {"url": "authorize", "valueUri": endpoints["authorize"]},
                        {"url": "token", "valueUri": endpoints["token"]},
                        {"url": "introspect", "valueUri": endpoints["introspect"]},
                        {"url": "revoke", "valueUri": endpoints["revoke"]},
                    ],
                }
            ],
        }
        _filter_operations(rest, allowed)
        interactions = rest.get("interaction")
        if isinstance(interactions, list):
            rest["interaction"] = [
                i
                for i in interactions
                if not (isinstance(i, dict) and i.get("code") == "history-system")
            ]
        for resource in rest.get("resource") or []:
            if isinstance(resource, dict):
                _filter_operations(resource, allowed)
    text = rewrite_text(json.dumps(statement, ensure_ascii=False), hapi_bases, public)
    rewritten: dict[str, Any] = json.loads(text)
    return rewritten


def smart_configuration(settings: Settings) -> dict[str, Any]:
    """``/fhir/.well-known/smart-configuration`` (SMART App Launch 2.x discovery): exactly what
    ehr.platform.smart implements — the App Launch flows (authorization code with PKCE S256,
    EHR and standalone launch, public and confidential clients, OpenID Connect), refresh tokens,
    Backend Services (``client_credentials`` with an RS384/ES384 assertion), introspection and
    revocation, and the scopes the gateway enforces."""
    endpoints = _endpoints(settings)
    return {
        "issuer": public_fhir(settings),
        "jwks_uri": endpoints["jwks"],
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "introspection_endpoint": endpoints["introspect"],
        "revocation_endpoint": endpoints["revoke"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASSERTION_ALGORITHMS),
        "scopes_supported": list(SMART_SCOPES_SUPPORTED),
        "capabilities": list(SMART_CAPABILITIES),
    }


def openid_configuration(settings: Settings) -> dict[str, Any]:
    """``/fhir/.well-known/openid-configuration``: OpenID Connect discovery for the id_tokens
    the authorization server issues (``iss`` = the FHIR base)."""
    endpoints = _endpoints(settings)
    return {
        "issuer": public_fhir(settings),
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "jwks_uri": endpoints["jwks"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["sub", "fhirUser", "name", "preferred_username", "nonce"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
    }


async def active_tenant(sessionmaker: async_sessionmaker[AsyncSession], slug: str) -> str:
    """``slug`` if it is an active tenant, else 404 (discovery under ``/fhir/{tenant}``)."""
    async with sessionmaker() as session:
        status = await session.scalar(select(Tenant.status).where(Tenant.slug == slug))
    if status != "active" or slug in RESERVED_SLUGS:
        raise FhirResourceNotFound(f"No FHIR base /fhir/{slug}")
    return slug


async def capability_statement(resources: AppResources, fhir: FhirClient, public: str) -> Response:
    """HAPI's CapabilityStatement (default partition), rewritten for the base ``public``."""
    settings = resources.settings
    passthrough = FhirPassThrough(fhir)
    tenant = fhir.default_tenant
    upstream = await passthrough.open(
        "GET",
        tenant,
        "metadata",
        interaction="metadata",
        headers={"accept": FHIR_JSON},
        timeout=settings.gateway.upstream_timeout_seconds,
    )
    try:
        if upstream.status_code != 200:
            raise FhirUpstreamError("The FHIR server did not return its CapabilityStatement")
        statement = json.loads(await upstream.read(SMALL_ANSWER))
    except ValueError as exc:
        raise FhirUpstreamError("The FHIR server's CapabilityStatement is not JSON") from exc
    finally:
        await upstream.aclose()
    body = rewrite_capability_statement(
        statement, settings, passthrough.hapi_bases(tenant), public=public
    )
    return JSONResponse(body, media_type=FHIR_JSON)
