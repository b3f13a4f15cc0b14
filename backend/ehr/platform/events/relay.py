"""The relay: outbox rows → the Redis stream, in id order, each row once per relay round.

One round, in one PostgreSQL transaction: take up to ``relay_batch`` unrelayed rows that are due
(``FOR UPDATE SKIP LOCKED``: two relays never take the same row at the same time), XADD them in
one pipeline, stamp ``relayed_at``. Redis failing → the rows get ``attempts + 1``,
``last_error`` and ``next_attempt_at`` (backoff) in that transaction, and the relay waits
(exponential backoff with jitter, never a busy loop, never a crash) and tries again: rows wait
in PostgreSQL and flow when Redis returns. A crash between the XADD and the commit relays those
rows again later: delivery is at-least-once, handlers are idempotent (receipts).

Wake-up: the outbox's insert trigger sends ``NOTIFY ehr_events, '<schema>'`` at commit; the relay
LISTENs on its own connection and also polls every ``relay_poll_seconds`` (a notification sent
while the listener reconnects is not lost for longer than that).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker, libpq_url
from ehr.core.db.models import EventOutbox
from ehr.core.redis_store import create_redis
from ehr.platform.events.backoff import jittered
from ehr.platform.events.metrics import EVENTS_RELAYED, OUTBOX_DEPTH, RELAY_FAILURES, RELAY_LAG
from ehr.platform.events.outbox import stream_key, xadd_events
from ehr.platform.events.settings import EventsSettings

__all__ = ["NOTIFY_CHANNEL", "Relay", "run_relay"]

logger = structlog.get_logger(__name__)

# The channel migration 0009's trigger notifies (payload: the app schema).
NOTIFY_CHANNEL: Final = "ehr_events"


class RelayRoundFailedError(Exception):
    """A round could not write to Redis (the rows were marked for a later attempt)."""


async def wait_or_stop(
    stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
) -> None:
    """Sleep ``seconds`` unless ``stop`` (or ``wake``) is set first."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@dataclass
class Relay:
    """One relay: its sessions, its Redis client, the stream it writes."""

    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    key: str
    events: EventsSettings

    async def relay_once(self) -> int:
        """One round; the number of rows relayed. Raises :class:`RelayRoundFailedError` (Redis) or
        SQLAlchemyError (PostgreSQL) when the round failed."""
        failure: BaseException | None = None
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(EventOutbox.id, EventOutbox.payload)
                    .where(
                        EventOutbox.relayed_at.is_(None),
                        or_(
                            EventOutbox.next_attempt_at.is_(None),
                            EventOutbox.next_attempt_at <= func.now(),
                        ),
                    )
                    .order_by(EventOutbox.id)
                    .limit(self.events.relay_batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            ids = [row.id for row in rows]
            try:
                await xadd_events(
                    self.redis,
                    self.key,
                    (row.payload for row in rows),
                    maxlen=self.events.stream_maxlen,
                )
            except (RedisError, OSError) as exc:
                failure = exc
                await session.execute(
                    update(EventOutbox)
                    .where(EventOutbox.id.in_(ids))
                    .values(
                        attempts=EventOutbox.attempts + 1,
                        last_error=type(exc).__name__,
                        next_attempt_at=func.now()
                        + timedelta(seconds=self.events.relay_backoff_base_seconds),
                    )
                )
            else:
                await session.execute(
                    update(EventOutbox)
                    .where(EventOutbox.id.in_(ids))
                    .values(relayed_at=func.now(), next_attempt_at=None)
                )
        if failure is not None:
            raise RelayRoundFailedError(type(failure).__name__) from failure
        EVENTS_RELAYED.inc(len(ids))
        return len(ids)

    async def measure(self) -> tuple[int, float]:
        """Unrelayed rows and the age (seconds) of the oldest; sets the gauges."""
        async with self.sessions() as session:
            depth, oldest_age = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.extract("epoch", func.now() - func.min(EventOutbox.created_at)),
                            0,
                        ),
                    ).where(EventOutbox.relayed_at.is_(None))
                )
            ).one()
        OUTBOX_DEPTH.set(int(depth))
        RELAY_LAG.set(float(oldest_age))
        return int(depth), float(oldest_age)

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Relay until ``stop`` is set; failures back off and are retried, never raised."""
        failures = 0
        next_measure = 0.0
        logger.info("events.relay.started", stream=self.key)
        while not stop.is_set():
            wake.clear()
            if time.monotonic() >= next_measure:
                # Measured in outages too (only PostgreSQL is needed): that is when it matters.
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await self.measure()
                next_measure = time.monotonic() + self.events.gauge_seconds
            try:
                moved = await self.relay_once()
                if failures and not moved:
                    # Nothing was due (rows wait for next_attempt_at): ask Redis itself
                    # before calling the outage over.
                    await self.redis.ping()
            except (RelayRoundFailedError, RedisError, SQLAlchemyError, OSError) as exc:
                failures += 1
                redis_failed = isinstance(exc, RelayRoundFailedError | RedisError)
                cause = "redis" if redis_failed else "database"
                RELAY_FAILURES.labels(cause=cause).inc()
                delay = jittered(
                    failures,
                    base=self.events.relay_backoff_base_seconds,
                    cap=self.events.relay_backoff_max_seconds,
                )
                log = logger.warning if failures == 1 else logger.debug
                log(
                    "events.relay.failed",
                    cause=cause,
                    error=(
                        str(exc) if isinstance(exc, RelayRoundFailedError) else type(exc).__name__
                    ),
                    failures=failures,
                    retry_in_seconds=round(delay, 2),
                )
                await wait_or_stop(stop, delay)
                continue
            if failures:
                logger.info("events.relay.recovered", after_failures=failures)
                failures = 0
            if moved >= self.events.relay_batch:
                continue  # more rows are waiting
            await wait_or_stop(stop, self.events.relay_poll_seconds, wake)
        logger.info("events.relay.stopped", stream=self.key)


async def listen(
    settings: Settings, events: EventsSettings, wake: asyncio.Event, stop: asyncio.Event
) -> None:
    """Set ``wake`` on each outbox NOTIFY for this app schema; reconnect with backoff."""
    schema = settings.db.app_schema
    failures = 0

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == schema:
            wake.set()

    while not stop.is_set():
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(
                libpq_url(settings.db), server_settings={"application_name": "ehr-events-relay"}
            )
            await connection.add_listener(NOTIFY_CHANNEL, on_notify)
            failures = 0
            wake.set()  # anything committed while we were not listening
            while not stop.is_set() and not connection.is_closed():
                await wait_or_stop(stop, events.relay_poll_seconds)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            failures += 1
            logger.warning("events.relay.listen_failed", error=type(exc).__name__)
            await wait_or_stop(
                stop,
                jittered(
                    failures,
                    base=events.relay_backoff_base_seconds,
                    cap=events.relay_backoff_max_seconds,
                ),
            )
        finally:
            if connection is not None and not connection.is_closed():
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)


async def run_relay(
    settings: Settings,
    *,
    stop: asyncio.Event,
    events: EventsSettings | None = None,
    redis: Redis | None = None,
) -> None:
    """Relay this app schema's outbox to its stream until ``stop`` is set (the worker runs it).

    ``events`` defaults to ``settings.events`` (``EHR_EVENTS__*``); ``redis`` to a client of
    ``settings.redis`` (closed at the end; a client passed in is the caller's to close).
    """
    events = events or settings.events
    engine = create_engine(settings.db)
    client = redis if redis is not None else create_redis(settings)
    relay = Relay(
        create_sessionmaker(engine), client, stream_key(events, settings.db.app_schema), events
    )
    wake = asyncio.Event()
    listener = asyncio.create_task(listen(settings, events, wake, stop), name="events-listen")
    try:
        await relay.run(stop, wake)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        if redis is None:
            await client.aclose()
        await engine.dispose()
