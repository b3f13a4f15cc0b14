"""``WS /api/events/ws`` and ``GET /api/events/stream`` (SSE): a tenant's events, live.

WebSocket protocol (JSON text frames; ADR 0025)::

    client → {"type": "auth", "token": "<access token or API key>",        within 5 s
              "last_event_id": "1733561234567-0", "types": ["result.*"], "patients": ["123"]}
    server → {"type": "event", "id": "<stream id>", "event": {<envelope>}}   missed, then live
    server → {"type": "ready", "tenant": …, "position": …, "expires_at": …}  caught up
    server → {"type": "heartbeat", "position": "<stream id>"}               when idle
    client → {"type": "auth", "token": "<a fresh access token>"}            before expiry
    server → close 4401 / 4403 / 4400 / 4008 / 1013                          (service.py)

SSE: ``Authorization`` header, ``Last-Event-ID`` header, ``?types=result.*&patients=123``;
``id:`` is the stream id, ``event:`` the message type, ``data:`` the message; heartbeats are
comments; the end is an ``event: close`` with the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

import structlog
from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ehr.core.error_handlers import problem_responses
from ehr.core.errors import AuthenticationRequired, PermissionDenied, RequestValidationFailed
from ehr.core.intake import IntakeRoute
from ehr.platform.auth.dependencies import CurrentPrincipal, access_claims, authenticate
from ehr.platform.realtime.access import Subscription
from ehr.platform.realtime.dependencies import EventPermissions, RealtimeDep
from ehr.platform.realtime.schemas import (
    AuthMessage,
    PatientId,
    StreamId,
    TypePattern,
    WireMessage,
)
from ehr.platform.realtime.service import (
    BAD_MESSAGE,
    FORBIDDEN,
    UNAUTHENTICATED,
    Channel,
    ChannelClosedError,
    Grant,
    authenticate_credential,
)
from ehr.platform.realtime.stream import stream_id

__all__ = ["router"]

logger = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/events", tags=["events"], route_class=IntakeRoute)

_CLOSE_TIMEOUT_SECONDS: Final = 2.0
INTERNAL_ERROR: Final = 1011
_ENDED: Final = (WebSocketDisconnect, RuntimeError, OSError)


def _dumps(message: dict[str, Any]) -> str:
    if isinstance(message, WireMessage):
        return message.text  # encoded once for every subscriber
    return json.dumps(message, separators=(",", ":"))


def _auth_message(raw: str) -> AuthMessage:
    try:
        return AuthMessage.model_validate_json(raw)
    except ValidationError:
        raise ChannelClosedError(
            BAD_MESSAGE, 'expected {"type": "auth", "token": ...} (see the API docs)'
        ) from None


async def _first_message(websocket: WebSocket, seconds: float) -> AuthMessage:
    try:
        async with asyncio.timeout(seconds):
            raw = await websocket.receive_text()
    except TimeoutError:
        raise ChannelClosedError(UNAUTHENTICATED, "no credential within the deadline") from None
    except KeyError:  # a binary frame
        raise ChannelClosedError(BAD_MESSAGE, "messages are JSON text frames") from None
    return _auth_message(raw)


async def _receive(websocket: WebSocket, channel: Channel, reauth: Callable[[str], None]) -> None:
    """Client messages after the first: a fresh token (and optionally a new filter)."""
    while True:
        try:
            raw = await websocket.receive_text()
        except KeyError:
            raise ChannelClosedError(BAD_MESSAGE, "messages are JSON text frames") from None
        message = _auth_message(raw)
        reauth(message.token)
        channel.replace_grant(await channel.reauthenticate())
        if message.types or message.patients:
            channel.subscription = Subscription.of(message.types, message.patients)
        await websocket.send_text(
            _dumps({"type": "authenticated", "expires_at": _iso(channel.grant)})
        )


def _iso(grant: Grant) -> str | None:
    expires = grant.expires
    return None if expires is None else expires.isoformat()


async def _run_until_first_ends(*coroutines: Awaitable[None]) -> None:
    """Run them together; the first to end (or raise) ends the others; its error is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, *_ENDED, ChannelClosedError):
                await task
    for task in done:
        error = task.exception()
        if error is not None:
            raise error


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(*_ENDED, TimeoutError):
        async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS):
            await websocket.close(code=code, reason=reason)


@router.websocket("/ws", dependencies=[EventPermissions])
async def events_socket(websocket: WebSocket, realtime: RealtimeDep) -> None:
    """The tenant's events for the caller, filtered by its permissions (module doc)."""
    await websocket.accept()
    channel: Channel | None = None
    code: int | None = None
    try:
        first = await _first_message(websocket, realtime.settings.auth_timeout_seconds)
        credential = [first.token]

        def reauth(token: str) -> None:
            credential[0] = token

        async def reauthenticate() -> Grant:
            return await authenticate_credential(websocket, realtime.resources, credential[0])

        grant = await reauthenticate()
        channel = Channel(
            realtime.hub,
            realtime.settings,
            grant,
            Subscription.of(first.types, first.patients),
            reauthenticate=reauthenticate,
            transport="websocket",
        )

        async def send(message: dict[str, Any]) -> None:
            await websocket.send_text(_dumps(message))

        last = stream_id(first.last_event_id) if first.last_event_id else None
        await channel.open(send, last)
        await _run_until_first_ends(channel.pump(send), _receive(websocket, channel, reauth))
        code = 1000
    except ChannelClosedError as closed:
        code = closed.code
        logger.info("realtime.refused", code=closed.code, reason=closed.reason)
        await _close(websocket, closed.code, closed.reason)
    except _ENDED:
        code = 1001  # the client went away
    except Exception:
        code = INTERNAL_ERROR
        logger.exception("realtime.failed")
        await _close(websocket, INTERNAL_ERROR, "internal error")
    finally:
        if channel is not None:
            channel.close(code)


# --- Server-Sent Events -----------------------------------------------------------------------


def _frame(message: dict[str, Any]) -> bytes:
    kind = message.get("type", "message")
    lines = [f"event: {kind}"]
    if kind == "event":
        lines.insert(0, f"id: {message['id']}")
    lines.append(f"data: {_dumps(message)}")
    return ("\n".join(lines) + "\n\n").encode()


class EventStreamResponse(Response):
    """``text/event-stream``: the channel writes each message as it happens (no buffering)."""

    media_type = "text/event-stream"

    def __init__(self, channel: Channel, last: tuple[int, int] | None) -> None:
        super().__init__(
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            media_type=self.media_type,
        )
        # A stream has no length: no Content-Length (chunked transfer).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.channel = channel
        self.last = last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        channel = self.channel

        async def send_message(message: dict[str, Any]) -> None:
            if message.get("type") == "heartbeat":
                body = f": heartbeat {message['position']}\n\n".encode()
            else:
                body = _frame(message)
            await send({"type": "http.response.body", "body": body, "more_body": True})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        code = 1000
        try:
            await send(
                {"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True}
            )
            await channel.open(send_message, self.last)
            await _run_until_first_ends(channel.pump(send_message), disconnected())
        except ChannelClosedError as closed:
            code = closed.code
            with contextlib.suppress(OSError, RuntimeError):
                await send_message({"type": "close", "code": closed.code, "reason": closed.reason})
        except OSError:
            code = 1001
        finally:
            channel.close(code)
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.get(
    "/stream",
    dependencies=[EventPermissions],
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: {
            "description": "The caller's events (text/event-stream), until it disconnects",
            # Each server-sent event (the fields of the text/event-stream format); `data` is
            # one JSON message of the channel (ready, event, gap, heartbeat).
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "event": {"type": "string"},
                            "data": {"type": "string"},
                            "id": {"type": "string"},
                            "retry": {"type": "integer"},
                        },
                    }
                }
            },
        },
        **problem_responses(401, 403, 422),
    },
)
async def events_stream(
    request: Request,
    principal: CurrentPrincipal,
    realtime: RealtimeDep,
    last_event_id: Annotated[StreamId | None, Header(alias="Last-Event-ID")] = None,
    types: Annotated[list[TypePattern] | None, Query(max_length=20)] = None,
    patients: Annotated[list[PatientId] | None, Query(max_length=50)] = None,
) -> Response:
    """Server-Sent Events fallback of the WebSocket: the same events, filters and resume."""
    claims = access_claims(request)
    grant = Grant(principal, claims.expires_at.timestamp() if claims is not None else None)

    async def reauthenticate() -> Grant:
        try:
            again = await authenticate(request, realtime.resources)
        except AuthenticationRequired:
            raise ChannelClosedError(UNAUTHENTICATED, "the credential is no longer valid") from None
        again_claims = access_claims(request)
        return Grant(again, again_claims.expires_at.timestamp() if again_claims else None)

    try:
        channel = Channel(
            realtime.hub,
            realtime.settings,
            grant,
            Subscription.of(types or (), patients or ()),
            reauthenticate=reauthenticate,
            transport="sse",
        )
    except ChannelClosedError as closed:
        if closed.code == FORBIDDEN:
            raise PermissionDenied(closed.reason) from None
        raise
    try:
        last = stream_id(last_event_id) if last_event_id else None
    except ValueError:
        raise RequestValidationFailed("Last-Event-ID is not a stream id") from None
    return EventStreamResponse(channel, last)
