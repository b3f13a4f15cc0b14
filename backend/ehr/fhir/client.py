"""The FHIR client: one pooled connection to HAPI per application, bound to a tenant per request.

Usage::

    fhir = FhirClient(settings.fhir)             # once, in the app lifespan
    tenant_fhir = fhir.for_tenant(principal.tenant)
    patient = await tenant_fhir.read("Patient", patient_id)
    bundle = await tenant_fhir.search("Observation", {"subject": f"Patient/{patient_id}"})
    found = await tenant_fhir.search_all("Condition", {"patient": "Patient/1"}, max_pages=3)
    labs = await tenant_fhir.resources("Observation").search(category="laboratory").fetch()
    await fhir.aclose()                          # at shutdown

Business code only ever holds a :class:`TenantFhirClient`; it never builds HAPI URLs and never sees
HTTP status codes: failures are the :mod:`ehr.fhir.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self

import httpx
import structlog
from fhirpy.lib import AsyncFHIRResource, AsyncFHIRSearchSet

from ehr.core.config import FhirSettings
from ehr.fhir.addressing import (
    search_condition,
    tenant_base_url,
    tenant_page_url,
    validate_id,
    validate_operation,
    validate_resource_type,
    validate_tenant,
    weak_etag,
)
from ehr.fhir.aiohttp_transport import AiohttpTransport
from ehr.fhir.bundles import next_link, parse_location
from ehr.fhir.errors import (
    FhirConflict,
    FhirInvalidRequest,
    FhirPreconditionFailed,
    FhirUpstreamError,
)
from ehr.fhir.paging import SearchResult, follow_pages, search_result, with_page_size
from ehr.fhir.query import TenantQueryClient
from ehr.fhir.transport import (
    FhirTransport,
    HttpBackend,
    HttpMethod,
    Interaction,
    QueryParams,
    build_http_client,
    pool_limits,
)

__all__ = ["FhirClient", "TenantFhirClient"]

logger = structlog.get_logger(__name__)

_RETURN_REPRESENTATION = {"Prefer": "return=representation"}


class FhirClient:
    """The application's one client for HAPI FHIR; create it once per app lifetime.

    Owns one pooled keep-alive :class:`httpx.AsyncClient` (limits and timeouts from
    :class:`~ehr.core.config.FhirSettings`). ``http_backend`` chooses what carries the bytes:
    httpx's
    own transport (``"httpcore"``, the default) or one pooled aiohttp session (``"aiohttp"``,
    cheaper per request; see docs/adr/0001-fhir-client.md). Tests may inject an ``http_client``
    (which the caller then owns and closes) or a ``transport`` for the client we build.
    """

    def __init__(
        self,
        settings: FhirSettings,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_backend: HttpBackend = "httpcore",
    ) -> None:
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        # Fail at start-up, not on the first request, if the configured tenant is malformed.
        validate_tenant(settings.default_tenant)
        self._settings = settings
        self._owns_http = http_client is None
        if http_client is None and transport is None and http_backend == "aiohttp":
            transport = AiohttpTransport(limits=pool_limits(settings))
        # The gateway's pass-through sends over the aiohttp session directly when there is one.
        self._raw_transport = transport if isinstance(transport, AiohttpTransport) else None
        self._http = http_client or build_http_client(
            settings, transport=transport, backend=http_backend
        )
        self._transport = FhirTransport(self._http)

    @property
    def settings(self) -> FhirSettings:
        """The settings this client was built from."""
        return self._settings

    @property
    def default_tenant(self) -> str:
        """The tenant used by code paths without an authenticated principal (``DEFAULT``)."""
        return self._settings.default_tenant

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled HTTP client shared by every tenant client (exposed for tests)."""
        return self._http

    @property
    def raw_transport(self) -> AiohttpTransport | None:
        """The aiohttp transport under :attr:`http`, when the client was built on one."""
        return self._raw_transport

    def for_tenant(self, tenant: str) -> TenantFhirClient:
        """A client whose every request goes to HAPI partition ``tenant``.

        Raises :class:`~ehr.fhir.errors.FhirInvalidTenant` unless ``tenant`` matches
        ``^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$``. Cheap: shares this client's connection pool.
        """
        return TenantFhirClient(self._transport, base_url=self._settings.base_url, tenant=tenant)

    async def ping(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - httpx's own timeout, raised as FhirTimeout
    ) -> None:
        """Check that HAPI answers (``GET {base}/{default_tenant}/metadata?_summary=true``).

        For ``/ready``. Returns ``None`` when HAPI serves its CapabilityStatement; raises
        :class:`~ehr.fhir.errors.FhirUnavailable`, :class:`~ehr.fhir.errors.FhirTimeout` or
        another :mod:`ehr.fhir.errors` error otherwise. ``timeout`` overrides the settings' timeout.
        """
        tenant = self.default_tenant
        response = await self._transport.send(
            "GET",
            f"{tenant_base_url(self._settings.base_url, tenant)}/metadata",
            interaction="metadata",
            tenant=tenant,
            params={"_summary": "true"},
            timeout=timeout,
        )
        if _json_object(response).get("resourceType") != "CapabilityStatement":
            raise FhirUpstreamError("The FHIR server did not return its CapabilityStatement")

    async def aclose(self) -> None:
        """Close the connection pool (unless the HTTP client was injected by the caller)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


# HAPI: a no-store search is run synchronously and not persisted for paging.
_SINGLE_PAGE: Final[Mapping[str, str]] = {"cache-control": "no-store"}


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object; :class:`FhirUpstreamError` if it is not one."""
    try:
        body = response.json()
    except ValueError as exc:
        logger.warning("fhir.response.invalid", upstream_status=response.status_code)
        raise FhirUpstreamError("The FHIR server answered with something that is not JSON") from exc
    if not isinstance(body, dict):
        logger.warning("fhir.response.invalid", upstream_status=response.status_code)
        raise FhirUpstreamError("The FHIR server answered with something that is not a resource")
    return body


def _resource_type_of(resource: Mapping[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirInvalidRequest("The resource has no resourceType")
    return validate_resource_type(resource_type)


def _check_bundle(bundle: Mapping[str, Any], bundle_type: Literal["transaction", "batch"]) -> None:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != bundle_type:
        raise FhirInvalidRequest(f"Expected a Bundle of type '{bundle_type}'")


class TenantFhirClient:
    """All FHIR interactions for one tenant (HAPI partition). Get one from
    :meth:`FhirClient.for_tenant`.

    Every method validates what it puts into the URL (type, id, operation) and raises an
    :mod:`ehr.fhir.errors` error for any failure: ``FhirResourceNotFound`` (404),
    ``FhirResourceGone`` (410), ``FhirPreconditionFailed`` (412), ``FhirBadRequest`` (400),
    ``FhirUnprocessable`` (422), ``FhirConflict`` (409), ``FhirUpstreamError`` (5xx),
    ``FhirUnavailable``/``FhirTimeout`` (HAPI unreachable or slow).
    Resources are plain JSON dicts.
    """

    def __init__(self, transport: FhirTransport, *, base_url: str, tenant: str) -> None:
        self._transport = transport
        self._base_url = base_url
        self._tenant = validate_tenant(tenant)
        self._root = tenant_base_url(base_url, tenant)
        self._query_client: TenantQueryClient | None = None

    @property
    def tenant(self) -> str:
        """The HAPI partition this client is bound to."""
        return self._tenant

    def __repr__(self) -> str:
        return f"<TenantFhirClient tenant={self._tenant!r}>"

    async def _send(
        self,
        method: HttpMethod,
        path: str,
        *,
        interaction: Interaction,
        resource_type: str | None = None,
        resource_id: str | None = None,
        params: QueryParams | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self._transport.send(
            method,
            f"{self._root}/{path}" if path else self._root,
            interaction=interaction,
            tenant=self._tenant,
            resource_type=resource_type,
            resource_id=resource_id,
            params=params,
            body=body,
            headers=headers,
        )

    # --- instance-level interactions --------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """The current version of ``{resource_type}/{resource_id}``.

        Raises ``FhirResourceNotFound`` if it never existed, ``FhirResourceGone`` if deleted.
        """
        path = f"{validate_resource_type(resource_type)}/{validate_id(resource_id)}"
        response = await self._send(
            "GET", path, interaction="read", resource_type=resource_type, resource_id=resource_id
        )
        return _json_object(response)

    async def vread(self, resource_type: str, resource_id: str, version_id: str) -> dict[str, Any]:
        """Version ``version_id`` of ``{resource_type}/{resource_id}`` (``_history/{vid}``)."""
        path = (
            f"{validate_resource_type(resource_type)}/{validate_id(resource_id)}"
            f"/_history/{validate_id(version_id, what='version id')}"
        )
        response = await self._send(
            "GET", path, interaction="vread", resource_type=resource_type, resource_id=resource_id
        )
        return _json_object(response)

    async def create(
        self,
        resource: Mapping[str, Any],
        *,
        if_none_exist: str | Mapping[str, str | Sequence[str]] | None = None,
    ) -> dict[str, Any]:
        """Create ``resource`` (HAPI assigns the id) and return it as stored.

        With ``if_none_exist`` (a search such as ``{"identifier": "urn:oid:1.2|123"}`` or
        ``"identifier=urn:oid:1.2|123"``) this is a FHIR conditional create: if exactly one
        resource matches, it is returned unchanged and nothing is created; if several match,
        ``FhirPreconditionFailed`` is raised.
        """
        resource_type = _resource_type_of(resource)
        headers = dict(_RETURN_REPRESENTATION)
        if if_none_exist is not None:
            headers["If-None-Exist"] = search_condition(if_none_exist)
        response = await self._send(
            "POST",
            resource_type,
            interaction="create",
            resource_type=resource_type,
            body=resource,
            headers=headers,
        )
        if response.content:
            stored = _json_object(response)
            if stored.get("resourceType") == resource_type:
                return stored
        # A conditional create that matched may answer without the resource: read it back.
        location = response.headers.get("Location") or response.headers.get("Content-Location")
        where = parse_location(location) if location else None
        if where is not None and where.resource_type == resource_type:
            return await self.read(resource_type, where.resource_id)
        raise FhirUpstreamError("The FHIR server did not return the created resource")

    async def update(
        self, resource: Mapping[str, Any], *, if_match: str | None = None
    ) -> dict[str, Any]:
        """Replace ``resource`` (which must carry ``resourceType`` and ``id``) and return it.

        ``if_match`` (a version id such as ``"3"`` or an ETag ``W/"3"``) makes the update
        versioned: if the stored version is no longer that one, ``FhirPreconditionFailed`` is
        raised and nothing changes (HAPI answers such a conflict with 409 or 412; both are
        reported as ``FhirPreconditionFailed``). HAPI refuses client-chosen ids, so updating an
        id that does not exist fails.
        """
        resource_type = _resource_type_of(resource)
        resource_id = resource.get("id")
        if not isinstance(resource_id, str):
            raise FhirInvalidRequest("An update needs the resource's id")
        headers = dict(_RETURN_REPRESENTATION)
        if if_match is not None:
            headers["If-Match"] = weak_etag(if_match)
        try:
            response = await self._send(
                "PUT",
                f"{resource_type}/{validate_id(resource_id)}",
                interaction="update",
                resource_type=resource_type,
                resource_id=resource_id,
                body=resource,
                headers=headers,
            )
        except FhirConflict as exc:
            # HAPI reports a lost If-Match race as 409 (HAPI-0989 "not the current version");
            # FHIR says 412, and callers of a versioned update expect exactly that.
            if if_match is None:
                raise
            raise FhirPreconditionFailed(
                "The FHIR resource changed since the version given in If-Match", extra=exc.extra
            ) from exc
        return _json_object(response)

    async def delete(self, resource_type: str, resource_id: str) -> None:
        """Delete ``{resource_type}/{resource_id}``; later reads raise ``FhirResourceGone``.

        Raises ``FhirConflict`` when other resources still reference it (referential integrity).
        """
        path = f"{validate_resource_type(resource_type)}/{validate_id(resource_id)}"
        await self._send(
            "DELETE",
            path,
            interaction="delete",
            resource_type=resource_type,
            resource_id=resource_id,
        )

    # --- type- and system-level interactions ------------------------------------------------

    async def search(
        self,
        resource_type: str,
        params: QueryParams | None = None,
        *,
        single_page: bool = False,
    ) -> dict[str, Any]:
        """Search ``resource_type`` and return the first page as a ``searchset`` Bundle.

        ``params`` is a mapping (a sequence value repeats the parameter: AND semantics), a list
        of ``(name, value)`` pairs, or a query string. Follow pages with :meth:`next_page`.

        ``single_page=True`` is for a caller that reads only this page (a summary section):
        HAPI runs the search synchronously and stores no search for paging
        (``Cache-Control: no-store``) — a third less work for HAPI and PostgreSQL — and the
        Bundle has no ``next`` link and a ``total`` that counts only what it loaded, so ask for
        one more than you show (``_count=n+1``) to know whether more exist.
        """
        response = await self._send(
            "GET",
            validate_resource_type(resource_type),
            interaction="search",
            resource_type=resource_type,
            params=params,
            headers=_SINGLE_PAGE if single_page else None,
        )
        return _json_object(response)

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        """The page after ``bundle`` (its ``link`` with relation ``next``), or ``None``.

        The link is re-anchored on our own base URL and must stay within this tenant.
        """
        next_url = next_link(bundle)
        if next_url is None:
            return None
        url, query = tenant_page_url(next_url, base_url=self._base_url, tenant=self._tenant)
        response = await self._transport.send(
            "GET", url, interaction="search", tenant=self._tenant, params=query
        )
        return _json_object(response)

    async def search_all(
        self,
        resource_type: str,
        params: QueryParams | None = None,
        *,
        page_size: int | None = None,
        max_pages: int,
    ) -> SearchResult:
        """Search ``resource_type`` and read at most ``max_pages`` pages (``_count=page_size``).

        Returns the matches of ``resource_type``, the other resources of the pages (those
        ``_include``-d) by ``Type/id``, and ``complete=False`` when a ``next`` page was left
        unread. See :mod:`ehr.fhir.paging`.
        """
        first = await self.search(resource_type, with_page_size(params, page_size))
        pages, complete = await follow_pages(first, self.next_page, max_pages=max_pages)
        return search_result(pages, resource_type, complete=complete)

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        params: QueryParams | None = None,
    ) -> dict[str, Any]:
        """A ``history`` Bundle: of one resource, of a resource type, or of the whole tenant."""
        if resource_id is not None and resource_type is None:
            raise FhirInvalidRequest("Instance history needs the resource type")
        segments = []
        if resource_type is not None:
            segments.append(validate_resource_type(resource_type))
        if resource_id is not None:
            segments.append(validate_id(resource_id))
        segments.append("_history")
        response = await self._send(
            "GET",
            "/".join(segments),
            interaction="history",
            resource_type=resource_type,
            resource_id=resource_id,
            params=params,
        )
        return _json_object(response)

    async def transaction(
        self, bundle: Mapping[str, Any], *, return_resources: bool = False
    ) -> dict[str, Any]:
        """Post a ``transaction`` Bundle: all entries succeed together or none does.

        Returns the ``transaction-response`` Bundle; each ``entry.response.location`` holds the
        id HAPI assigned (``urn:uuid:`` references between entries are resolved by HAPI). With
        ``return_resources`` the entries also carry the stored resources.
        """
        _check_bundle(bundle, "transaction")
        response = await self._send(
            "POST",
            "",
            interaction="transaction",
            body=bundle,
            headers=_RETURN_REPRESENTATION if return_resources else None,
        )
        return _json_object(response)

    async def batch(
        self, bundle: Mapping[str, Any], *, return_resources: bool = False
    ) -> dict[str, Any]:
        """Post a ``batch`` Bundle: entries are processed independently.

        Returns the ``batch-response`` Bundle; check each ``entry.response.status`` (a failed
        entry does not raise).
        """
        _check_bundle(bundle, "batch")
        response = await self._send(
            "POST",
            "",
            interaction="batch",
            body=bundle,
            headers=_RETURN_REPRESENTATION if return_resources else None,
        )
        return _json_object(response)

    async def operation(
        self,
        name: str,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        params: QueryParams | None = None,
        body: Mapping[str, Any] | None = None,
        method: Literal["GET", "POST"] = "GET",
    ) -> dict[str, Any]:
        """Invoke a FHIR operation (``name`` with or without ``$``, e.g. ``"$everything"``).

        System level without ``resource_type``; type level with it; instance level with both.
        ``params`` go to the query string; ``body`` (usually a ``Parameters`` resource) needs
        ``method="POST"``. Returns the operation's JSON result (Bundle, Parameters, ...).
        """
        if body is not None and method != "POST":
            raise FhirInvalidRequest("An operation with a body must be invoked with POST")
        if resource_id is not None and resource_type is None:
            raise FhirInvalidRequest("An instance operation needs the resource type")
        segments = []
        if resource_type is not None:
            segments.append(validate_resource_type(resource_type))
        if resource_id is not None:
            segments.append(validate_id(resource_id))
        segments.append(validate_operation(name))
        response = await self._send(
            method,
            "/".join(segments),
            interaction="operation",
            resource_type=resource_type,
            resource_id=resource_id,
            params=params,
            body=body,
        )
        return _json_object(response) if response.content else {}

    # --- fhirpy query API -------------------------------------------------------------------

    @property
    def _query(self) -> TenantQueryClient:
        if self._query_client is None:
            self._query_client = TenantQueryClient(
                self._transport, base_url=self._base_url, tenant=self._tenant
            )
        return self._query_client

    def resources(self, resource_type: str) -> AsyncFHIRSearchSet[AsyncFHIRResource]:
        """A fhirpy search set for ``resource_type`` in this tenant (``.search()``, ``.include()``,
        ``.sort()``, ``.limit()``, ``.fetch()``, ``.fetch_all()``, ``.count()``, async iteration).

        Its requests go through the same pooled connection, error translation, metrics and
        request id as every other method here.
        """
        return self._query.resources(validate_resource_type(resource_type))

    def resource(self, resource_type: str, **fields: Any) -> AsyncFHIRResource:
        """A new fhirpy resource object in this tenant (``await r.save()`` creates it)."""
        return self._query.resource(validate_resource_type(resource_type), **fields)
