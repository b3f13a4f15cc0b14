"""The route class every router uses, and the ASGI check of the request target.

:class:`IntakeRoute` runs the intake discipline before FastAPI reads a JSON body: the media type
must be JSON (415), the body must pass :func:`~ehr.core.intake.limits.parse_json` (400); the parsed
document is handed to FastAPI, so it is parsed once. Routes that read their body themselves (CDS
Hooks, the FHIR gateway) call :func:`read_json` instead.

:class:`RequestTargetMiddleware` refuses a path or query that is not UTF-8 or holds NUL (400)
before routing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ehr.core.error_handlers import error_response
from ehr.core.errors import AppError
from ehr.core.intake.limits import DEFAULT_MAX_JSON_DEPTH, OFFLOAD_JSON_BYTES, parse_json
from ehr.core.intake.media import JSON_MEDIA_TYPES, check_request_target, require_media_type

__all__ = ["IntakeRoute", "RequestTargetMiddleware", "max_json_depth", "read_json"]


def max_json_depth(request: Request) -> int:
    """The app's configured nesting limit (``EHR_API__MAX_JSON_DEPTH``)."""
    settings = getattr(request.app.state, "settings", None)
    api = getattr(settings, "api", None)
    depth = getattr(api, "max_json_depth", None)
    return depth if isinstance(depth, int) else DEFAULT_MAX_JSON_DEPTH


async def read_json(body: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """:func:`parse_json`, in a worker thread for large bodies (the event loop keeps serving)."""
    if len(body) > OFFLOAD_JSON_BYTES:
        return await anyio.to_thread.run_sync(lambda: parse_json(body, max_depth=max_depth))
    return parse_json(body, max_depth=max_depth)


class IntakeRoute(APIRoute):
    """An APIRoute whose JSON body passes the intake checks before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body_field = self.body_field
        if body_field is None or isinstance(body_field.field_info, params.Form):
            return handler

        async def intake_handler(request: Request) -> Response:
            body = await request.body()
            if body:
                require_media_type(request.headers.get("content-type"), JSON_MEDIA_TYPES)
                # Starlette's Request.json() returns this cached document: parsed once.
                request._json = await read_json(body, max_depth=max_json_depth(request))
            return await handler(request)

        return intake_handler


class RequestTargetMiddleware:
    """400 for a request target that cannot be handled safely (see :func:`check_request_target`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode()
            try:
                check_request_target(bytes(raw_path), bytes(scope.get("query_string", b"")))
            except AppError as exc:
                await error_response(exc, scope)(scope, receive, send)
                return
        await self.app(scope, receive, send)
