"""The rewritten CapabilityStatement, SMART configuration, and pass-through failure mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from ehr.core.config import FhirSettings, GatewaySettings, Settings
from ehr.fhir import FhirClient
from ehr.fhir.errors import FhirTimeout, FhirUnavailable
from ehr.fhir.passthrough import FhirPassThrough
from ehr.platform.gateway.discovery import (
    OAUTH_URIS_EXTENSION,
    openid_configuration,
    rewrite_capability_statement,
    smart_configuration,
)

SettingsFactory = Callable[..., Settings]
HAPI = "http://hapi.internal:8080/fhir"


def hapi_statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "implementation": {"description": "HAPI FHIR", "url": f"{HAPI}/DEFAULT"},
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}, {"code": "history-system"}],
                "operation": [
                    {"name": "expunge", "definition": f"{HAPI}/DEFAULT/OperationDefinition/x"},
                    {"name": "export", "definition": f"{HAPI}/DEFAULT/OperationDefinition/y"},
                    {"name": "partition-management-create-partition"},
                ],
                "resource": [
                    {
                        "type": "Patient",
                        "operation": [{"name": "everything"}, {"name": "reindex"}],
                    },
                    {"type": "Group", "operation": [{"name": "reindex"}]},
                ],
            }
        ],
    }


def test_capability_statement_is_ours(unit_settings: SettingsFactory) -> None:
    settings = unit_settings(gateway=GatewaySettings(public_base_url="https://ehr.example"))
    statement = rewrite_capability_statement(hapi_statement(), settings, (f"{HAPI}/DEFAULT", HAPI))
    text = json.dumps(statement)
    assert "hapi.internal" not in text
    assert statement["implementation"]["url"] == "https://ehr.example/fhir"
    rest = statement["rest"][0]
    assert [op["name"] for op in rest["operation"]] == ["export"]
    assert rest["operation"][0]["definition"].startswith("https://ehr.example/fhir/")
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]
    assert rest["resource"][0]["operation"] == [{"name": "everything"}]
    assert "operation" not in rest["resource"][1]
    security = rest["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = security["extension"][0]
    assert oauth["url"] == OAUTH_URIS_EXTENSION
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    assert uris == {
        "authorize": "https://ehr.example/oauth2/authorize",
        "token": "https://ehr.example/oauth2/token",
        "introspect": "https://ehr.example/oauth2/introspect",
        "revoke": "https://ehr.example/oauth2/revoke",
    }


def test_smart_configuration(unit_settings: SettingsFactory) -> None:
    settings = unit_settings(gateway=GatewaySettings(public_base_url="https://ehr.example/"))
    config = smart_configuration(settings)
    # The issuer is the FHIR base: OpenID Connect discovery lives under it.
    assert config["issuer"] == "https://ehr.example/fhir"
    assert openid_configuration(settings)["issuer"] == config["issuer"]
    assert config["jwks_uri"] == "https://ehr.example/.well-known/jwks.json"
    assert config["authorization_endpoint"] == "https://ehr.example/oauth2/authorize"
    assert config["token_endpoint"] == "https://ehr.example/oauth2/token"
    assert config["introspection_endpoint"] == "https://ehr.example/oauth2/introspect"
    assert config["revocation_endpoint"] == "https://ehr.example/oauth2/revoke"
    assert "patient/*.rs" in config["scopes_supported"]
    assert config["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert config["code_challenge_methods_supported"] == ["S256"]  # never "plain"
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["ES384", "RS384"]
    assert {"launch-ehr", "launch-standalone", "client-public", "sso-openid-connect"} <= set(
        config["capabilities"]
    )
    # Nothing that is not built: no POST to the authorization endpoint, no granular scopes.
    assert "authorize-post" not in config["capabilities"]
    assert not any("?" in s for s in config["scopes_supported"])


@pytest.fixture
async def passthrough() -> Any:
    async with FhirClient(FhirSettings(base_url=HAPI)) as fhir:
        yield FhirPassThrough(fhir)


@respx.mock
async def test_unreachable_is_503(passthrough: FhirPassThrough) -> None:
    respx.get(f"{HAPI}/t1/Patient").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(FhirUnavailable):
        await passthrough.open("GET", "t1", "Patient", interaction="search", timeout=1)


@respx.mock
async def test_timeout_is_504(passthrough: FhirPassThrough) -> None:
    respx.get(f"{HAPI}/t1/Patient").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(FhirTimeout):
        await passthrough.open("GET", "t1", "Patient", interaction="search", timeout=1)


@respx.mock
async def test_request_goes_to_the_tenant_without_credentials(
    passthrough: FhirPassThrough,
) -> None:
    route = respx.get(f"{HAPI}/t1/Patient/1").mock(return_value=httpx.Response(200, json={}))
    upstream = await passthrough.open(
        "GET",
        "t1",
        "Patient/1",
        interaction="read",
        headers={"if-none-match": 'W/"1"'},
        timeout=1,
    )
    await upstream.aclose()
    await upstream.aclose()  # idempotent
    sent = route.calls.last.request
    assert sent.headers["if-none-match"] == 'W/"1"'
    assert "authorization" not in sent.headers
    assert sent.headers["accept-encoding"] == "identity"


async def test_paths_cannot_leave_the_tenant(passthrough: FhirPassThrough) -> None:
    with pytest.raises(Exception, match="not valid"):
        passthrough.url("t1", "../t2/Patient")
    assert passthrough.hapi_bases("t1") == (f"{HAPI}/t1", HAPI)
