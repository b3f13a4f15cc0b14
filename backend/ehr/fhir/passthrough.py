"""Raw, streaming pass-through to HAPI for the FHIR gateway (:mod:`ehr.platform.gateway`).

All HAPI URL knowledge stays here: the gateway hands over a tenant, a path relative to the
tenant's base (checked segment by segment), query parameters, the headers it may forward and a
body (bytes or an async byte stream); it gets back HAPI's response *unread*
(``httpx`` ``send(..., stream=True)``) and must close it (:meth:`UpstreamResponse.aclose`).

Requests go over the application's ONE pooled client (:attr:`ehr.fhir.FhirClient.http`).
Transport failures become :class:`~ehr.fhir.errors.FhirUnavailable` (503) and timeouts
:class:`~ehr.fhir.errors.FhirTimeout` (504). HAPI's own answers (also 4xx/5xx) are returned as
they are: the gateway passes them on.

:meth:`FhirPassThrough.hapi_bases` says which strings are HAPI's address (``{base}/{tenant}``
and the bare ``{base}``), so the gateway can rewrite them to its public base.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import aiohttp
import httpx
import structlog

from ehr.core.request_context import request_id_var
from ehr.fhir.addressing import relative_path, tenant_base_url, validate_tenant
from ehr.fhir.aiohttp_transport import AiohttpTransport, iter_raw
from ehr.fhir.client import FhirClient
from ehr.fhir.errors import FhirTimeout, FhirUnavailable, FhirUpstreamError
from ehr.fhir.transport import FHIR_JSON, REQUEST_DURATION, Interaction

__all__ = [
    "FORWARDED_REQUEST_HEADERS",
    "HOP_BY_HOP_HEADERS",
    "FhirPassThrough",
    "UpstreamResponse",
    "forwardable_request_headers",
    "forwardable_response_headers",
]

logger = structlog.get_logger(__name__)

# RFC 9110 §7.6.1 connection-specific headers (plus the Proxy-* family): never forwarded.
HOP_BY_HOP_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
    }
)
# What a client may tell HAPI. Credentials (Authorization, X-API-Key, Cookie) are never here.
FORWARDED_REQUEST_HEADERS: Final = frozenset(
    {
        "accept",
        "content-type",
        "etag",
        "if-match",
        "if-none-match",
        "if-none-exist",
        "if-modified-since",
        "prefer",
    }
)
# Response headers we never pass on: lengths/encodings change when the body is rewritten, and
# HAPI's own framing/identity are not the client's business.
_DROPPED_RESPONSE_HEADERS: Final = HOP_BY_HOP_HEADERS | {
    "content-length",
    "content-encoding",
    "x-powered-by",
    "server",
    "date",
    "set-cookie",
    "x-request-id",
}


def forwardable_request_headers(
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
) -> dict[str, str]:
    """The client's headers HAPI may see (allow-list), plus our request id."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    forwarded = {
        name.lower(): value for name, value in items if name.lower() in FORWARDED_REQUEST_HEADERS
    }
    if request_id := request_id_var.get():
        forwarded["x-request-id"] = request_id
    return forwarded


def forwardable_response_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    """HAPI's response headers minus hop-by-hop (also those named in ``Connection``), framing
    and identity headers."""
    named = {
        token.strip().lower()
        for value in headers.get_list("connection")
        for token in value.split(",")
        if token.strip()
    }
    return [
        (name, value)
        for name, value in headers.multi_items()
        if name.lower() not in _DROPPED_RESPONSE_HEADERS and name.lower() not in named
    ]


@dataclass(slots=True)
class UpstreamResponse:
    """HAPI's answer with its body not read yet; iterate :meth:`body`, then :meth:`aclose`."""

    status_code: int
    headers: httpx.Headers
    interaction: Interaction
    method: str
    started: float
    timeout: float
    # The body as it arrives (transport errors as httpx's), and what releases the connection.
    chunks: AsyncIterator[bytes]
    release: Callable[[], Awaitable[None]]
    closed: bool = False

    async def body(self) -> AsyncIterator[bytes]:
        """The (decoded) body chunk by chunk; a stalled or broken stream ends it (logged)."""
        try:
            async for chunk in self.chunks:
                yield chunk
        except httpx.TimeoutException as exc:
            logger.warning("fhir.passthrough.body_timeout", exc_type=type(exc).__name__)
            raise FhirTimeout("The FHIR server did not answer in time") from exc
        except httpx.TransportError as exc:
            logger.warning("fhir.passthrough.body_failed", exc_type=type(exc).__name__)
            raise FhirUnavailable("The FHIR server cannot be reached") from exc

    async def read(self, limit: int) -> bytes:
        """The whole body (for small answers the gateway inspects); at most ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.body():
            size += len(chunk)
            if size > limit:
                raise FhirUnavailable("The FHIR server's answer is larger than expected")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Release the pooled connection and record the request's duration (idempotent)."""
        if self.closed:
            return
        self.closed = True
        await self.release()
        REQUEST_DURATION.labels(
            self.method, self.interaction, f"{self.status_code // 100}xx"
        ).observe(time.perf_counter() - self.started)


async def _decoded(chunks: AsyncIterator[bytes], encoding: str) -> AsyncIterator[bytes]:
    """``gzip``/``deflate`` bodies decoded (HAPI is asked for ``identity``; this is the guard
    for a server or proxy that compresses anyway)."""
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        async for chunk in chunks:
            if out := decoder.decompress(chunk):
                yield out
        if tail := decoder.flush():
            yield tail
    except zlib.error as exc:
        raise httpx.DecodingError("The FHIR server's compressed answer is corrupt") from exc


def _raw_body(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in {"", "identity"}:
        return iter_raw(response)
    if encoding in {"gzip", "x-gzip", "deflate"}:
        return _decoded(iter_raw(response), "gzip" if "gzip" in encoding else "deflate")
    response.release()
    raise FhirUpstreamError(f"The FHIR server answered in an unsupported encoding ({encoding})")


class FhirPassThrough:
    """Streams raw requests to one tenant's HAPI partition over the pooled client."""

    def __init__(self, fhir: FhirClient) -> None:
        self._fhir = fhir
        self._base_url = fhir.settings.base_url.rstrip("/")

    def hapi_bases(self, tenant: str) -> tuple[str, str]:
        """HAPI's address as it appears in its answers: ``({base}/{tenant}, {base})``."""
        return tenant_base_url(self._base_url, tenant), self._base_url

    def url(self, tenant: str, path: str) -> str:
        """``{base}/{tenant}/{path}`` with ``path`` checked (no dot segments, no query)."""
        root = tenant_base_url(self._base_url, validate_tenant(tenant))
        return f"{root}/{relative_path(path)}" if path.strip("/") else root

    async def open(
        self,
        method: str,
        tenant: str,
        path: str,
        *,
        interaction: Interaction,
        params: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        timeout: float,  # noqa: ASYNC109 - httpx's timeout, mapped to FhirTimeout
    ) -> UpstreamResponse:
        """Send the request; HAPI's response comes back with its body unread (close it)."""
        request_headers = {"accept-encoding": "identity", **(headers or {})}
        raw = self._fhir.raw_transport
        if raw is not None:
            return await self._open_raw(
                raw,
                method,
                tenant,
                path,
                interaction=interaction,
                params=params,
                headers=request_headers,
                content=content,
                timeout=timeout,
            )
        request = self._fhir.http.build_request(
            method,
            self.url(tenant, path),
            params=httpx.QueryParams(list(params)),
            headers=request_headers,
            content=content,
            timeout=timeout,
        )
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._fhir.http.send(request, stream=True)
            outcome = "sent"
        except httpx.TimeoutException as exc:
            outcome = "timeout"
            logger.warning(
                "fhir.passthrough.failed", tenant=tenant, interaction=interaction, outcome=outcome
            )
            raise FhirTimeout("The FHIR server did not answer in time") from exc
        except httpx.TransportError as exc:
            outcome = "connect_error" if isinstance(exc, httpx.ConnectError) else "transport_error"
            logger.warning(
                "fhir.passthrough.failed", tenant=tenant, interaction=interaction, outcome=outcome
            )
            raise FhirUnavailable("The FHIR server cannot be reached") from exc
        finally:
            if outcome != "sent":
                REQUEST_DURATION.labels(method, interaction, outcome).observe(
                    time.perf_counter() - started
                )
        return UpstreamResponse(
            response.status_code,
            response.headers,
            interaction,
            method,
            started,
            timeout,
            response.aiter_bytes(),
            response.aclose,
        )

    async def _open_raw(
        self,
        raw: AiohttpTransport,
        method: str,
        tenant: str,
        path: str,
        *,
        interaction: Interaction,
        params: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        content: bytes | AsyncIterable[bytes] | None,
        timeout: float,  # noqa: ASYNC109 - mapped to FhirTimeout
    ) -> UpstreamResponse:
        """:meth:`open` over the aiohttp session directly (same URL encoding, errors, metrics)."""
        url = self.url(tenant, path)
        if params:
            url = f"{url}?{httpx.QueryParams(list(params))}"
        limits = self._fhir.settings
        started = time.perf_counter()
        try:
            response = await raw.open_raw(
                method,
                url,
                headers={"accept": FHIR_JSON, **headers},
                content=content,
                timeout=httpx.Timeout(timeout, connect=limits.connect_timeout_seconds),
            )
        except httpx.TimeoutException as exc:
            self._failed(tenant, interaction, method, "timeout", started)
            raise FhirTimeout("The FHIR server did not answer in time") from exc
        except httpx.TransportError as exc:
            outcome = "connect_error" if isinstance(exc, httpx.ConnectError) else "transport_error"
            self._failed(tenant, interaction, method, outcome, started)
            raise FhirUnavailable("The FHIR server cannot be reached") from exc

        async def release() -> None:
            response.release()

        return UpstreamResponse(
            response.status,
            httpx.Headers(list(response.raw_headers)),
            interaction,
            method,
            started,
            timeout,
            _raw_body(response),
            release,
        )

    @staticmethod
    def _failed(
        tenant: str, interaction: Interaction, method: str, outcome: str, started: float
    ) -> None:
        logger.warning(
            "fhir.passthrough.failed", tenant=tenant, interaction=interaction, outcome=outcome
        )
        REQUEST_DURATION.labels(method, interaction, outcome).observe(time.perf_counter() - started)
