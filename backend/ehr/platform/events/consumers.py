"""Consumers: one Redis consumer group per handler, at-least-once, idempotent by receipts.

A handler is a name (its consumer group and its receipts' key), the event types it wants and an
``async def handle(session, event)``. For each stream entry:

1. the runtime opens a transaction and inserts the receipt ``(handler, event id)``
   (``ON CONFLICT DO NOTHING``); if it already exists the event was handled before (a
   redelivery or a replay): nothing is done;
2. otherwise ``handle`` runs in that same transaction; the commit stores its effects and the
   receipt together;
3. only then ``XACK``. A crash before the commit leaves the entry pending (no receipt, no
   effect); a crash after it leaves a receipt, so the redelivery is a no-op.

Retries: a failed entry is not acknowledged. Each round a consumer looks at its group's pending
entries (``XPENDING``, with their idle time and delivery count) and claims (``XCLAIM``) those
idle for longer than their retry delay — at least ``handler_timeout_seconds`` (the same rule
takes over the entries of a consumer that died), then exponential. An entry delivered
``max_attempts`` times and failing again is written to ``event_dead_letters`` and acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import EventDeadLetter, EventReceipt
from ehr.core.redis_store import create_redis
from ehr.platform.events.backoff import jittered, retry_delay
from ehr.platform.events.envelope import Event
from ehr.platform.events.metrics import (
    DEAD_LETTERS,
    DELIVERY_LATENCY,
    EVENTS_HANDLED,
    HANDLER_RETRIES,
)
from ehr.platform.events.outbox import FIELD_EVENT, FIELD_ONLY_HANDLER, FIELD_TYPE, stream_key
from ehr.platform.events.relay import wait_or_stop
from ehr.platform.events.settings import EventsSettings

__all__ = ["Consumer", "EventHandler", "HandleEvent", "run_consumers"]

logger = structlog.get_logger(__name__)

HandleEvent = Callable[[AsyncSession, Event], Awaitable[None]]

_MAX_ERROR: Final = 1000


@dataclass(frozen=True)
class EventHandler:
    """A named, idempotent reaction to events of ``types`` (empty = every type).

    ``name`` is stable: it is the consumer group and the receipts' key (renaming a handler
    makes it see the stream's retained entries again as new).
    """

    name: str
    handle: HandleEvent
    types: frozenset[str] = field(default_factory=frozenset)

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types


def _error_text(exc: BaseException) -> str:
    """The exception type and its message, bounded (handlers must not put PHI in messages)."""
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]


@dataclass
class Consumer:
    """One handler's consumer in its group."""

    handler: EventHandler
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    key: str
    events: EventsSettings
    name: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )

    @property
    def group(self) -> str:
        return self.handler.name

    async def ensure_group(self) -> None:
        """Create the group at the stream's start (id 0): entries already there are delivered."""
        try:
            await self.redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def due_retries(self) -> list[tuple[bytes, dict[bytes, bytes], int]]:
        """Pending entries whose retry delay has passed, claimed by this consumer, with the
        number of times each has now been delivered."""
        floor_ms = int(self.events.handler_timeout_seconds * 1000)
        pending: Any = await self.redis.xpending_range(
            self.key, self.group, min="-", max="+", count=self.events.consumer_batch, idle=floor_ms
        )
        claimed: list[tuple[bytes, dict[bytes, bytes], int]] = []
        for item in pending:
            deliveries = int(item["times_delivered"])
            wait_ms = int(
                retry_delay(
                    deliveries,
                    timeout=self.events.handler_timeout_seconds,
                    base=self.events.retry_base_seconds,
                    cap=self.events.retry_max_seconds,
                )
                * 1000
            )
            if int(item["time_since_delivered"]) < wait_ms:
                continue
            # XCLAIM with the same min-idle: if another consumer claimed it meanwhile, we do not.
            entries: Any = await self.redis.xclaim(
                self.key,
                self.group,
                self.name,
                min_idle_time=wait_ms,
                message_ids=[item["message_id"]],
            )
            for entry_id, fields in entries:
                if fields is None:  # deleted from the stream by trimming
                    await self.redis.xack(self.key, self.group, entry_id)
                    continue
                claimed.append((entry_id, fields, deliveries + 1))
        return claimed

    async def read_new(self) -> list[tuple[bytes, dict[bytes, bytes], int]]:
        reply: Any = await self.redis.xreadgroup(
            self.group,
            self.name,
            {self.key: ">"},
            count=self.events.consumer_batch,
            block=self.events.consumer_block_ms,
        )
        return [
            (entry_id, fields, 1)
            for _stream, entries in reply or []
            for entry_id, fields in entries
        ]

    async def process(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> str:
        """Handle one entry; returns the outcome (acknowledged unless ``failed``)."""
        handler = self.handler
        only = fields.get(FIELD_ONLY_HANDLER)
        event_type = fields.get(FIELD_TYPE, b"").decode()
        if (only is not None and only.decode() != handler.name) or not handler.wants(event_type):
            await self.redis.xack(self.key, self.group, entry_id)
            EVENTS_HANDLED.labels(handler=handler.name, outcome="skipped").inc()
            return "skipped"
        try:
            event = Event.from_json(fields[FIELD_EVENT])
        except (KeyError, ValidationError) as exc:
            # An entry no handler can read: straight to the dead letters (retrying cannot help).
            await self.dead_letter(None, fields, exc, deliveries)
            await self.redis.xack(self.key, self.group, entry_id)
            return "dead_lettered"
        if deliveries > 1:
            HANDLER_RETRIES.labels(handler=handler.name).inc()
        try:
            async with self.sessions() as session, session.begin():
                fresh = await session.scalar(
                    pg_insert(EventReceipt)
                    .values(handler=handler.name, event_id=event.id)
                    .on_conflict_do_nothing()
                    .returning(EventReceipt.event_id)
                )
                if fresh is not None:
                    await asyncio.wait_for(
                        handler.handle(session, event),
                        timeout=self.events.handler_timeout_seconds,
                    )
        except (OperationalError, InterfaceError):
            # PostgreSQL unreachable: not the handler's failure. The loop backs off; the entry
            # stays pending and is claimed again once the database is back.
            raise
        except Exception as exc:  # noqa: BLE001 - a handler's failure is data, not a crash
            return await self.failed(entry_id, event, fields, exc, deliveries)
        await self.redis.xack(self.key, self.group, entry_id)
        outcome = "handled" if fresh is not None else "duplicate"
        EVENTS_HANDLED.labels(handler=handler.name, outcome=outcome).inc()
        if fresh is not None:
            latency = (datetime.now(UTC) - event.occurred_at).total_seconds()
            DELIVERY_LATENCY.labels(handler=handler.name).observe(max(latency, 0.0))
        return outcome

    async def failed(
        self,
        entry_id: bytes,
        event: Event,
        fields: dict[bytes, bytes],
        exc: BaseException,
        deliveries: int,
    ) -> str:
        if deliveries >= self.events.max_attempts:
            await self.dead_letter(event, fields, exc, deliveries)
            await self.redis.xack(self.key, self.group, entry_id)
            return "dead_lettered"
        logger.warning(
            "events.handler.failed",
            handler=self.handler.name,
            event_id=str(event.id),
            type=event.type,
            error=type(exc).__name__,
            deliveries=deliveries,
        )
        return "failed"

    async def dead_letter(
        self, event: Event | None, fields: dict[bytes, bytes], exc: BaseException, deliveries: int
    ) -> None:
        payload: dict[str, Any] = (
            event.model_dump(mode="json") if event is not None else {"unreadable": True}
        )
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert(EventDeadLetter).values(
                    event_id=event.id if event is not None else uuid.UUID(int=0),
                    handler=self.handler.name,
                    tenant=event.tenant
                    if event is not None
                    else fields.get(b"tenant", b"?").decode()[:63],
                    type=event.type
                    if event is not None
                    else fields.get(FIELD_TYPE, b"?").decode()[:128],
                    payload=payload,
                    error=_error_text(exc),
                    attempts=deliveries,
                )
            )
        DEAD_LETTERS.labels(handler=self.handler.name).inc()
        EVENTS_HANDLED.labels(handler=self.handler.name, outcome="dead_lettered").inc()
        logger.error(
            "events.dead_lettered",
            handler=self.handler.name,
            event_id=str(event.id) if event is not None else None,
            error=type(exc).__name__,
            attempts=deliveries,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; Redis or PostgreSQL failures back off, never crash."""
        failures = 0
        group_ready = False
        logger.info("events.consumer.started", handler=self.handler.name, consumer=self.name)
        while not stop.is_set():
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                batch = await self.due_retries()
                if not batch:
                    batch = await self.read_new()
                for entry_id, fields, deliveries in batch:
                    if stop.is_set():
                        break
                    await self.process(entry_id, fields, deliveries)
            except (RedisError, SQLAlchemyError, OSError) as exc:
                failures += 1
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    group_ready = False  # the stream was deleted (Redis lost it): recreate
                delay = jittered(
                    failures,
                    base=self.events.relay_backoff_base_seconds,
                    cap=self.events.relay_backoff_max_seconds,
                )
                (logger.warning if failures == 1 else logger.debug)(
                    "events.consumer.failed",
                    handler=self.handler.name,
                    error=type(exc).__name__,
                    retry_in_seconds=round(delay, 2),
                )
                await wait_or_stop(stop, delay)
                continue
            if failures:
                logger.info("events.consumer.recovered", handler=self.handler.name)
                failures = 0
        logger.info("events.consumer.stopped", handler=self.handler.name, consumer=self.name)


async def run_consumers(
    settings: Settings,
    handlers: Iterable[EventHandler] = (),
    *,
    stop: asyncio.Event,
    events: EventsSettings | None = None,
    redis: Redis | None = None,
) -> None:
    """Run one consumer per handler on this app schema's stream until ``stop`` is set.

    With no handlers it returns at once. ``events`` and ``redis`` as for ``run_relay``.
    """
    chosen: Sequence[EventHandler] = tuple(handlers)
    names = [handler.name for handler in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"handler names must be unique: {names}")
    if not chosen:
        logger.info("events.consumers.none")
        return
    events = events or settings.events
    engine = create_engine(settings.db)
    client = redis if redis is not None else create_redis(settings)
    sessions = create_sessionmaker(engine)
    key = stream_key(events, settings.db.app_schema)
    consumers = [Consumer(handler, sessions, client, key, events) for handler in chosen]
    try:
        await asyncio.gather(*(consumer.run(stop) for consumer in consumers))
    finally:
        if redis is None:
            await client.aclose()
        await engine.dispose()
