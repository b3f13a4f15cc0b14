"""The gateway's lean ASGI path: ``/fhir`` interactions go straight to the gateway's handler.

FastAPI's router would find the catch-all gateway route only after matching the request against
every other route of the app (the catch-all yields to them, :class:`FallbackRoute`), then run its
exception and exit-stack layers and its (empty) dependency solving — about a seventh of the CPU of
a proxied read (docs/adr/0009, cost section). :class:`GatewayFastPath` sits just inside our own
middleware (request id, metrics, security headers, body-size limit: they all still apply) and:

* passes every request FastAPI has an explicit route for through to FastAPI unchanged — the
  discovery routes (``/fhir/metadata``, ``/fhir/.well-known/smart-configuration`` and their
  tenant-qualified forms) and any ``/fhir/...`` route added later (their paths are read from the
  app's routes on the first request);
* answers every other ``/fhir`` request with the gateway's own handler, exactly as the
  catch-all route would: the same route in ``scope["route"]`` (metrics label it the same), the
  same ``path`` parameter, the same error rendering (:func:`ehr.core.error_handlers.error_response`:
  OperationOutcome). Methods without a gateway route fall through to FastAPI (404).
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from ehr.core.error_handlers import error_response
from ehr.platform.gateway.router import FallbackRoute, gateway

__all__ = ["GatewayFastPath"]

_PREFIX: Final = "/fhir"


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the app's ``root_path`` (as Starlette does)."""
    path = str(scope.get("path", ""))
    root_path = str(scope.get("root_path", ""))
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path


class GatewayFastPath:
    """Route ``/fhir`` interactions to the gateway without FastAPI's router (see the module doc)."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI) -> None:
        self.app = app
        self._fastapi_app = fastapi_app
        self._explicit: tuple[re.Pattern[str], ...] | None = None
        # method -> (the route of ``/fhir`` itself, the route of ``/fhir/{path:path}``)
        self._routes: dict[str, tuple[APIRoute | None, APIRoute | None]] = {}

    def _learn_routes(self) -> tuple[re.Pattern[str], ...]:
        explicit: list[re.Pattern[str]] = []
        routes: dict[str, list[APIRoute | None]] = {}
        for context in iter_route_contexts(self._fastapi_app.routes):
            path = context.path or ""
            if path != _PREFIX and not path.startswith(_PREFIX + "/"):
                continue
            route = context.original_route
            if isinstance(route, FallbackRoute):
                for method in route.methods or ():
                    slot = routes.setdefault(method, [None, None])
                    slot[0 if path == _PREFIX else 1] = route
            else:
                explicit.append(compile_path(path)[0])
        self._routes = {method: (pair[0], pair[1]) for method, pair in routes.items()}
        self._explicit = tuple(explicit)
        return self._explicit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path != _PREFIX and not path.startswith(_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        explicit = self._explicit if self._explicit is not None else self._learn_routes()
        routes = self._routes.get(scope["method"])
        if routes is None or any(pattern.match(path) for pattern in explicit):
            await self.app(scope, receive, send)
            return
        route = routes[0] if path == _PREFIX else routes[1]
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        scope["endpoint"] = gateway
        scope["path_params"] = {} if path == _PREFIX else {"path": path[len(_PREFIX) + 1 :]}
        try:
            response = await gateway(Request(scope, receive, send))
        except Exception as exc:  # noqa: BLE001 - rendered as FastAPI's handlers would
            response = error_response(exc, scope)
        await response(scope, receive, send)
