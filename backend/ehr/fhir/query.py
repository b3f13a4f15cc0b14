"""fhirpy's query API (search sets, ``SQ``, ``include``, paging) on top of our pooled transport.

Stock :class:`fhirpy.AsyncFHIRClient` opens a new ``aiohttp.ClientSession`` (a new TCP connection)
for every request, bypasses our error translation, metrics and request id, and is invisible to
respx. Every HTTP call fhirpy makes, from ``fetch()`` to paging and ``save()``, funnels through
``AsyncClient._do_request(method, path, data, params, extra_headers, returning_status=...)``, so
:class:`TenantQueryClient` overrides exactly that method and sends the request through
:class:`~ehr.fhir.transport.FhirTransport` instead. See docs/adr/0001-fhir-client.md.

Errors are therefore ours (:mod:`ehr.fhir.errors`), not fhirpy's; the only fhirpy exceptions left
are those fhirpy raises without HTTP (``SearchSet.get()`` finding zero or several resources).
"""

from __future__ import annotations

import json
from typing import Any, Literal, overload
from urllib.parse import quote, urlencode

from fhirpy import AsyncFHIRClient
from fhirpy.base.utils import AttrDict

from ehr.fhir.addressing import relative_path, tenant_base_url, tenant_page_url
from ehr.fhir.errors import FhirInvalidRequest
from ehr.fhir.transport import FhirTransport, HttpMethod, Interaction

__all__ = ["TenantQueryClient"]

_METHODS: dict[str, HttpMethod] = {
    "GET": "GET",
    "POST": "POST",
    "PUT": "PUT",
    "PATCH": "PATCH",
    "DELETE": "DELETE",
}
_WRITE_INTERACTIONS: dict[HttpMethod, Interaction] = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _interaction(method: HttpMethod, path: str) -> Interaction:
    """The metric label for a request fhirpy makes (``path`` is relative to the tenant base)."""
    segments = [s for s in path.split("/") if s]
    if any(s.startswith("$") for s in segments):
        return "operation"
    if "_history" in segments:
        return "vread" if len(segments) == 4 and method == "GET" else "history"
    if not segments:
        # The tenant base itself: a paging link (GET) or a transaction/batch (POST).
        return "search" if method == "GET" else "transaction"
    if method == "GET" or (method == "POST" and segments[-1] == "_search"):
        return "read" if len(segments) == 2 else "search"
    return _WRITE_INTERACTIONS[method]


def _encode_params(params: dict[Any, Any]) -> str:
    """fhirpy's query encoding (repeated keys for lists, ``:`` and ``,`` kept), typed."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = list(dict.fromkeys(value)) if isinstance(value, list) else [value]
        pairs.extend((str(key), str(v)) for v in values)
    return urlencode(pairs, safe=":,", quote_via=quote)


class TenantQueryClient(AsyncFHIRClient):
    """A fhirpy client bound to one tenant whose HTTP goes through our :class:`FhirTransport`.

    Created by :meth:`ehr.fhir.TenantFhirClient.resources`; use that rather than this class.
    """

    def __init__(self, transport: FhirTransport, *, base_url: str, tenant: str) -> None:
        super().__init__(tenant_base_url(base_url, tenant))
        self._transport = transport
        self._base_url = base_url
        self._tenant = tenant

    def _resolve(self, path: str, params: dict[str, Any] | None) -> tuple[str, str]:
        """``(url, relative path)`` for a fhirpy path or absolute paging link, query included."""
        if path.startswith(("http://", "https://")):
            url, query = tenant_page_url(path, base_url=self._base_url, tenant=self._tenant)
            relative = url.removeprefix(self.url).lstrip("/")
        else:
            if "?" in path or "#" in path:
                raise FhirInvalidRequest("The FHIR request path is not valid")
            relative = relative_path(path) if path.strip("/") else ""
            url = f"{self.url}/{relative}" if relative else self.url
            query = ""
        extra_query = _encode_params(params) if params else ""
        query = "&".join(q for q in (query, extra_query) if q)
        return (f"{url}?{query}" if query else url), relative

    @overload
    async def _do_request(
        self,
        method: str,
        path: str,
        data: dict[Any, Any] | None = None,
        params: dict[Any, Any] | None = None,
        extra_headers: dict[Any, Any] | None = None,
        *,
        returning_status: Literal[False] = False,
    ) -> Any: ...

    @overload
    async def _do_request(
        self,
        method: str,
        path: str,
        data: dict[Any, Any] | None = None,
        params: dict[Any, Any] | None = None,
        extra_headers: dict[Any, Any] | None = None,
        *,
        returning_status: Literal[True] = True,
    ) -> tuple[Any, int]: ...

    async def _do_request(
        self,
        method: str,
        path: str,
        data: dict[Any, Any] | None = None,
        params: dict[Any, Any] | None = None,
        extra_headers: dict[Any, Any] | None = None,
        *,
        returning_status: bool = False,
    ) -> Any:
        """fhirpy's single HTTP hook, re-implemented on the pooled transport.

        Returns what fhirpy's own implementation returns: the decoded JSON as ``AttrDict`` (or
        ``None`` for an empty body or 304), paired with the status when ``returning_status``.
        """
        http_method = _METHODS.get(method.upper())
        if http_method is None:
            raise FhirInvalidRequest("Unsupported HTTP method for a FHIR request")
        url, relative = self._resolve(path, params)
        headers = {str(k): str(v) for k, v in (extra_headers or {}).items()}
        if http_method in {"POST", "PUT", "PATCH"}:
            headers.setdefault("Prefer", "return=representation")
        segments = relative.split("/")
        response = await self._transport.send(
            http_method,
            url,
            interaction=_interaction(http_method, relative),
            tenant=self._tenant,
            resource_type=segments[0] if segments[0][:1].isupper() else None,
            resource_id=segments[1] if len(segments) > 1 and segments[1][:1] not in "$_" else None,
            body=data,
            headers=headers,
        )
        content = response.content
        decoded = (
            json.loads(content, object_hook=AttrDict)
            if content and response.status_code != 304
            else None
        )
        return (decoded, response.status_code) if returning_status else decoded
