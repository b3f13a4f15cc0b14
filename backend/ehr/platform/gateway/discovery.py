"""Discovery documents: HAPI's CapabilityStatement rewritten, and SMART's configuration.

``/fhir/metadata`` states OUR base URL (``implementation.url``), OUR security (SMART on FHIR, with
the ``oauth-uris`` extension pointing at our auth endpoints) and only what the gateway forwards:
operations off the allow-list and system ``_history`` are removed. Any remaining occurrence of
HAPI's address is rewritten like every other body.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any, Final

from ehr.core.config import Settings

__all__ = [
    "OAUTH_URIS_EXTENSION",
    "SMART_SCOPES_SUPPORTED",
    "rewrite_capability_statement",
    "smart_configuration",
]

OAUTH_URIS_EXTENSION: Final = (
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
)
SMART_SCOPES_SUPPORTED: Final = (
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
    "launch/patient",
)


def _public_fhir(settings: Settings) -> str:
    return f"{settings.gateway.public_base_url.rstrip('/')}/fhir"


def _endpoints(settings: Settings) -> dict[str, str]:
    public = settings.gateway.public_base_url.rstrip("/")
    return {
        "token": f"{public}/api/auth/login",
        "authorize": f"{public}/api/auth/login",
        "refresh": f"{public}/api/auth/token/refresh",
        "revoke": f"{public}/api/auth/logout",
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

    public = public or _public_fhir(settings)
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
                        {"url": "token", "valueUri": endpoints["token"]},
                        {"url": "authorize", "valueUri": endpoints["authorize"]},
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
    """``/fhir/.well-known/smart-configuration`` (SMART App Launch 2.x discovery)."""
    endpoints = _endpoints(settings)
    return {
        "issuer": settings.auth.issuer,
        "jwks_uri": endpoints["jwks"],
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "revocation_endpoint": endpoints["revoke"],
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(SMART_SCOPES_SUPPORTED),
        "response_types_supported": ["token"],
        "capabilities": [
            "permission-v2",
            "permission-patient",
            "permission-user",
            "context-standalone-patient",
        ],
        "code_challenge_methods_supported": ["S256"],
    }
