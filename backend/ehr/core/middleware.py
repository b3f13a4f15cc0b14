"""Pure-ASGI middleware, installed by :func:`install_middleware` in this order (outermost first):

1. :class:`RequestIdMiddleware` — accepts a sane incoming ``X-Request-ID`` (1-128 characters of
   ``[A-Za-z0-9._:-]``) or generates a UUID4, sets :data:`ehr.core.request_context.request_id_var`
   and echoes the id on every response (errors and 413s included).
2. :class:`MetricsMiddleware` — Prometheus counters/histogram labelled with the route template,
   and one PHI-free access log line (``http.request.completed``; no query string).
3. :class:`SecurityHeadersMiddleware` — ``nosniff``, ``X-Frame-Options: DENY``, a referrer
   policy, ``Cache-Control: no-store`` (unless the route set its own), HSTS, a restrictive
   ``Permissions-Policy``, and a ``default-src 'none'`` CSP on ``/api`` and ``/fhir``.
4. (CORS, only when ``settings.api.cors_origins`` is set: explicit origins only — ``*`` or a
   malformed origin refuses to build the app, see :func:`cors_options`; credentials are allowed
   because every allowed origin is explicit; ``X-Request-ID`` and ``Retry-After`` are exposed.)
5. :class:`UnhandledErrorMiddleware` — renders any exception that escaped the app as the 500
   problem document (:func:`ehr.core.error_handlers.error_response`), so the headers above still
   apply.
6. :class:`~ehr.core.intake.RequestTargetMiddleware` — 400 for a path or query that is not UTF-8 or
   holds NUL once percent-decoded.
7. :class:`BodySizeLimitMiddleware` — 413 when ``Content-Length`` exceeds the door's limit
   (``/api``: ``api.business_max_body_bytes``; ``/cds-services``: ``cds_hooks.max_body_bytes``;
   everything else, ``/fhir`` included: ``api.max_body_bytes``), and while streaming a
   (chunked) body past it.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Final

import anyio
import structlog
from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehr.core.config import ApiSettings, Settings
from ehr.core.error_handlers import error_response
from ehr.core.errors import PayloadTooLarge
from ehr.core.intake import RequestTargetMiddleware
from ehr.core.observability import HTTP_REQUEST_DURATION, HTTP_REQUESTS, UNMATCHED_ROUTE
from ehr.core.request_context import request_id_var

__all__ = [
    "REQUEST_ID_HEADER",
    "BodySizeLimitMiddleware",
    "InsecureCorsConfigurationError",
    "MetricsMiddleware",
    "RequestIdMiddleware",
    "SecurityHeadersMiddleware",
    "UnhandledErrorMiddleware",
    "cors_options",
    "install_middleware",
    "is_valid_request_id",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

access_logger = structlog.get_logger("ehr.access")


def is_valid_request_id(value: str) -> bool:
    """Whether an incoming request id may be reused (no control chars, no log injection)."""
    return _REQUEST_ID_PATTERN.fullmatch(value) is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RequestIdMiddleware:
    """Set the request id for the request's context and echo it as ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming
            if incoming is not None and is_valid_request_id(incoming)
            else str(uuid.uuid4())
        )
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


# The labelled children per (method, route template, status): ``labels()`` validates and locks on
# every call; the set of keys is small (route templates, not paths).
_METRIC_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_MAX_METRIC_CHILDREN: Final = 4096


def _request_metrics(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    key = (method, route, status)
    children = _METRIC_CHILDREN.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            HTTP_REQUEST_DURATION.labels(method=method, route=route),
        )
        if len(_METRIC_CHILDREN) < _MAX_METRIC_CHILDREN:
            _METRIC_CHILDREN[key] = children
    return children


class MetricsMiddleware:
    """Count and time requests by route template; write the access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_capturing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            counter, timer = _request_metrics(method, route, status)
            counter.inc()
            timer.observe(elapsed)
            access_logger.info(
                "http.request.completed",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


def _route_template(scope: Scope) -> str:
    """The matched route's path template (routing stores the route in the shared scope)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    return UNMATCHED_ROUTE


_SECURITY_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    # Browsers ignore HSTS over plain HTTP; behind TLS it pins the API to HTTPS.
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
# API and FHIR responses are data, never documents: no scripts, no framing.
_API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    """Add security headers; ``Cache-Control: no-store`` unless the app chose a policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        is_data = path.startswith(("/api/", "/fhir/")) or path in ("/api", "/fhir")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if is_data:
                    headers.setdefault("Content-Security-Policy", _API_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnhandledErrorMiddleware:
    """Render an exception that escaped the app as the problem/OperationOutcome 500.

    Starlette's own ``ServerErrorMiddleware`` sits outside every user middleware, so without this
    the 500 would bypass the request-id, metrics and security-header layers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if response_started:
                # Too late for a clean error response: let the server abort the connection.
                raise
            response = error_response(exc, scope)
            await response(scope, receive, send)


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_body_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before the app runs. A body without
    one (chunked) is counted while the app reads it; on the first byte past the limit the read
    raises :class:`~ehr.core.errors.PayloadTooLarge`, whatever the app then does is discarded and
    the
    413 is sent instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        prefix_limits: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (path prefix, limit): the first prefix the path starts with decides.
        self.prefix_limits = prefix_limits

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.prefix_limits:
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                declared_length = int(declared)
            except ValueError:
                declared_length = -1
            if declared_length > limit:
                await self._refuse(scope, receive, send, limit)
                return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the app's answer to a truncated body is replaced by the 413
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or response_started:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = PayloadTooLarge(f"The request body exceeds {limit} bytes.", extra={"limit": limit})
        response = error_response(error, scope)
        response.headers["Connection"] = "close"
        # Read (and drop) what the client is still sending first: the server stops reading once
        # the answer is out, and a client mid-upload would see a reset instead of the 413.
        await _discard_body(receive, limit)
        await response(scope, receive, send)


# A refused body is read and dropped (bounded), so that a client still sending it gets the 413
# instead of a reset connection; past this much, or this long, the connection is just closed.
_DISCARD_FACTOR: Final = 4
_DISCARD_SECONDS: Final = 5.0


async def _discard_body(receive: Receive, limit: int) -> None:
    budget = _DISCARD_FACTOR * limit + 1024 * 1024
    try:
        with anyio.move_on_after(_DISCARD_SECONDS):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except Exception:  # noqa: BLE001 - the client went away: nothing left to do
        return


class InsecureCorsConfigurationError(ValueError):
    """``settings.api.cors_origins`` allows what it must not (``*``, or not an origin)."""


# scheme://host[:port], nothing else (no path, no trailing slash, no wildcard).
_ORIGIN_PATTERN: Final = re.compile(
    r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:[0-9]{1,5})?"
)
CORS_ALLOW_METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-API-Key",
    "X-Break-Glass-Reason",
    "X-Purpose-Of-Use",
    REQUEST_ID_HEADER,
)
CORS_EXPOSE_HEADERS: Final = (REQUEST_ID_HEADER, "Location", "ETag", "Retry-After")


def cors_options(api: ApiSettings) -> dict[str, object] | None:
    """``CORSMiddleware`` options for ``api.cors_origins``, or None when CORS is off.

    Explicit origins only: ``*`` (which with credentials would let any site act with a user's
    credentials) and anything that is not ``scheme://host[:port]`` raise
    :class:`InsecureCorsConfigurationError`, so the app refuses to start. Credentials are allowed
    only because every origin is explicit.
    """
    origins = list(api.cors_origins)
    if not origins:
        return None
    for origin in origins:
        if origin.strip() == "*" or "*" in origin:
            raise InsecureCorsConfigurationError(
                "EHR_API__CORS_ORIGINS: '*' is not allowed (credentials are sent to allowed "
                "origins); list each frontend origin explicitly"
            )
        if not _ORIGIN_PATTERN.fullmatch(origin):
            raise InsecureCorsConfigurationError(
                f"EHR_API__CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )
    return {
        "allow_origins": origins,
        "allow_credentials": True,
        "allow_methods": list(CORS_ALLOW_METHODS),
        "allow_headers": list(CORS_ALLOW_HEADERS),
        "expose_headers": list(CORS_EXPOSE_HEADERS),
        "max_age": 600,
    }


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the middleware stack to ``app`` (``add_middleware`` prepends: innermost first).

    Raises :class:`InsecureCorsConfigurationError` for a wildcard or malformed CORS origin.
    """
    cors = cors_options(settings.api)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        prefix_limits=(
            # HL7 v2 over HTTP: a message may be as large as over MLLP (embedded reports).
            ("/api/hl7v2/messages", settings.hl7.max_message_bytes),
            ("/api", settings.api.business_max_body_bytes),
            ("/cds-services", settings.cds_hooks.max_body_bytes),
        ),
    )
    app.add_middleware(RequestTargetMiddleware)
    app.add_middleware(UnhandledErrorMiddleware)
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)  # type: ignore[arg-type]
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
