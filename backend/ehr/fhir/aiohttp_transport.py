"""An httpx transport that sends requests over one pooled aiohttp session.

Why: on our 2-core machines httpx's own transport (httpcore: pure-Python h11 parsing on anyio)
costs more CPU per request than aiohttp (C ``llhttp`` parser); measured side by side it made the
pooled client slower than stock fhirpy. Behind this transport the application still talks to one
:class:`httpx.AsyncClient` (and respx still sees every request with ``respx.mock(using="httpx")``),
but the bytes go over aiohttp's keep-alive pool. See docs/adr/0001-fhir-client.md for figures.

aiohttp's exceptions are re-raised as the httpx exceptions they correspond to, so the one error
table in :mod:`ehr.fhir.transport` applies unchanged: refused/DNS → ``ConnectError``, connect or
pool timeout → ``ConnectTimeout``, read timeout → ``ReadTimeout``, dropped connection →
``RemoteProtocolError`` / ``ReadError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Final

import aiohttp
import httpx
import yarl

__all__ = ["AiohttpTransport", "iter_raw"]

# Most specific first: the first matching entry wins.
_EXCEPTIONS: Final[tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),  # includes SocketTimeoutError
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),
    (TimeoutError, httpx.ReadTimeout),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        for aiohttp_error, httpx_error in _EXCEPTIONS:
            if isinstance(exc, aiohttp_error):
                raise httpx_error(type(exc).__name__) from exc
        raise  # pragma: no cover - ClientError/TimeoutError always match above


class _ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, released back to the pool when httpx closes it."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` over one lazily created :class:`aiohttp.ClientSession`.

    ``limits.max_connections`` bounds the pool and ``limits.keepalive_expiry`` closes idle
    connections (aiohttp has no separate keep-alive count). No cookies are kept, no environment
    proxies are used, redirects are left to httpx (which does not follow them for us), and bodies
    are passed through undecoded so httpx handles ``Content-Encoding`` as with its own transport.
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop, as aiohttp requires.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 0.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),  # waiting for a pooled connection (and connecting)
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body: bytes | httpx.AsyncByteStream | None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            body = request.stream if isinstance(request.stream, httpx.AsyncByteStream) else None
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() != "transfer-encoding"  # aiohttp frames the body itself
        ]
        with _as_httpx_errors():
            response = await self._get_session().request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=timeout,
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response),
            request=request,
            extensions=extensions,
        )

    async def open_raw(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | AsyncIterable[bytes] | None,
        timeout: httpx.Timeout,  # noqa: ASYNC109 - per-phase socket timeouts, raised as httpx errors
    ) -> aiohttp.ClientResponse:
        """Send a request without httpx's client machinery (the gateway's pass-through: its
        auth, redirect, cookie and request-model layers cost more CPU than aiohttp itself).

        ``url`` is sent exactly as given (already encoded). The response body is unread and
        undecoded: iterate :func:`iter_raw`, then ``release()``. Errors are httpx's.
        """
        client_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout.pool, sock_connect=timeout.connect, sock_read=timeout.read
        )
        with _as_httpx_errors():
            return await self._get_session().request(
                method,
                yarl.URL(url, encoded=True),
                headers=headers,
                data=content,
                allow_redirects=False,
                timeout=client_timeout,
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def iter_raw(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body of a response from :meth:`AiohttpTransport.open_raw`, errors as httpx's."""
    with _as_httpx_errors():
        async for chunk in response.content.iter_any():
            yield chunk
