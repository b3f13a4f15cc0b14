"""One live reader per process and stream, fanned out to that process's subscribers.

A connection never reads Redis live itself: 500 idle clients would hold 500 blocked Redis
connections. The hub holds one ``XREAD BLOCK`` and hands each entry to the subscribers of its
tenant; each subscriber has a BOUNDED queue. A subscriber whose queue is full is marked
``overflowed`` (a slow consumer: it is disconnected, the process does not grow), never blocks
the hub or the others.

The resume seam (no gap, no duplicate): a subscriber registers first, in ``held`` mode (the
hub's live entries are kept aside, bounded too), then reads what it missed with XRANGE up to
the end of the stream, then goes live: the held entries are delivered, skipping every id at or
below the last one already sent (stream ids only grow). Registering, recording the hub's
position and going live happen without an ``await`` in between, so no entry falls between.

The hub runs while it has subscribers (the last one leaving stops it): no lifespan hook is
needed, and a shutdown that closes the connections stops it. Redis failing → the hub backs off
and resumes from its position; connected clients keep their heartbeats and get the entries when
Redis returns (the outbox holds what the relay could not write).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.platform.events import jittered
from ehr.platform.realtime.stream import ZERO, StreamEntry, StreamPosition, StreamReader

__all__ = ["Hub", "Subscriber", "hub_for"]

logger = structlog.get_logger(__name__)

_BACKOFF_BASE_SECONDS: Final = 0.25
_BACKOFF_MAX_SECONDS: Final = 5.0


@dataclass(eq=False, slots=True)
class Subscriber:
    """One client's place in the stream and the entries waiting to be sent to it.

    ``position``: every entry at or below it has been sent or filtered out — what the client
    resumes from. ``accepts``: the access rule and the client's own filter (it may change when
    the client re-authenticates).
    """

    tenant: str
    accepts: Callable[[StreamEntry], bool]
    limit: int
    position: StreamPosition = ZERO
    live: bool = False
    overflowed: bool = False
    queue: deque[StreamEntry] = field(default_factory=deque)
    held: list[StreamEntry] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, entry: StreamEntry) -> None:
        """An entry of this subscriber's tenant from the live reader (never blocks)."""
        if self.overflowed:
            return
        if not self.live:
            if len(self.held) >= self.limit:
                self._overflow()
            else:
                self.held.append(entry)
            return
        self._deliver(entry)

    def _deliver(self, entry: StreamEntry) -> None:
        if entry.position <= self.position:
            return  # already sent from the backlog (the seam) or filtered there
        if not self.accepts(entry):
            if not self.queue:
                # Nothing waits to be sent: the client may resume after this entry. (Behind
                # queued entries it may not; a resume then scans it again, and filters it again.)
                self.position = entry.position
            return
        if len(self.queue) >= self.limit:
            self._overflow()
            return
        self.queue.append(entry)
        self.wake.set()

    def _overflow(self) -> None:
        self.overflowed = True
        self.queue.clear()
        self.held.clear()
        self.wake.set()

    def go_live(self) -> None:
        """End of the backlog: deliver what the reader held meanwhile, then live."""
        held, self.held = self.held, []
        self.live = True
        for entry in held:
            self._deliver(entry)

    def take(self) -> StreamEntry | None:
        """The next entry to send (its position is the subscriber's once sent); None if none."""
        return self.queue.popleft() if self.queue else None

    def sent(self, entry: StreamEntry) -> None:
        self.position = entry.position


class Hub:
    """The process's live reader of one stream and its subscribers, by tenant."""

    def __init__(self, reader: StreamReader, *, block_ms: int, batch: int) -> None:
        self.reader = reader
        self.block_ms = block_ms
        self.batch = batch
        self.position: StreamPosition | None = None
        self.subscribers: dict[str, set[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    async def subscribe(self, subscriber: Subscriber) -> StreamPosition:
        """Register ``subscriber`` (held mode) at the hub's position, which it gets as its own;
        raises RedisError when the stream's head cannot be read to start the reader."""
        async with self._lock:
            if self._task is None or self._task.done():
                self.position, _ = await self.reader.head()
                # A context of its own: the reader is no request's (its logs carry no request id).
                self._task = asyncio.create_task(
                    self._run(), name=f"realtime-{self.reader.key}", context=contextvars.Context()
                )
            position = self.position if self.position is not None else (0, 0)
            subscriber.position = position
            self.subscribers.setdefault(subscriber.tenant, set()).add(subscriber)
            return position

    def unsubscribe(self, subscriber: Subscriber) -> None:
        tenant = self.subscribers.get(subscriber.tenant)
        if tenant is not None:
            tenant.discard(subscriber)
            if not tenant:
                del self.subscribers[subscriber.tenant]
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None
            self.position = None

    def dispatch(self, entries: list[StreamEntry]) -> None:
        for entry in entries:
            for subscriber in tuple(self.subscribers.get(entry.tenant, ())):
                subscriber.offer(entry)

    async def _run(self) -> None:
        logger.info("realtime.reader.started", stream=self.reader.key)
        try:
            await self._read()
        finally:
            logger.info("realtime.reader.stopped", stream=self.reader.key)

    async def _read(self) -> None:
        failures = 0
        position = self.position if self.position is not None else (0, 0)
        while self.subscribers:
            try:
                entries, position = await self.reader.live(
                    position, block_ms=self.block_ms, count=self.batch
                )
            except (RedisError, OSError) as exc:
                failures += 1
                delay = jittered(failures, base=_BACKOFF_BASE_SECONDS, cap=_BACKOFF_MAX_SECONDS)
                (logger.warning if failures == 1 else logger.debug)(
                    "realtime.reader.failed", error=type(exc).__name__, failures=failures
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                logger.info("realtime.reader.recovered", after_failures=failures)
                failures = 0
            self.position = position
            self.dispatch(entries)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


_HUBS: Final[weakref.WeakKeyDictionary[Redis, dict[str, Hub]]] = weakref.WeakKeyDictionary()


def hub_for(redis: Redis, key: str, *, block_ms: int, batch: int) -> Hub:
    """The hub of ``key`` for the app using ``redis`` (one per client: per app, per process)."""
    hubs = _HUBS.setdefault(redis, {})
    hub = hubs.get(key)
    if hub is None:
        hub = hubs[key] = Hub(StreamReader(redis, key), block_ms=block_ms, batch=batch)
    return hub
