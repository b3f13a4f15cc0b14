"""Every route declares its access rule: ``RequirePermission(...)`` or ``PublicRoute``.

Walks every route of ``create_app()`` and each route's whole dependency tree (a permission can be
declared on the route, on its router, or inside a dependency) looking for a callable carrying
``PERMISSION_ATTRIBUTE``. A route with neither fails here: new routes are denied until someone
decides who may call them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from support.settings import SettingsFactory

from ehr.entrypoints.api import create_app
from ehr.modules.cds_hooks.client_auth import CDS_CLIENT_JWT, CdsClientDep, CdsClientIdentity
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE, RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal
from ehr.platform.realtime import EVENT_PERMISSIONS

# FastAPI's own documentation routes are plain Starlette routes (no dependant tree to carry a
# marker). They serve the OpenAPI description and Swagger/ReDoc pages, never data; deployments
# that must hide them turn them off with FastAPI(docs_url=None, ...).
FRAMEWORK_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

# Routes that are public by design (must carry PublicRoute, checked below).
EXPECTED_PUBLIC = frozenset(
    {"/health", "/ready", "/metrics", "/fhir/metadata", "/fhir/.well-known/smart-configuration"}
)

# The FHIR gateway's marker: an authenticated route whose access is decided per FHIR interaction
# by SMART scopes and the patient compartment (ehr.platform.gateway.policy), not by one permission.
SMART_SCOPES = "smart-scopes"

# CDS Hooks routes (/cds-services...): the caller is a registered CDS client proven by its signed
# JWT (ehr.modules.cds_hooks.client_auth); the marker is CDS_CLIENT_JWT, on those paths only.
CDS_HOOKS_PREFIX = "/cds-services"


PUBLIC = "public"
P = Permission

# THE table of who may call what: every route of the app, exactly once, with the access markers
# its dependency tree carries. A new route fails ``test_every_route_is_in_the_table`` until it is
# added here, so each route's rule is a reviewed decision rather than whatever the code happens
# to declare.
EXPECTED_RULES: dict[str, set[object]] = {
    "DELETE /api/note-templates/{key}": {P.TENANT_ADMIN},
    "DELETE /fhir": {SMART_SCOPES},
    "DELETE /fhir/{path:path}": {SMART_SCOPES},
    "GET /.well-known/jwks.json": {PUBLIC},
    # SMART authorization server (ehr.platform.smart): OAuth endpoints where the client
    # authenticates itself (assertion, secret, or PKCE for public apps) and the sign-in/consent
    # pages where the user does (password + TOTP, bound to the browser by a CSRF token).
    "POST /oauth2/token": {PUBLIC},
    "POST /oauth2/introspect": {PUBLIC},
    "POST /oauth2/revoke": {PUBLIC},
    "GET /oauth2/authorize": {PUBLIC},
    "POST /oauth2/authorize/login": {PUBLIC},
    "POST /oauth2/authorize/mfa": {PUBLIC},
    "GET /oauth2/authorize/consent": {PUBLIC},
    "POST /oauth2/authorize/consent": {PUBLIC},
    "GET /oauth2/smart-style.json": {PUBLIC},
    "GET /fhir/.well-known/openid-configuration": {PUBLIC},
    # An EHR launch is minted for a patient the caller may read; the registry is the key admin's.
    "POST /api/smart/launches": {P.PATIENT_READ},
    "GET /api/admin/smart/clients": {P.APIKEY_ADMIN},
    "POST /api/admin/smart/clients": {P.APIKEY_ADMIN},
    "POST /api/admin/smart/clients/{client_id}/disable": {P.APIKEY_ADMIN},
    "GET /api/admin/api-keys": {P.APIKEY_ADMIN},
    "GET /api/audit/export": {P.AUDIT_VIEW},
    "GET /api/audit/records": {P.AUDIT_VIEW},
    "GET /api/auth/me": {P.SELF_MANAGE},
    "GET /api/auth/mfa/qr.png": {P.SELF_MANAGE},
    "GET /api/medication-safety/knowledge-base": {P.MEDICATION_READ},
    "GET /api/medication-safety/knowledge-base/rules": {P.MEDICATION_READ},
    "GET /api/medication-safety/policy": {P.MEDICATION_SAFETY_CONFIGURE},
    "GET /api/order-sets": {P.ORDER_SET_READ},
    "GET /api/order-sets/{set_id}": {P.ORDER_SET_READ},
    "GET /api/patients": {P.PATIENT_READ},
    "GET /api/patients/{patient_id}": {P.PATIENT_READ},
    "GET /api/patients/{patient_id}/allergies": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/allergies/{allergy_id}": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/encounters": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/encounters/{encounter_id}": {P.CLINICAL_READ},
    "GET /api/jobs": {P.TENANT_ADMIN},
    # Realtime (ADR 0025): authenticated by the route (the WebSocket's first message, the SSE
    # Authorization header); each event is filtered by the permission its type needs.
    "GET /api/events/stream": {EVENT_PERMISSIONS},
    "WS /api/events/ws": {EVENT_PERMISSIONS},
    "GET /api/jobs/{job_id}": {P.TENANT_ADMIN},
    "GET /api/note-templates": {P.TENANT_ADMIN},
    "GET /api/note-templates/{key}": {P.TENANT_ADMIN},
    "GET /api/patients/{patient_id}/notes": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/notes/templates": {P.CLINICAL_WRITE},
    "GET /api/patients/{patient_id}/notes/{note_id}": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/problems": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/problems/{problem_id}": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/summary": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/orders": {P.ORDER_READ},
    "GET /api/patients/{patient_id}/orders/{order_id}": {P.ORDER_READ},
    "POST /api/patients/{patient_id}/orders": {P.ORDER_DRAFT},
    "PUT /api/patients/{patient_id}/orders/{order_id}": {P.ORDER_DRAFT},
    "POST /api/patients/{patient_id}/orders/{order_id}/sign": {P.ORDER_PLACE},
    "POST /api/patients/{patient_id}/orders/{order_id}/hold": {P.ORDER_PLACE},
    "POST /api/patients/{patient_id}/orders/{order_id}/resume": {P.ORDER_PLACE},
    "POST /api/patients/{patient_id}/orders/{order_id}/revoke": {P.ORDER_PLACE},
    "POST /api/patients/{patient_id}/orders/{order_id}/complete": {P.ORDER_PLACE},
    "POST /api/patients/{patient_id}/orders/{order_id}/entered-in-error": {P.ORDER_DRAFT},
    "GET /api/order-policy": {P.TENANT_ADMIN},
    "PUT /api/order-policy": {P.TENANT_ADMIN},
    "GET /api/patients/{patient_id}/results": {P.RESULT_READ},
    "GET /api/patients/{patient_id}/results/{report_id}": {P.RESULT_READ},
    "GET /api/patients/{patient_id}/trends/{loinc}": {P.RESULT_READ},
    "POST /api/patients/{patient_id}/results": {P.RESULT_WRITE},
    "POST /api/patients/{patient_id}/results/{report_id}/acknowledge": {P.RESULT_ACKNOWLEDGE},
    "GET /api/critical-results": {P.RESULT_ACKNOWLEDGE},
    "GET /api/result-policy": {P.TENANT_ADMIN},
    "PUT /api/result-policy": {P.TENANT_ADMIN},
    "GET /api/patients/{patient_id}/timeline": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/vitals": {P.CLINICAL_READ},
    "GET /api/patients/{patient_id}/vitals/{vital_id}": {P.CLINICAL_READ},
    "GET /cds-services": {CDS_CLIENT_JWT},
    "GET /docs": {PUBLIC},
    "GET /docs/assets/{name}": {PUBLIC},
    "GET /fhir": {SMART_SCOPES},
    "GET /fhir/.well-known/smart-configuration": {PUBLIC},
    "GET /fhir/metadata": {PUBLIC},
    "GET /fhir/{path:path}": {SMART_SCOPES},
    "GET /fhir/{tenant:tenant}/.well-known/smart-configuration": {PUBLIC},
    "GET /fhir/{tenant:tenant}/metadata": {PUBLIC},
    "GET /health": {PUBLIC},
    "GET /metrics": {PUBLIC},
    "GET /ready": {PUBLIC},
    "GET /redoc": {PUBLIC},
    "PATCH /fhir": {SMART_SCOPES},
    "PATCH /fhir/{path:path}": {SMART_SCOPES},
    "POST /api/admin/api-keys": {P.APIKEY_ADMIN},
    "POST /api/admin/api-keys/{key_id}/revoke": {P.APIKEY_ADMIN},
    "POST /api/admin/api-keys/{key_id}/rotate": {P.APIKEY_ADMIN},
    "POST /api/auth/login": {PUBLIC},
    "POST /api/auth/login/mfa": {PUBLIC},
    "POST /api/auth/logout": {P.SELF_MANAGE},
    "POST /api/auth/mfa/confirm": {P.SELF_MANAGE},
    "POST /api/auth/mfa/enroll": {P.SELF_MANAGE},
    "POST /api/auth/token/refresh": {PUBLIC},
    "POST /api/medication-safety/check": {P.MEDICATION_READ},
    "POST /api/medication-safety/patients/{patient_id}/check": {P.MEDICATION_READ},
    "POST /api/order-sets": {P.ORDER_SET_MANAGE},
    "POST /api/order-sets/install-starter-sets": {P.ORDER_SET_MANAGE},
    "POST /api/order-sets/{set_id}/retire": {P.ORDER_SET_MANAGE},
    "POST /api/patients": {P.PATIENT_WRITE},
    "POST /api/patients/{patient_id}/allergies": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/allergies/{allergy_id}/entered-in-error": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/encounters": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/encounters/{encounter_id}/cancel": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/encounters/{encounter_id}/discharge": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/encounters/{encounter_id}/entered-in-error": {
        P.CLINICAL_WRITE
    },
    "POST /api/patients/{patient_id}/encounters/{encounter_id}/status": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/notes": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/order-sets/{set_id}/instantiate": {P.ORDER_DRAFT},
    "POST /api/patients/{patient_id}/notes/{note_id}/addenda": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/notes/{note_id}/amend": {P.NOTE_SIGN},
    "POST /api/patients/{patient_id}/notes/{note_id}/cosign": {P.NOTE_SIGN},
    "POST /api/patients/{patient_id}/notes/{note_id}/entered-in-error": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/notes/{note_id}/sign": {P.NOTE_SIGN},
    "POST /api/patients/{patient_id}/problems": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/problems/{problem_id}/entered-in-error": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/vitals": {P.CLINICAL_WRITE},
    "POST /api/patients/{patient_id}/vitals/{vital_id}/entered-in-error": {P.CLINICAL_WRITE},
    "POST /cds-services/{service_id}": {CDS_CLIENT_JWT},
    "POST /cds-services/{service_id}/feedback": {CDS_CLIENT_JWT},
    "POST /fhir": {SMART_SCOPES},
    "POST /fhir/{path:path}": {SMART_SCOPES},
    "PUT /api/medication-safety/policy": {P.MEDICATION_SAFETY_CONFIGURE},
    "PUT /api/order-sets/{set_id}": {P.ORDER_SET_MANAGE},
    "PUT /api/patients/{patient_id}/allergies/{allergy_id}": {P.CLINICAL_WRITE},
    "POST /api/jobs/{job_id}/cancel": {P.TENANT_ADMIN},
    "POST /api/jobs/{job_id}/retry": {P.TENANT_ADMIN},
    "GET /api/webhooks": {P.TENANT_ADMIN},
    "POST /api/hl7v2/messages": {P.HL7_SEND},
    "GET /api/hl7v2/messages": {P.HL7_MANAGE},
    "GET /api/hl7v2/messages/{message_id}": {P.HL7_MANAGE},
    "POST /api/hl7v2/messages/{message_id}/replay": {P.HL7_MANAGE},
    "GET /api/hl7v2/senders": {P.HL7_MANAGE},
    "POST /api/hl7v2/senders": {P.HL7_MANAGE},
    "POST /api/hl7v2/senders/{sender_id}/disable": {P.HL7_MANAGE},
    "PATCH /api/hl7v2/senders/{sender_id}": {P.HL7_MANAGE},
    "GET /api/pharmacy/locations": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/locations": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/products": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/products": {P.PHARMACY_MANAGE},
    "POST /api/pharmacy/lots/{lot_id}/recall": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/stock": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/receipts": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/adjustments": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/transfers": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/counts": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/waste": {P.PHARMACY_INVENTORY},
    "POST /api/pharmacy/stock/returns": {P.PHARMACY_INVENTORY},
    "GET /api/pharmacy/ledger": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/ledger/verification": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/controlled/discrepancies": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/controlled/inventory": {P.PHARMACY_MANAGE},
    "GET /api/pharmacy/queue": {P.PHARMACY_VERIFY},
    "POST /api/pharmacy/queue/{order_id}/claim": {P.PHARMACY_VERIFY},
    "DELETE /api/pharmacy/queue/{order_id}/claim": {P.PHARMACY_VERIFY},
    "GET /api/pharmacy/queue/{order_id}": {P.PHARMACY_VERIFY},
    "POST /api/pharmacy/queue/{order_id}/decision": {P.PHARMACY_VERIFY},
    "POST /api/pharmacy/orders/{order_id}/dispenses": {P.MEDICATION_DISPENSE},
    "GET /api/pharmacy/orders/{order_id}": {P.MEDICATION_READ},
    "GET /api/pharmacy/clarifications": {P.MEDICATION_READ},
    "GET /api/hl7v2/destinations": {P.HL7_MANAGE},
    "POST /api/hl7v2/destinations": {P.HL7_MANAGE},
    "POST /api/hl7v2/destinations/{destination_id}/disable": {P.HL7_MANAGE},
    "GET /api/hl7v2/outbound": {P.HL7_MANAGE},
    "POST /api/hl7v2/outbound/{message_id}/replay": {P.HL7_MANAGE},
    "POST /api/webhooks": {P.TENANT_ADMIN},
    "GET /api/webhooks/{endpoint_id}": {P.TENANT_ADMIN},
    "POST /api/webhooks/{endpoint_id}/disable": {P.TENANT_ADMIN},
    "POST /api/webhooks/{endpoint_id}/enable": {P.TENANT_ADMIN},
    "GET /api/webhooks/{endpoint_id}/deliveries": {P.TENANT_ADMIN},
    "GET /api/webhooks/{endpoint_id}/deliveries/{delivery_id}": {P.TENANT_ADMIN},
    "POST /api/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay": {P.TENANT_ADMIN},
    "PUT /api/note-templates/{key}": {P.TENANT_ADMIN},
    "PUT /api/patients/{patient_id}/notes/{note_id}": {P.CLINICAL_WRITE},
    "PUT /api/patients/{patient_id}/problems/{problem_id}": {P.CLINICAL_WRITE},
    "PUT /api/patients/{patient_id}/vitals/{vital_id}": {P.CLINICAL_WRITE},
    "PUT /fhir": {SMART_SCOPES},
    "PUT /fhir/{path:path}": {SMART_SCOPES},
}


def _markers(dependant: Dependant) -> Iterator[object]:
    marker = getattr(dependant.call, PERMISSION_ATTRIBUTE, None)
    if marker is not None:
        yield marker
    for sub in dependant.dependencies:
        yield from _markers(sub)


@pytest.fixture
def app(unit_settings: SettingsFactory) -> FastAPI:
    return create_app(unit_settings())


def route_rules(app: FastAPI) -> dict[str, set[object]]:
    """``"METHOD path"`` → the access markers found in the route's dependency tree."""
    rules: dict[str, set[object]] = {}
    # iter_route_contexts flattens included routers; each context's dependant includes the
    # dependencies of the routers it was included through.
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute | APIWebSocketRoute):
            dependant = context.dependant
            assert isinstance(dependant, Dependant)
            for method in sorted(context.methods or {"WS"}):
                rules[f"{method} {context.path}"] = set(_markers(dependant))
        else:
            path = context.path
            assert path in FRAMEWORK_ROUTES, f"{path}: a non-FastAPI route cannot declare access"
    return rules


def test_every_route_declares_a_permission_or_public(app: FastAPI) -> None:
    rules = route_rules(app)
    assert rules, "no routes found"
    undeclared = sorted(route for route, markers in rules.items() if not markers)
    assert not undeclared, f"routes without RequirePermission/PublicRoute: {undeclared}"


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    rules = route_rules(app)
    missing = sorted(set(rules) - set(EXPECTED_RULES))
    assert not missing, f"routes not in EXPECTED_RULES (decide who may call them): {missing}"
    stale = sorted(set(EXPECTED_RULES) - set(rules))
    assert not stale, f"EXPECTED_RULES names routes the app does not have: {stale}"


@pytest.fixture(scope="module")
def app_rules(unit_settings: SettingsFactory) -> dict[str, set[object]]:
    """The app's rules, walked once for the table's per-route checks."""
    return route_rules(create_app(unit_settings()))


@pytest.mark.parametrize("route", sorted(EXPECTED_RULES))
def test_each_route_needs_exactly_its_expected_rule(
    app_rules: dict[str, set[object]], route: str
) -> None:
    assert app_rules.get(route) == EXPECTED_RULES[route]


def test_no_route_is_both_public_and_protected(app: FastAPI) -> None:
    mixed = sorted(
        route
        for route, markers in route_rules(app).items()
        if "public" in markers and any(isinstance(m, Permission) for m in markers)
    )
    assert not mixed, f"routes marked public and protected at once: {mixed}"


def test_operational_routes_are_public(app: FastAPI) -> None:
    rules = route_rules(app)
    for path in EXPECTED_PUBLIC:
        assert rules[f"GET {path}"] == {"public"}, path


def test_fhir_gateway_is_decided_by_smart_scopes(app: FastAPI) -> None:
    rules = route_rules(app)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert rules[f"{method} /fhir/{{path:path}}"] == {SMART_SCOPES}
        assert rules[f"{method} /fhir"] == {SMART_SCOPES}


def test_patient_routes_need_their_permissions(app: FastAPI) -> None:
    rules = route_rules(app)
    assert rules["GET /api/patients"] == {Permission.PATIENT_READ}
    assert rules["GET /api/patients/{patient_id}"] == {Permission.PATIENT_READ}
    assert rules["POST /api/patients"] == {Permission.PATIENT_WRITE}


def test_the_walker_finds_an_undeclared_route(unit_settings: SettingsFactory) -> None:
    app = create_app(unit_settings())

    @app.get("/api/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    rules = route_rules(app)
    assert rules["GET /api/forgotten"] == set()


async def nested_audit_dependency(
    principal: Annotated[Principal, RequirePermission(Permission.AUDIT_VIEW)],
) -> str:
    return principal.tenant


def test_markers_inside_nested_dependencies_are_found(unit_settings: SettingsFactory) -> None:
    app = create_app(unit_settings())

    @app.get("/api/nested")
    async def handler(tenant: Annotated[str, Depends(nested_audit_dependency)]) -> dict[str, str]:
        return {"tenant": tenant}

    assert route_rules(app)["GET /api/nested"] == {Permission.AUDIT_VIEW}


def test_medication_safety_routes_need_their_permissions(app: FastAPI) -> None:
    rules = route_rules(app)
    read = {Permission.MEDICATION_READ}
    assert rules["POST /api/medication-safety/check"] == read
    assert rules["POST /api/medication-safety/patients/{patient_id}/check"] == read
    assert rules["GET /api/medication-safety/knowledge-base"] == read
    assert rules["GET /api/medication-safety/knowledge-base/rules"] == read
    assert rules["GET /api/medication-safety/policy"] == {Permission.MEDICATION_SAFETY_CONFIGURE}
    assert rules["PUT /api/medication-safety/policy"] == {Permission.MEDICATION_SAFETY_CONFIGURE}


def test_cds_hooks_routes_are_decided_by_client_jwts(app: FastAPI) -> None:
    for route, markers in route_rules(app).items():
        path = route.split(" ", 1)[1]
        if path == CDS_HOOKS_PREFIX or path.startswith(CDS_HOOKS_PREFIX + "/"):
            assert CDS_CLIENT_JWT in markers, route
            assert "public" not in markers, route
        else:
            assert CDS_CLIENT_JWT not in markers, f"{route}: the CDS client marker is for CDS Hooks"


def test_the_walker_finds_the_cds_client_marker(unit_settings: SettingsFactory) -> None:
    app = create_app(unit_settings())

    @app.post("/cds-services/probe-for-the-walker")
    async def handler(client: CdsClientDep) -> dict[str, str]:
        assert isinstance(client, CdsClientIdentity)
        return {"tenant": client.tenant}

    assert route_rules(app)["POST /cds-services/probe-for-the-walker"] == {CDS_CLIENT_JWT}
