"""The authenticated FHIR gateway's routes: ``/fhir/...`` for direct FHIR clients (docs/adr/0009).

Every request: the grammar (:func:`check_grammar`, before authentication: the interaction is
parsed ONCE, :mod:`ehr.platform.gateway.interactions`) → authenticate and rate limit (JWT or API
key; one Redis round trip, the principal cached: ``ehr.platform.auth.dependencies.authenticate``)
→ tenant base → the operations allow-list → the body (:mod:`ehr.platform.gateway.intake`: 415 /
400) → the decision (:mod:`ehr.platform.gateway.decision`: page ownership, SMART scopes and
patient compartment) → audit note → the upstream call to the caller's partition
(:mod:`ehr.platform.gateway.forwarding`) and its answer, address rewritten
(:mod:`ehr.platform.gateway.response`: small ones whole, large ones streamed) → ONE audit record
with HAPI's status and the patients the answer named, written before the response is sent.
The tenant is the principal's, never a URL segment: the public URL is ``/fhir/Patient/123``.

Public: ``/fhir/metadata`` (rewritten CapabilityStatement) and
``/fhir/.well-known/smart-configuration`` (:mod:`ehr.platform.gateway.discovery`).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Match
from starlette.types import Scope

from ehr.core.dependencies import ResourcesDep, get_resources
from ehr.core.intake import IntakeRoute
from ehr.fhir.dependencies import FhirClientDep, fhir_client_of
from ehr.fhir.errors import FhirResourceNotFound
from ehr.platform.audit.recorder import trail_for, write_trail
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE, PublicRoute
from ehr.platform.auth.dependencies import authenticate
from ehr.platform.auth.permissions import Role
from ehr.platform.gateway.decision import decide, note_access
from ehr.platform.gateway.discovery import (
    active_tenant,
    capability_statement,
    openid_configuration,
    public_fhir,
    smart_configuration,
)
from ehr.platform.gateway.forwarding import forward
from ehr.platform.gateway.intake import read_body
from ehr.platform.gateway.interactions import (
    ParsedInteraction,
    check_operation,
    parse_interaction,
    split_tenant_base,
)
from ehr.platform.tenancy.service import SLUG_PATTERN

__all__ = ["SMART_SCOPES_MARKER", "router"]

SMART_SCOPES_MARKER: Final = "smart-scopes"
_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE"]

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=IntakeRoute)


# --- discovery (public) ---------------------------------------------------------------------------


class _TenantSegment(Convertor[str]):
    """A path segment that is a tenant slug (never a resource type: those start upper case)."""

    regex = SLUG_PATTERN.pattern.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("tenant", _TenantSegment())

# The path parameter as documented (the `tenant` convertor already matches only slugs).
TenantSlug = Annotated[str, Path(pattern=SLUG_PATTERN.pattern, max_length=63)]


@router.get("/metadata", dependencies=[PublicRoute], response_class=Response)
async def metadata(resources: ResourcesDep, fhir: FhirClientDep) -> Response:
    """HAPI's CapabilityStatement, rewritten: our base URL, SMART security, allowed operations."""
    return await capability_statement(resources, fhir, public_fhir(resources.settings))


@router.get("/.well-known/smart-configuration", dependencies=[PublicRoute])
async def smart_config(resources: ResourcesDep) -> JSONResponse:
    """SMART App Launch discovery: issuer, JWKS, endpoints, scopes and capabilities."""
    return JSONResponse(smart_configuration(resources.settings))


@router.get("/.well-known/openid-configuration", dependencies=[PublicRoute])
async def openid_config(resources: ResourcesDep) -> JSONResponse:
    """OpenID Connect discovery for the id_tokens of SMART apps (``iss`` = this FHIR base)."""
    return JSONResponse(openid_configuration(resources.settings))


@router.get("/{tenant:tenant}/metadata", dependencies=[PublicRoute], response_class=Response)
async def tenant_metadata(
    tenant: TenantSlug, resources: ResourcesDep, fhir: FhirClientDep
) -> Response:
    """The CapabilityStatement for the tenant-qualified base ``/fhir/{tenant}``; 404 if unknown."""
    slug = await active_tenant(resources.sessionmaker, tenant)
    return await capability_statement(resources, fhir, public_fhir(resources.settings, slug))


@router.get("/{tenant:tenant}/.well-known/smart-configuration", dependencies=[PublicRoute])
async def tenant_smart_config(tenant: TenantSlug, resources: ResourcesDep) -> JSONResponse:
    """SMART discovery for the tenant-qualified base ``/fhir/{tenant}``; 404 if unknown."""
    await active_tenant(resources.sessionmaker, tenant)
    return JSONResponse(smart_configuration(resources.settings))


# --- the gateway ----------------------------------------------------------------------------------


class FallbackRoute(IntakeRoute):
    """A catch-all that yields to every other route, whatever the registration order.

    Starlette takes the first full match; a partial match is used only when nothing matches
    fully. Reporting the catch-all's full matches as partial makes any explicit ``/fhir/...``
    route (discovery, routes added later) win, and the gateway serve the rest. Methods other
    than GET/POST/PUT/PATCH/DELETE find no route (404 OperationOutcome).
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        # One route per method: another method's route is no match at all (not a partial one,
        # which Starlette would take first and answer 405).
        return (Match.PARTIAL if match is Match.FULL else Match.NONE), child_scope


def check_grammar(request: Request) -> ParsedInteraction:
    """The interaction the request asks for, parsed once; non-FHIR paths are refused
    (403/404/400) before authentication: nothing is revealed by it."""
    return parse_interaction(
        request.method,
        split_tenant_base(str(request.path_params.get("path", "")))[1],
        list(request.query_params.multi_items()),
        has_if_none_exist="if-none-exist" in request.headers,
    )


async def gateway(request: Request, path: str = "") -> Response:
    """Every FHIR interaction, to the caller's tenant partition (see the module doc).

    The lean path (docs/adr/0009, cost section): no FastAPI dependency tree — each step is
    called once, in order, on the event loop. ``path`` is declared for the API description; the
    handler reads it from the request (:mod:`ehr.platform.gateway.fast_path` passes only that).
    """
    del path
    resources = get_resources(request)
    settings = resources.settings
    gw = settings.gateway
    parsed = check_grammar(request)
    # Credential, revocation, account and rate limit: one Redis round trip, no PostgreSQL one
    # when the principal is cached (ehr.platform.auth.dependencies.authenticate).
    principal = await authenticate(
        request, resources, rate_limit_per_minute=gw.rate_limit_per_minute
    )
    named_tenant = split_tenant_base(str(request.path_params.get("path", "")))[0]
    if named_tenant is not None and named_tenant != principal.tenant:
        # Unknown, or not the caller's: the same answer, so tenant names are not revealed.
        raise FhirResourceNotFound(f"No FHIR base /fhir/{named_tenant} for this caller")
    if parsed.operation is not None:
        check_operation(
            parsed.operation,
            gw.operations,
            gw.admin_operations,
            is_admin=Role.ADMIN.value in principal.roles,
        )
    trail = trail_for(principal, request)
    intake = await read_body(request, parsed, principal, settings)
    decision, page_id = await decide(resources.redis, principal, intake)
    note = note_access(trail, principal, intake.interaction, decision, page_id)
    try:
        response = await forward(
            request,
            principal,
            resources,
            fhir_client_of(request),
            intake,
            decision,
            page_id=page_id,
            public=public_fhir(settings, named_tenant),
            note=note,
        )
    except Exception as exc:
        status = getattr(exc, "status_code", 500)
        status = status if isinstance(status, int) else 500
        await write_trail(
            resources.sessionmaker,
            trail,
            outcome="denied" if status in (401, 403) else "failure",
            http_status=status,
        )
        raise
    # Written before the response is sent (a failed write is 503, nothing returned); the
    # status is HAPI's: a read of a missing resource is recorded as the 404 it was.
    status = response.status_code
    await write_trail(
        resources.sessionmaker,
        trail,
        outcome="success" if status < 400 else ("denied" if status in (401, 403) else "failure"),
        http_status=status,
    )
    return response


# The route-permission test's marker: access is decided per interaction by the SMART-scope
# policy (the gateway authenticates inside, ``authenticate``: 401 without credentials).
setattr(gateway, PERMISSION_ATTRIBUTE, SMART_SCOPES_MARKER)


for _path in ("", "/{path:path}"):
    for _method in _METHODS:
        router.add_api_route(
            _path,
            gateway,
            methods=[_method],
            response_class=Response,
            include_in_schema=_path != "",
            route_class_override=FallbackRoute,
            name=f"fhir_gateway_{_method.lower()}",
        )
