"""One client's subscription: authentication, resume, the send loop, heartbeats, expiry.

Transport-agnostic: the WebSocket and the SSE routes hand :class:`Channel` a ``send`` coroutine
(one message) and turn a :class:`ChannelClosedError` into their close (a WebSocket close code; the
end of the event stream).

Close codes (WebSocket; an SSE stream ends with an ``event: close`` carrying the same code):

==== ========================================================================================
4400 a message that is not what the protocol allows (or not JSON)
4401 not authenticated: bad, expired or revoked credential; none within the deadline (the
     reason says which); the access token expired while connected
4403 authenticated, but no event type may reach this principal; or a re-authentication as
     someone else
4008 slow consumer: its queue reached ``send_queue_max``, or one send took longer than
     ``send_timeout_seconds``
1013 the event stream (Redis) cannot be read, or the credential cannot be checked (PostgreSQL
     down): try again later
1011 an unexpected error (the router logs it)
==== ========================================================================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection, Request

from ehr.core.dependencies import AppResources
from ehr.core.errors import AuthenticationRequired, DependencyUnavailable
from ehr.platform.auth.dependencies import access_claims, authenticate
from ehr.platform.auth.principal import Principal
from ehr.platform.realtime.access import Subscription, may_see, sees_any_event
from ehr.platform.realtime.hub import Hub, Subscriber
from ehr.platform.realtime.metrics import CONNECTIONS, DISCONNECTS, EVENTS_SENT
from ehr.platform.realtime.schemas import (
    EventMessage,
    GapMessage,
    HeartbeatMessage,
    ReadyMessage,
    WireMessage,
)
from ehr.platform.realtime.settings import RealtimeSettings
from ehr.platform.realtime.stream import StreamEntry, StreamPosition

__all__ = [
    "BAD_MESSAGE",
    "FORBIDDEN",
    "SLOW_CONSUMER",
    "TRY_AGAIN_LATER",
    "UNAUTHENTICATED",
    "Channel",
    "ChannelClosedError",
    "Grant",
    "authenticate_credential",
]

logger = structlog.get_logger(__name__)

BAD_MESSAGE: Final = 4400
UNAUTHENTICATED: Final = 4401
FORBIDDEN: Final = 4403
SLOW_CONSUMER: Final = 4008
TRY_AGAIN_LATER: Final = 1013

Send = Callable[[dict[str, Any]], Awaitable[None]]


class ChannelClosedError(Exception):
    """The connection ends with ``code`` and a short ``reason`` (no PHI, no credential)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """An authenticated principal and when its credential stops being valid (epoch seconds;
    ``None`` for an API key, whose expiry and revocation the periodic re-check catches)."""

    principal: Principal
    expires_at: float | None

    @property
    def expires(self) -> datetime | None:
        return None if self.expires_at is None else datetime.fromtimestamp(self.expires_at, UTC)


async def authenticate_credential(
    connection: HTTPConnection, resources: AppResources, credential: str
) -> Grant:
    """Authenticate ``credential`` (access token or API key) exactly as an /api request's
    ``Authorization: Bearer`` header is (deny-list, account state, caches): the WebSocket's
    credential arrives in a message, so it is given to :func:`authenticate` as that header of a
    request that exists only for the check. Raises :class:`ChannelClosedError` (4401)."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": connection.url.path,
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {credential}".encode())],
        "client": connection.scope.get("client"),
        "app": connection.scope.get("app"),
        "state": {},
    }
    request = Request(scope)
    try:
        principal = await authenticate(request, resources)
    except AuthenticationRequired as exc:
        raise ChannelClosedError(UNAUTHENTICATED, exc.detail[:100]) from None
    except (DependencyUnavailable, SQLAlchemyError, OSError) as exc:
        # PostgreSQL (or both it and Redis) unreachable: the credential cannot be checked now.
        logger.warning("realtime.auth_unavailable", error=type(exc).__name__)
        raise ChannelClosedError(TRY_AGAIN_LATER, "authentication is unavailable") from None
    claims = access_claims(request)
    return Grant(principal, claims.expires_at.timestamp() if claims is not None else None)


def _text(position: StreamPosition) -> str:
    return f"{position[0]}-{position[1]}"


class Channel:
    """One client's subscription to its tenant's events (see the module doc for the rules)."""

    def __init__(
        self,
        hub: Hub,
        settings: RealtimeSettings,
        grant: Grant,
        subscription: Subscription,
        *,
        reauthenticate: Callable[[], Awaitable[Grant]],
        transport: str,
    ) -> None:
        if not sees_any_event(grant.principal):
            raise ChannelClosedError(FORBIDDEN, "no event type may reach this principal")
        self.hub = hub
        self.settings = settings
        self.grant = grant
        self.held = grant.principal.permissions
        self.subscription = subscription
        self.reauthenticate = reauthenticate
        self.transport = transport
        self.subscriber = Subscriber(
            tenant=grant.principal.tenant, accepts=self.accepts, limit=settings.send_queue_max
        )
        self.sent = 0

    def accepts(self, entry: StreamEntry) -> bool:
        """The access rule (tenant, permission, compartment), then the client's filter."""
        event = entry.event
        return may_see(
            self.grant.principal,
            entry.type,
            event.subject,
            event.resource,
            tenant=entry.tenant,
            held=self.held,
        ) and self.subscription.wants(entry.type, event.subject)

    def replace_grant(self, grant: Grant) -> None:
        """A fresh credential of the same principal (its expiry moves; roles may have changed)."""
        old = self.grant.principal
        new = grant.principal
        if (new.kind, new.subject, new.tenant_id) != (old.kind, old.subject, old.tenant_id):
            raise ChannelClosedError(FORBIDDEN, "a connection keeps the principal it opened with")
        if not sees_any_event(new):
            raise ChannelClosedError(FORBIDDEN, "no event type may reach this principal")
        self.grant = grant
        self.held = new.permissions
        self.subscriber.wake.set()  # the send loop recomputes its deadlines

    async def _send(self, send: Send, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.settings.send_timeout_seconds):
                await send(message)
        except TimeoutError:
            raise ChannelClosedError(SLOW_CONSUMER, "slow consumer: a send timed out") from None

    async def _send_entry(self, send: Send, entry: StreamEntry) -> None:
        message = entry.wire
        if message is None:
            built = EventMessage(id=entry.id, event=entry.event.model_dump(mode="json"))
            message = entry.wire = WireMessage(built.model_dump(mode="json"))
        await self._send(send, message)
        self.subscriber.sent(entry)
        self.sent += 1
        EVENTS_SENT.labels(transport=self.transport).inc()

    async def open(self, send: Send, last_event_id: StreamPosition | None) -> None:
        """Register with the hub, send what was missed after ``last_event_id``, go live."""
        subscriber = self.subscriber
        try:
            head = await self.hub.subscribe(subscriber)
        except (RedisError, OSError):
            raise ChannelClosedError(TRY_AGAIN_LATER, "the event stream is unavailable") from None
        CONNECTIONS.labels(transport=self.transport).inc()
        try:
            gap = await self._resume(send, head, last_event_id) if last_event_id else None
        except (RedisError, OSError):
            raise ChannelClosedError(TRY_AGAIN_LATER, "the event stream is unavailable") from None
        subscriber.go_live()
        ready = ReadyMessage(
            tenant=self.grant.principal.tenant,
            position=_text(subscriber.position),
            expires_at=self.grant.expires,
        )
        await self._send(send, ready.model_dump(mode="json"))
        if gap is not None:
            await self._send(send, gap.model_dump(mode="json"))

    async def _resume(
        self, send: Send, head: StreamPosition, after: StreamPosition
    ) -> GapMessage | None:
        """The backlog (XRANGE pages) straight to the client, before any live entry."""
        subscriber = self.subscriber
        last, trimmed = await self.hub.reader.head()
        if after > last:
            subscriber.position = head
            return GapMessage(reason="unknown_position", position=_text(head))
        gap = GapMessage(reason="trimmed", position=_text(after)) if after < trimmed else None
        subscriber.position = after
        scanned = 0
        page = min(500, self.settings.resume_max_entries)
        while True:
            entries, last_scanned = await self.hub.reader.after(subscriber.position, page)
            if last_scanned is None:
                return gap
            for entry in entries:
                if entry.tenant == subscriber.tenant and self.accepts(entry):
                    await self._send_entry(send, entry)
            subscriber.position = last_scanned
            scanned += page
            if scanned >= self.settings.resume_max_entries:
                subscriber.position = max(subscriber.position, head)
                return GapMessage(reason="too_far_behind", position=_text(subscriber.position))

    async def pump(self, send: Send) -> None:
        """Send live entries and heartbeats until the connection must end (raises
        :class:`ChannelClosedError`); re-checks the credential every ``revalidate_seconds``."""
        subscriber = self.subscriber
        settings = self.settings
        now = time.monotonic()
        next_heartbeat = now + settings.heartbeat_seconds
        next_check = now + settings.revalidate_seconds
        while True:
            if subscriber.overflowed:
                raise ChannelClosedError(SLOW_CONSUMER, "slow consumer: too many events waiting")
            expires_at = self.grant.expires_at
            if expires_at is not None and time.time() >= expires_at:
                raise ChannelClosedError(UNAUTHENTICATED, "the access token has expired")
            entry = subscriber.take()
            if entry is not None:
                await self._send_entry(send, entry)
                continue
            now = time.monotonic()
            if now >= next_check:
                self.replace_grant(await self.reauthenticate())
                next_check = now + settings.revalidate_seconds
            if now >= next_heartbeat:
                beat = HeartbeatMessage(position=_text(subscriber.position))
                await self._send(send, beat.model_dump(mode="json"))
                next_heartbeat = now + settings.heartbeat_seconds
            timeout = min(next_heartbeat, next_check) - time.monotonic()
            if expires_at is not None:
                timeout = min(timeout, expires_at - time.time())
            subscriber.wake.clear()
            if subscriber.queue or subscriber.overflowed:
                continue
            try:
                async with asyncio.timeout(max(0.0, timeout)):
                    await subscriber.wake.wait()
            except TimeoutError:
                pass

    def close(self, code: int | None) -> None:
        """Leave the hub (always: a connection that ended holds nothing)."""
        if self.subscriber in self.hub.subscribers.get(self.subscriber.tenant, ()):
            CONNECTIONS.labels(transport=self.transport).dec()
        self.hub.unsubscribe(self.subscriber)
        DISCONNECTS.labels(transport=self.transport, code=str(code or 1000)).inc()
        if code == SLOW_CONSUMER:
            logger.warning("realtime.slow_consumer", transport=self.transport)
        logger.info(
            "realtime.closed",
            transport=self.transport,
            code=code,
            sent=self.sent,
            tenant=self.grant.principal.tenant,
        )
