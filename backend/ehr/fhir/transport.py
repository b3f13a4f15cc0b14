"""The pooled HTTP connection to HAPI and the one function every request goes through.

:class:`FhirTransport` owns nothing but a shared :class:`httpx.AsyncClient`; for each request it
adds the FHIR headers and the request id, times it into the
``ehr_fhir_request_duration_seconds`` histogram, translates failures into :mod:`ehr.fhir.errors`
and logs them (types, ids and tenant only; never URLs, query strings or bodies, which can hold
PHI such as a searched-for name).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Final, Literal

import httpx
import structlog
from prometheus_client import Histogram

from ehr.core.config import FhirSettings
from ehr.core.errors import AppError, DependencyUnavailable
from ehr.core.request_context import request_id_var
from ehr.fhir.aiohttp_transport import AiohttpTransport
from ehr.fhir.errors import (
    FhirTimeout,
    FhirUnavailable,
    FhirUpstreamError,
    error_for_status,
    hapi_message_code,
    parse_operation_outcome,
)

__all__ = [
    "FHIR_JSON",
    "REQUEST_DURATION",
    "FhirTransport",
    "HttpBackend",
    "HttpMethod",
    "Interaction",
    "QueryParams",
    "build_http_client",
    "pool_limits",
]

logger = structlog.get_logger(__name__)

FHIR_JSON: Final = "application/fhir+json"

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
# Metric label values: the FHIR interaction, never an id.
Interaction = Literal[
    "metadata",
    "read",
    "vread",
    "create",
    "update",
    "patch",
    "delete",
    "search",
    "history",
    "transaction",
    "batch",
    "operation",
]
QueryScalar = str | int | float | bool
QueryParams = (
    Mapping[str, QueryScalar | Sequence[QueryScalar]] | Sequence[tuple[str, QueryScalar]] | str
)

REQUEST_DURATION: Final = Histogram(
    "ehr_fhir_request_duration_seconds",
    "Time spent on one HTTP request to HAPI FHIR, including reading the response body.",
    ("method", "interaction", "outcome"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
)


HttpBackend = Literal["httpcore", "aiohttp"]


def pool_limits(settings: FhirSettings) -> httpx.Limits:
    """The connection pool's bounds from ``settings``."""
    return httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_keepalive_connections,
    )


def build_http_client(
    settings: FhirSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    backend: HttpBackend = "httpcore",
) -> httpx.AsyncClient:
    """The one pooled, keep-alive HTTP client for HAPI, sized and timed from ``settings``.

    ``backend`` picks what carries the bytes when no ``transport`` is given: httpx's own
    (``"httpcore"``) or one aiohttp session (``"aiohttp"``, less CPU per request: see
    :mod:`ehr.fhir.aiohttp_transport`). Environment proxies are ignored (``trust_env=False``):
    HAPI is an internal upstream and a stray ``HTTP_PROXY`` must not route clinical data through
    another host. Redirects are not followed. Cookies are never stored: the client is shared by
    all tenants, so nothing one tenant's answer sets may ride along on another's request.
    """
    limits = pool_limits(settings)
    if transport is None and backend == "aiohttp":
        transport = AiohttpTransport(limits=limits)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds),
        limits=limits,
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"Accept": FHIR_JSON},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


def _normalize_params(params: QueryParams | None) -> httpx.QueryParams | str | None:
    """Query parameters as httpx wants them (bools as FHIR's ``true``/``false``)."""
    if params is None or isinstance(params, str):
        return params

    def text(value: QueryScalar) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    items: list[tuple[str, str]] = []
    pairs = params.items() if isinstance(params, Mapping) else params
    for key, value in pairs:
        if isinstance(value, str | int | float | bool):
            items.append((key, text(value)))
        else:
            items.extend((key, text(v)) for v in value)
    return httpx.QueryParams(tuple(items))


class FhirTransport:
    """Sends one request to HAPI over the shared pooled client; see the module docstring."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled :class:`httpx.AsyncClient` (one per application)."""
        return self._http

    async def send(
        self,
        method: HttpMethod,
        url: str,
        *,
        interaction: Interaction,
        tenant: str,
        resource_type: str | None = None,
        resource_id: str | None = None,
        params: QueryParams | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - an httpx timeout, mapped to FhirTimeout
    ) -> httpx.Response:
        """Send one request and return HAPI's response if it succeeded (2xx or 304).

        ``body`` (a JSON-serialisable resource) is sent as ``application/fhir+json``.
        Raises the :mod:`ehr.fhir.errors` error for any other answer or a transport failure.
        """
        request_headers = {"Accept": FHIR_JSON}
        if request_id := request_id_var.get():
            request_headers["X-Request-ID"] = request_id
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            request_headers["Content-Type"] = FHIR_JSON
        if headers:
            request_headers.update(headers)

        fields: dict[str, Any] = {
            "tenant": tenant,
            "method": method,
            "interaction": interaction,
            "resource_type": resource_type,
            "resource_id": resource_id,
        }
        outcome = "error"  # kept if the request is cancelled or fails unexpectedly
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method,
                url,
                params=_normalize_params(params),
                content=content,
                headers=request_headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
            outcome = f"{response.status_code // 100}xx"
        except httpx.TimeoutException as exc:
            outcome = "pool_timeout" if isinstance(exc, httpx.PoolTimeout) else "timeout"
            error: AppError = FhirTimeout("The FHIR server did not answer in time")
            _log_failure(error, fields, outcome, started, exc=exc)
            raise error from exc
        except httpx.TransportError as exc:
            outcome = "connect_error" if isinstance(exc, httpx.ConnectError) else "transport_error"
            error = FhirUnavailable("The FHIR server cannot be reached")
            _log_failure(error, fields, outcome, started, exc=exc)
            raise error from exc
        finally:
            REQUEST_DURATION.labels(method, interaction, outcome).observe(
                time.perf_counter() - started
            )

        status = response.status_code
        if 200 <= status < 300 or status == 304:
            return response
        error = error_for_status(status, response.content)
        hapi_code = hapi_message_code(parse_operation_outcome(response.content))
        _log_failure(error, fields, outcome, started, status=status, hapi_code=hapi_code)
        raise error


def _log_failure(
    error: AppError,
    fields: Mapping[str, Any],
    outcome: str,
    started: float,
    *,
    exc: BaseException | None = None,
    status: int | None = None,
    hapi_code: str | None = None,
) -> None:
    """Log a failed request: identifiers and codes only (no URL, query, body or message text)."""
    # 404/410 are part of normal business (existence checks): keep them out of the warnings.
    if isinstance(error, FhirUpstreamError | DependencyUnavailable):
        log = logger.warning
    elif status in {404, 410}:
        log = logger.debug
    else:
        log = logger.info
    log(
        "fhir.request.failed",
        **fields,
        outcome=outcome,
        upstream_status=status,
        error_code=error.code,
        hapi_code=hapi_code,
        exc_type=type(exc).__name__ if exc is not None else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
