"""What the realtime routes are given: the hub of the app's event stream and the settings, and
the access marker of the route-permission table.

The routes' access rule is not one permission: a WebSocket authenticates in its first message
(browsers cannot set ``Authorization`` on one), the SSE stream by its ``Authorization`` header,
and then every event is filtered by the permission its type needs
(:mod:`ehr.platform.realtime.access`). :data:`EVENT_PERMISSIONS` marks both routes so, in
``tests/unit/platform/auth/test_route_permissions.py``, the decision is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends
from starlette.requests import HTTPConnection

from ehr.core.dependencies import AppResources
from ehr.platform.auth.authorization import PERMISSION_ATTRIBUTE
from ehr.platform.events import stream_key
from ehr.platform.realtime.hub import Hub, hub_for
from ehr.platform.realtime.settings import RealtimeSettings

__all__ = [
    "EVENT_PERMISSIONS",
    "EventPermissions",
    "Realtime",
    "RealtimeDep",
    "event_permissions",
    "get_realtime",
]

EVENT_PERMISSIONS: Final = "event-permissions"


async def event_permissions() -> None:
    """Marks a route whose caller is authenticated by the route itself and whose every event is
    filtered by the permission its type needs (see the module doc)."""


setattr(event_permissions, PERMISSION_ATTRIBUTE, EVENT_PERMISSIONS)

EventPermissions = Depends(event_permissions)


@dataclass(frozen=True, slots=True)
class Realtime:
    """The app's resources, the hub of its event stream, the channel's settings."""

    resources: AppResources
    hub: Hub
    settings: RealtimeSettings


def resources_of(connection: HTTPConnection) -> AppResources:
    resources = getattr(connection.state, "resources", None)
    if not isinstance(resources, AppResources):
        raise RuntimeError("app resources missing: is the app's lifespan running?")
    return resources


async def get_realtime(connection: HTTPConnection) -> Realtime:
    """The stream is the relay's (``events.stream_key``: one per app schema)."""
    resources = resources_of(connection)
    settings = resources.settings.realtime
    key = stream_key(resources.settings.events, resources.settings.db.app_schema)
    hub = hub_for(resources.redis, key, block_ms=settings.read_block_ms, batch=settings.read_batch)
    return Realtime(resources, hub, settings)


RealtimeDep = Annotated[Realtime, Depends(get_realtime)]
