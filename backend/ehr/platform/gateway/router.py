"""The authenticated FHIR gateway: ``/fhir/...`` for direct FHIR clients (docs/adr/0009).

Every request: authenticate (``CurrentPrincipal``: JWT or API key) → rate limit (Redis) → parse
the interaction (:mod:`ehr.platform.gateway.interactions`; operations on the allow-list only) →
check the
body (415 / 400) → the policy (:mod:`ehr.platform.gateway.enforcement`: SMART scopes, patient
compartment) → caps (``_count``, ``_history``, ``_total``) → audit note → stream to the caller's
partition over the pooled client (:mod:`ehr.fhir.passthrough`) and stream the answer back with
HAPI's address rewritten (:mod:`ehr.platform.gateway.rewrite`). The tenant is the principal's,
never a URL
segment: the public URL is ``/fhir/Patient/123``.

Public: ``/fhir/metadata`` (rewritten CapabilityStatement) and
``/fhir/.well-known/smart-configuration``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode

import structlog
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.background import BackgroundTask
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Match
from starlette.types import Scope

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.core.dependencies import AppResources, ResourcesDep
from ehr.core.errors import BadRequestError, UnsupportedMediaType
from ehr.core.intake import IntakeRoute, check_request_target, read_json
from ehr.fhir import FhirClient
from ehr.fhir.dependencies import FhirClientDep
from ehr.fhir.errors import FhirResourceNotFound, FhirUnavailable, FhirUpstreamError
from ehr.fhir.passthrough import (
    FhirPassThrough,
    UpstreamResponse,
    forwardable_request_headers,
    forwardable_response_headers,
)
from ehr.fhir.transport import Interaction
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.audit.recorder import trail_for, write_trail
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE, PublicRoute
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.discovery import rewrite_capability_statement, smart_configuration
from ehr.platform.gateway.enforcement import enforce
from ehr.platform.gateway.interactions import (
    ParsedInteraction,
    check_operation,
    parse_interaction,
    split_tenant_base,
    takes_body,
)
from ehr.platform.gateway.limits import cap_params, check_rate_limit
from ehr.platform.gateway.pages import (
    EXPORT_KEY_PREFIX,
    check_page,
    remember_pages,
    require_registry,
)
from ehr.platform.gateway.rewrite import StreamRewriter, rewrite_text
from ehr.platform.tenancy.service import RESERVED_SLUGS, SLUG_PATTERN

__all__ = ["SMART_SCOPES_MARKER", "router"]

logger = structlog.get_logger(__name__)

SMART_SCOPES_MARKER: Final = "smart-scopes"
FHIR_JSON: Final = "application/fhir+json"
FORM: Final = "application/x-www-form-urlencoded"
# Bodies the gateway forwards (FHIR JSON/XML, JSON Patch, FHIRPath Patch as Parameters).
FHIR_BODY_TYPES: Final = frozenset(
    {
        "application/fhir+json",
        "application/json",
        "application/json-patch+json",
        "application/fhir+xml",
        "application/xml",
    }
)
_JSON_TYPES: Final = frozenset(
    {"application/fhir+json", "application/json", "application/json-patch+json"}
)
_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Small answers the gateway reads whole (a compartment-checked read, a capability statement).
_SMALL_ANSWER: Final = 16 * 1024 * 1024
_REWRITTEN_HEADERS: Final = frozenset({"location", "content-location"})
_JOB_ID: Final = re.compile(r"[?&]_jobId=([A-Za-z0-9\-]{1,128})")

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=IntakeRoute)


async def smart_scopes(
    principal: Annotated[Principal, Depends(get_current_principal)],
) -> Principal:
    """Authenticated; what the principal may do is decided per interaction by SMART scopes."""
    return principal


# The route-permission test's marker: access is decided by the SMART-scope policy.
setattr(smart_scopes, PERMISSION_ATTRIBUTE, SMART_SCOPES_MARKER)
SmartPrincipal = Annotated[Principal, Depends(smart_scopes)]


def _media_type(request: Request) -> str:
    value = request.headers.get("content-type") or ""
    return value.split(";", 1)[0].strip().lower()


def _metric_interaction(kind: str) -> Interaction:
    mapping: dict[str, Interaction] = {
        "read": "read",
        "vread": "vread",
        "search": "search",
        "create": "create",
        "update": "update",
        "patch": "patch",
        "delete": "delete",
        "history": "history",
        "transaction": "transaction",
        "batch": "batch",
        "capabilities": "metadata",
    }
    return mapping.get(kind, "operation")


def _public_fhir(settings: Settings, tenant: str | None = None) -> str:
    """The public FHIR base: ``/fhir``, or ``/fhir/{tenant}`` when the client used that form."""
    base = f"{settings.gateway.public_base_url.rstrip('/')}/fhir"
    return f"{base}/{tenant}" if tenant else base


def _patient_of(principal: Principal, interaction: ParsedInteraction) -> str | None:
    """The patient this interaction concerns, when known without reading data."""
    if principal.patient_id:
        return principal.patient_id
    if interaction.resource_type == "Patient" and interaction.resource_id:
        return interaction.resource_id
    for name, value in interaction.params:
        if name in {"patient", "subject", "subject:Patient", "patient._id"}:
            ref = value.removeprefix("Patient/")
            if ref and "/" not in ref and "," not in ref:
                return ref
    return None


async def _stream_request(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


# --- discovery (public) ---------------------------------------------------------------------------


class _TenantSegment(Convertor[str]):
    """A path segment that is a tenant slug (never a resource type: those start upper case)."""

    regex = SLUG_PATTERN.pattern.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("tenant", _TenantSegment())


async def _active_tenant(sessionmaker: async_sessionmaker[AsyncSession], slug: str) -> str:
    """``slug`` if it is an active tenant, else 404 (discovery under ``/fhir/{tenant}``)."""
    async with sessionmaker() as session:
        status = await session.scalar(select(Tenant.status).where(Tenant.slug == slug))
    if status != "active" or slug in RESERVED_SLUGS:
        raise FhirResourceNotFound(f"No FHIR base /fhir/{slug}")
    return slug


async def _capability_statement(resources: AppResources, fhir: FhirClient, public: str) -> Response:
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
        statement = json.loads(await upstream.read(_SMALL_ANSWER))
    except ValueError as exc:
        raise FhirUpstreamError("The FHIR server's CapabilityStatement is not JSON") from exc
    finally:
        await upstream.aclose()
    body = rewrite_capability_statement(
        statement, settings, passthrough.hapi_bases(tenant), public=public
    )
    return JSONResponse(body, media_type=FHIR_JSON)


# The path parameter as documented (the `tenant` convertor already matches only slugs).
TenantSlug = Annotated[str, Path(pattern=SLUG_PATTERN.pattern, max_length=63)]


@router.get("/metadata", dependencies=[PublicRoute], response_class=Response)
async def metadata(resources: ResourcesDep, fhir: FhirClientDep) -> Response:
    """HAPI's CapabilityStatement, rewritten: our base URL, SMART security, allowed operations."""
    return await _capability_statement(resources, fhir, _public_fhir(resources.settings))


@router.get("/.well-known/smart-configuration", dependencies=[PublicRoute])
async def smart_config(resources: ResourcesDep) -> JSONResponse:
    """SMART App Launch discovery: issuer, JWKS, endpoints, scopes and capabilities."""
    return JSONResponse(smart_configuration(resources.settings))


@router.get("/{tenant:tenant}/metadata", dependencies=[PublicRoute], response_class=Response)
async def tenant_metadata(
    tenant: TenantSlug, resources: ResourcesDep, fhir: FhirClientDep
) -> Response:
    """The CapabilityStatement for the tenant-qualified base ``/fhir/{tenant}``; 404 if unknown."""
    slug = await _active_tenant(resources.sessionmaker, tenant)
    return await _capability_statement(resources, fhir, _public_fhir(resources.settings, slug))


@router.get("/{tenant:tenant}/.well-known/smart-configuration", dependencies=[PublicRoute])
async def tenant_smart_config(tenant: TenantSlug, resources: ResourcesDep) -> JSONResponse:
    """SMART discovery for the tenant-qualified base ``/fhir/{tenant}``; 404 if unknown."""
    await _active_tenant(resources.sessionmaker, tenant)
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


async def check_grammar(request: Request) -> None:
    """Refuse non-FHIR paths (403/404/400) before authentication: nothing is revealed by it."""
    parse_interaction(
        request.method,
        split_tenant_base(str(request.path_params.get("path", "")))[1],
        list(request.query_params.multi_items()),
        has_if_none_exist="if-none-exist" in request.headers,
    )


async def gateway(
    request: Request,
    principal: SmartPrincipal,
    audit: PhiAudit,
    resources: ResourcesDep,
    fhir: FhirClientDep,
    path: str = "",
) -> Response:
    """Every FHIR interaction, to the caller's tenant partition (see the module doc)."""
    settings = resources.settings
    gw = settings.gateway
    named_tenant, path = split_tenant_base(path)
    if named_tenant is not None and named_tenant != principal.tenant:
        # Unknown, or not the caller's: the same answer, so tenant names are not revealed.
        raise FhirResourceNotFound(f"No FHIR base /fhir/{named_tenant} for this caller")
    public = _public_fhir(settings, named_tenant)
    await check_rate_limit(resources.redis, str(principal.subject), gw.rate_limit_per_minute)

    query = list(request.query_params.multi_items())
    parsed = parse_interaction(
        request.method, path, query, has_if_none_exist="if-none-exist" in request.headers
    )
    if parsed.operation is not None:
        check_operation(
            parsed.operation,
            gw.operations,
            gw.admin_operations,
            is_admin=Role.ADMIN.value in principal.roles,
        )

    if parsed.kind == "create" and parsed.conditional:
        # The criteria of a conditional create are its parameters: the policy checks (and in
        # patient context constrains) them like a search's, and they go back into the header.
        criteria = request.headers.get("if-none-exist", "").removeprefix("?")
        parsed = parsed.with_params(parse_qsl(criteria, keep_blank_values=True))
        if not parsed.params:
            raise BadRequestError("If-None-Exist needs search parameters")

    media = _media_type(request)
    content: bytes | AsyncIterable[bytes] | None = None
    bundle: Mapping[str, Any] | None = None
    form_params: list[tuple[str, str]] | None = None
    resource: Mapping[str, Any] | None = None
    if parsed.kind == "search" and parsed.method == "POST":
        if media != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}")
        raw = await request.body()
        check_request_target(b"", raw)  # the form is a query: UTF-8 once decoded, no NUL
        try:
            form_params = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequestError("The search form is not valid UTF-8") from None
        parsed = parsed.with_params([*parsed.params, *form_params])
    elif parsed.method in {"POST", "PUT", "PATCH"}:
        if media not in FHIR_BODY_TYPES and (takes_body(parsed) or media):
            raise UnsupportedMediaType(
                "The request body must be a FHIR resource (application/fhir+json)"
            )
        if parsed.kind == "patch" and media not in {
            "application/json-patch+json",
            *FHIR_BODY_TYPES,
        }:
            raise UnsupportedMediaType(
                "A patch is JSON Patch or a FHIRPath Patch Parameters resource"
            )
        length_header = request.headers.get("content-length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        small = length is not None and length <= gw.validate_json_max_bytes
        # Patient context: the policy checks create/update bodies, so they are read (bounded by
        # api.max_body_bytes through the body-size middleware).
        must_read = parsed.kind == "transaction" or (
            principal.patient_id is not None and parsed.kind in {"create", "update"}
        )
        if must_read or (small and media in _JSON_TYPES):
            raw = await request.body()
            if media not in _JSON_TYPES:
                raise UnsupportedMediaType("This request body must be FHIR JSON")
            document = await read_json(raw, max_depth=settings.api.max_json_depth)
            if parsed.kind == "transaction":
                bundle_type = document.get("type") if isinstance(document, dict) else None
                if (
                    not isinstance(document, dict)
                    or document.get("resourceType") != "Bundle"
                    or bundle_type not in {"transaction", "batch"}
                ):
                    raise BadRequestError("POST to the base takes a transaction or batch Bundle")
                bundle = document
                if bundle_type == "batch":
                    parsed = replace(parsed, kind="batch")
            elif parsed.kind in {"create", "update"} and isinstance(document, dict):
                resource = document
            content = raw
        else:
            content = _stream_request(request)

    tenant = principal.tenant
    # Search pages and export jobs belong to the principal whose search/kick-off created them
    # (tenant AND user/key): not even another user of the same tenant may follow them.
    owner = f"{tenant}:{principal.subject}"
    passthrough = FhirPassThrough(fhir)
    page_id = next((value for name, value in parsed.params if name == "_getpages"), None)
    if page_id is not None:
        await check_page(resources.redis, owner, page_id)
    decision = enforce(principal, parsed, bundle=bundle, resource=resource)
    interaction = decision.interaction
    if interaction.operation == "$export-poll-status":
        job_id = next((value for name, value in interaction.params if name == "_jobId"), "")
        await check_page(resources.redis, owner, job_id, prefix=EXPORT_KEY_PREFIX)

    details: dict[str, Any] = {"method": interaction.method}
    if interaction.operation:
        details["operation"] = interaction.operation
    if interaction.conditional:
        details["conditional"] = True
    if page_id is not None:
        details["page"] = True
    if interaction.kind in {"search", "history"}:
        details["params"] = sorted({name for name, _ in interaction.params})
    # A read the policy turned into a compartment search is still audited as the read it was.
    audited = parsed if decision.read_as_search else interaction
    audit.access(
        f"fhir:{audited.kind}",
        resource_type=audited.resource_type,
        resource_id=audited.resource_id,
        patient_id=_patient_of(principal, audited),
        details=details,
    )

    timeout = gw.upstream_timeout_seconds
    headers = forwardable_request_headers(list(request.headers.items()))

    if decision.read_as_search:
        # Patient context: a read became a compartment search; answer its single match or 404.
        found = await _compartment_search(passthrough, tenant, interaction, parsed, timeout)
        return _single_resource(found, parsed, public, passthrough.hapi_bases(tenant))

    params = cap_params(interaction.kind, interaction.params, gw)
    if interaction.kind == "create":
        if interaction.conditional:
            headers["if-none-exist"] = urlencode(params, safe=":|,/")
        params = ()
    if interaction.kind == "search":
        headers["cache-control"] = "no-cache"
    if form_params is not None:
        # POST _search: the (capped) parameters go in the form body, not the URL.
        content = urlencode(params).encode()
        headers["content-type"] = FORM
        params = ()
    returns_data = interaction.kind in {"search", "history"} or interaction.operation in {
        "$everything"
    }

    async def audit_result(rewriter: StreamRewriter, status: int) -> None:
        # The patients this answer named, written before its last bytes are released: if the
        # record cannot be written the stream is cut (the client gets no complete answer).
        if status != 200 or not rewriter.patient_ids:
            return
        trail = trail_for(principal, request)
        ids = sorted(rewriter.patient_ids)
        trail.access(
            f"fhir:{interaction.kind}.result",
            resource_type=interaction.resource_type,
            resource_id=interaction.resource_id,
            patient_id=ids[0] if len(ids) == 1 else None,
            details={"patients": ids, "truncated": rewriter.patients_truncated},
        )
        await write_trail(resources.sessionmaker, trail, outcome="success", http_status=status)

    if interaction.operation == "$export":
        # Its job must be bound to the caller: no kick-off while the registry is down (ADR 0013).
        await require_registry(resources.redis)
    path_out = "" if page_id is not None else interaction.path
    upstream = await passthrough.open(
        interaction.method,
        tenant,
        path_out,
        interaction=_metric_interaction(interaction.kind),
        params=params,
        headers=headers,
        content=content,
        timeout=timeout,
    )
    return await _respond(
        upstream,
        passthrough.hapi_bases(tenant),
        public,
        capture_pages=interaction.kind in {"search", "history", "operation"},
        redis=resources.redis,
        owner=owner,
        page_ttl=gw.page_ttl_seconds,
        export_kickoff=interaction.operation == "$export",
        on_complete=audit_result if returns_data else None,
    )


for _path in ("", "/{path:path}"):
    for _method in _METHODS:
        router.add_api_route(
            _path,
            gateway,
            methods=[_method],
            response_class=Response,
            dependencies=[Depends(check_grammar)],
            include_in_schema=_path != "",
            route_class_override=FallbackRoute,
            name=f"fhir_gateway_{_method.lower()}",
        )


async def _compartment_search(
    passthrough: FhirPassThrough,
    tenant: str,
    interaction: ParsedInteraction,
    read: ParsedInteraction,
    upstream_timeout: float,
) -> dict[str, Any] | None:
    """The resource ``read`` asked for, if the compartment-constrained search finds it."""
    params = [*interaction.params]
    if not any(name == "_id" for name, _ in params):
        params.append(("_id", read.resource_id or ""))
    upstream = await passthrough.open(
        "GET",
        tenant,
        interaction.path,
        interaction="search",
        params=params,
        headers={"accept": FHIR_JSON, "cache-control": "no-cache"},
        timeout=upstream_timeout,
    )
    try:
        if upstream.status_code >= 500:
            raise FhirUpstreamError("The FHIR server failed")
        if upstream.status_code != 200:
            return None
        bundle = json.loads(await upstream.read(_SMALL_ANSWER))
    except ValueError as exc:
        raise FhirUpstreamError("The FHIR server answered with something that is not JSON") from exc
    finally:
        await upstream.aclose()
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (
            isinstance(resource, dict)
            and resource.get("resourceType") == read.resource_type
            and resource.get("id") == read.resource_id
        ):
            return resource
    return None


def _single_resource(
    resource: dict[str, Any] | None,
    interaction: ParsedInteraction,
    public: str,
    hapi_bases: tuple[str, str],
) -> Response:
    if resource is None:
        raise FhirResourceNotFound("The FHIR resource does not exist")
    body = rewrite_text(json.dumps(resource, ensure_ascii=False), hapi_bases, public)
    headers: dict[str, str] = {}
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if isinstance(version, str):
        headers["ETag"] = f'W/"{version}"'
    if isinstance(meta, dict) and isinstance(meta.get("lastUpdated"), str):
        headers["Last-Modified"] = meta["lastUpdated"]
    headers["Content-Location"] = (
        f"{public}/{interaction.resource_type}/{interaction.resource_id}"
        + (f"/_history/{version}" if isinstance(version, str) else "")
    )
    return Response(body.encode(), media_type=FHIR_JSON, headers=headers)


def _is_textual(media_type: str | None) -> bool:
    """FHIR JSON/XML, NDJSON and text are rewritten; other bodies (a Binary's own bytes: PDF,
    images) pass through untouched, so no byte of a document is ever changed."""
    if not media_type:
        return True
    media = media_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media.endswith(("+json", "/json", "+xml", "/xml", "ndjson"))
        or media == "application/x-ndjson"
    )


async def _respond(
    upstream: UpstreamResponse,
    hapi_bases: tuple[str, str],
    public: str,
    *,
    capture_pages: bool,
    redis: Redis,
    owner: str,
    page_ttl: int,
    export_kickoff: bool = False,
    on_complete: Callable[[StreamRewriter, int], Awaitable[None]] | None = None,
) -> Response:
    """Stream HAPI's answer back with its address rewritten (headers and body)."""
    status = upstream.status_code
    if status >= 500:
        await upstream.aclose()
        logger.warning("fhir.gateway.upstream_error", upstream_status=status)
        if status in {502, 503, 504}:
            raise FhirUnavailable("The FHIR server is unavailable")
        raise FhirUpstreamError("The FHIR server failed to process the request")
    headers = [
        (
            name,
            rewrite_text(value, hapi_bases, public)
            if name.lower() in _REWRITTEN_HEADERS
            else value,
        )
        for name, value in forwardable_response_headers(upstream.headers)
    ]
    if export_kickoff and status == 202:
        poll = upstream.headers.get("content-location", "")
        jobs = [match.group(1) for match in _JOB_ID.finditer(poll)]
        await remember_pages(redis, owner, jobs, page_ttl, prefix=EXPORT_KEY_PREFIX, required=True)
    media_type = upstream.headers.get("content-type")
    rewriter = StreamRewriter(
        hapi_bases, public, capture_pages=capture_pages, capture_patients=on_complete is not None
    )
    known: set[str] = set()

    async def raw_body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.body():
                yield chunk
        finally:
            await upstream.aclose()

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.body():
                out = rewriter.feed(chunk)
                if rewriter.page_ids - known:
                    fresh = rewriter.page_ids - known
                    await remember_pages(redis, owner, fresh, page_ttl)
                    known.update(fresh)
                if out:
                    yield out
            tail = rewriter.flush()
            if rewriter.page_ids - known:
                await remember_pages(redis, owner, rewriter.page_ids - known, page_ttl)
            if on_complete is not None:
                await on_complete(rewriter, status)
            if tail:
                yield tail
        finally:
            await upstream.aclose()

    response = StreamingResponse(
        body() if _is_textual(media_type) else raw_body(),
        status_code=status,
        media_type=media_type,
        background=BackgroundTask(upstream.aclose),
    )
    for name, value in headers:
        if name.lower() == "content-type":
            continue
        response.headers.append(name, value)
    return response
