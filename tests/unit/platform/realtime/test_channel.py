"""The resume seam, the slow-consumer policy, heartbeats and expiry, on an in-memory stream.

The hub and the channel are the real ones; only the stream reader is replaced by a list that a
test appends to (``InMemoryStream``: the same three reads as ``StreamReader``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from support.principals import make_principal

from ehr.platform import events
from ehr.platform.auth.principal import Principal
from ehr.platform.realtime.access import Subscription
from ehr.platform.realtime.hub import Hub, Subscriber
from ehr.platform.realtime.service import (
    FORBIDDEN,
    SLOW_CONSUMER,
    UNAUTHENTICATED,
    Channel,
    ChannelClosedError,
    Grant,
)
from ehr.platform.realtime.settings import RealtimeSettings
from ehr.platform.realtime.stream import StreamEntry, StreamPosition

TENANT = "alpha"


def entry(n: int, *, tenant: str = TENANT, type_: str = "result.critical") -> StreamEntry:
    event = events.new_event(
        type_, tenant=tenant, subject="Patient/p1", resource=f"Observation/{n}"
    )
    return StreamEntry(f"{n}-0", (n, 0), tenant, type_, event.to_json().encode())


class InMemoryStream:
    """``head`` / ``after`` / ``live`` over a list; ``append`` wakes the live reader."""

    key = "test:stream"

    def __init__(self, entries: list[StreamEntry] | None = None) -> None:
        self.entries: list[StreamEntry] = list(entries or [])
        self.trimmed: StreamPosition = (0, 0)
        self.changed = asyncio.Event()

    def append(self, *new: StreamEntry) -> None:
        self.entries.extend(new)
        self.changed.set()

    async def head(self) -> tuple[StreamPosition, StreamPosition]:
        last = self.entries[-1].position if self.entries else (0, 0)
        return last, self.trimmed

    async def after(
        self, position: StreamPosition, count: int
    ) -> tuple[list[StreamEntry], StreamPosition | None]:
        rows = [e for e in self.entries if e.position > position][:count]
        return rows, (rows[-1].position if rows else None)

    async def live(
        self, position: StreamPosition, *, block_ms: int, count: int
    ) -> tuple[list[StreamEntry], StreamPosition]:
        rows, last = await self.after(position, count)
        if not rows:
            self.changed.clear()
            try:
                async with asyncio.timeout(block_ms / 1000):
                    await self.changed.wait()
            except TimeoutError:
                return [], position
            rows, last = await self.after(position, count)
        return rows, last or position


def settings(**overrides: Any) -> RealtimeSettings:
    values: dict[str, Any] = {"heartbeat_seconds": 300, "revalidate_seconds": 3600}
    values.update(overrides)
    return RealtimeSettings(**values)


def channel(
    stream: InMemoryStream,
    principal: Principal | None = None,
    *,
    expires_at: float | None = None,
    subscription: Subscription | None = None,
    **overrides: Any,
) -> Channel:
    hub = Hub(stream, block_ms=50, batch=100)  # type: ignore[arg-type]
    grant = Grant(principal or make_principal(TENANT, "physician"), expires_at)

    async def reauthenticate() -> Grant:
        return grant

    return Channel(
        hub,
        settings(**overrides),
        grant,
        subscription or Subscription(),
        reauthenticate=reauthenticate,
        transport="test",
    )


class Client:
    """Collects what the channel sends; ``stop_after`` ends the pump after that many events."""

    def __init__(
        self,
        stop_after: int | None = None,
        stop_when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self.stop_after = stop_after
        self.stop_when = stop_when
        self.done = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if self.stop_after is not None and len(self.event_ids) >= self.stop_after:
            self.done.set()
        if self.stop_when is not None and self.stop_when(message):
            self.done.set()

    @property
    def event_ids(self) -> list[str]:
        return [m["id"] for m in self.messages if m["type"] == "event"]


async def pump_until_done(ch: Channel, client: Client) -> None:
    pump = asyncio.create_task(ch.pump(client.send))
    try:
        await client.done.wait()
    finally:
        pump.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pump
        ch.close(1000)


async def test_resume_sends_what_was_missed_then_live_without_gap_or_duplicate() -> None:
    stream = InMemoryStream([entry(n) for n in range(1, 6)])
    ch = channel(stream)
    client = Client(stop_after=6)
    appended = False

    async def send_then_more_arrive(message: dict[str, Any]) -> None:
        nonlocal appended
        await client.send(message)
        if not appended:
            # Entries arrive while the backlog is being sent: the live reader sees them (held),
            # and so may the backlog's next page. Each must reach the client once, in order.
            appended = True
            stream.append(entry(6), entry(7))
            for _ in range(20):
                await asyncio.sleep(0)

    await ch.open(send_then_more_arrive, (2, 0))
    stream.append(entry(8))
    await pump_until_done(ch, client)
    assert client.event_ids == ["3-0", "4-0", "5-0", "6-0", "7-0", "8-0"]
    ready = [m for m in client.messages if m["type"] == "ready"]
    assert len(ready) == 1


async def test_a_fresh_client_gets_only_what_happens_after_it_connected() -> None:
    stream = InMemoryStream([entry(1), entry(2)])
    ch = channel(stream)
    client = Client(stop_after=1)
    await ch.open(client.send, None)
    assert client.messages[0] == {
        "type": "ready",
        "tenant": TENANT,
        "position": "2-0",
        "expires_at": None,
    }
    stream.append(entry(3))
    await pump_until_done(ch, client)
    assert client.event_ids == ["3-0"]


async def test_other_tenants_and_filtered_types_are_skipped_but_move_the_position() -> None:
    stream = InMemoryStream()
    ch = channel(stream, subscription=Subscription.of(types=["result.*"]), heartbeat_seconds=0.01)
    client = Client(stop_when=lambda m: m["type"] == "heartbeat" and m["position"] == "3-0")
    await ch.open(client.send, None)
    stream.append(entry(1, tenant="beta"), entry(2, type_="order.signed"), entry(3))
    await pump_until_done(ch, client)
    assert client.event_ids == ["3-0"]
    stream.append(entry(4, tenant="beta"))
    client = Client(stop_when=lambda m: m["type"] == "heartbeat" and m["position"] == "4-0")
    ch2 = channel(stream, heartbeat_seconds=0.01)
    await ch2.open(client.send, (3, 0))
    await pump_until_done(ch2, client)
    assert client.event_ids == []


async def test_a_resume_from_a_trimmed_position_says_there_is_a_gap() -> None:
    stream = InMemoryStream([entry(n) for n in range(10, 13)])
    stream.trimmed = (9, 0)
    ch = channel(stream)
    client = Client()
    await ch.open(client.send, (5, 0))
    assert client.event_ids == ["10-0", "11-0", "12-0"]
    assert client.messages[-1] == {"type": "gap", "reason": "trimmed", "position": "5-0"}
    ch.close(1000)


async def test_a_resume_from_an_id_the_stream_never_had_says_so() -> None:
    stream = InMemoryStream([entry(1)])
    ch = channel(stream)
    client = Client()
    await ch.open(client.send, (99, 0))
    assert client.event_ids == []
    assert client.messages[-1]["reason"] == "unknown_position"
    ch.close(1000)


async def test_a_resume_too_far_behind_is_cut_short_with_a_gap() -> None:
    stream = InMemoryStream([entry(n) for n in range(1, 8)])
    ch = channel(stream, resume_max_entries=3)
    client = Client()
    await ch.open(client.send, (0, 1))
    assert client.event_ids == ["1-0", "2-0", "3-0"]
    assert client.messages[-1] == {"type": "gap", "reason": "too_far_behind", "position": "7-0"}
    ch.close(1000)


def test_a_subscriber_whose_queue_is_full_overflows_instead_of_growing() -> None:
    subscriber = Subscriber(tenant=TENANT, accepts=lambda _e: True, limit=3, live=True)
    for n in range(1, 4):
        subscriber.offer(entry(n))
    assert not subscriber.overflowed
    subscriber.offer(entry(4))
    assert subscriber.overflowed
    assert not subscriber.queue  # the memory is released at once
    subscriber.offer(entry(5))
    assert not subscriber.queue


def test_entries_held_during_a_resume_are_bounded_too() -> None:
    subscriber = Subscriber(tenant=TENANT, accepts=lambda _e: True, limit=2)
    subscriber.offer(entry(1))
    subscriber.offer(entry(2))
    subscriber.offer(entry(3))
    assert subscriber.overflowed
    assert not subscriber.held


async def test_the_slow_consumer_is_disconnected_with_its_close_code() -> None:
    stream = InMemoryStream()
    ch = channel(stream, send_queue_max=2)
    client = Client()
    await ch.open(client.send, None)
    for n in range(1, 4):
        ch.hub.dispatch([entry(n)])  # the reader hands them over faster than they are sent
    with pytest.raises(ChannelClosedError) as closed:
        await ch.pump(client.send)
    assert closed.value.code == SLOW_CONSUMER
    ch.close(closed.value.code)
    assert ch.hub.count == 0


async def test_a_client_that_stops_reading_is_disconnected_when_a_send_times_out() -> None:
    stream = InMemoryStream()
    ch = channel(stream, send_timeout_seconds=0.05)
    client = Client()
    await ch.open(client.send, None)
    blocked = asyncio.Event()

    async def never_drains(_message: dict[str, Any]) -> None:
        await blocked.wait()

    stream.append(entry(1))
    with pytest.raises(ChannelClosedError) as closed:
        await ch.pump(never_drains)
    assert closed.value.code == SLOW_CONSUMER
    ch.close(closed.value.code)


async def test_the_connection_ends_when_the_access_token_expires() -> None:
    stream = InMemoryStream()
    ch = channel(stream, expires_at=time.time() + 0.05)
    client = Client()
    await ch.open(client.send, None)
    with pytest.raises(ChannelClosedError) as closed:
        await ch.pump(client.send)
    assert closed.value.code == UNAUTHENTICATED
    assert "expired" in closed.value.reason
    ch.close(closed.value.code)


async def test_a_fresh_token_of_the_same_principal_extends_the_connection() -> None:
    stream = InMemoryStream()
    principal = make_principal(TENANT, "physician")
    ch = channel(stream, principal, expires_at=time.time() - 1)
    ch.replace_grant(Grant(principal, time.time() + 3600))
    assert ch.grant.expires_at is not None
    someone_else = make_principal(TENANT, "physician")
    with pytest.raises(ChannelClosedError) as closed:
        ch.replace_grant(Grant(someone_else, None))
    assert closed.value.code == FORBIDDEN


def test_a_principal_no_event_may_reach_is_refused() -> None:
    with pytest.raises(ChannelClosedError) as closed:
        channel(InMemoryStream(), make_principal(TENANT, "admin"))
    assert closed.value.code == FORBIDDEN


def test_a_replayed_dead_letter_for_one_handler_is_not_an_event_for_subscribers() -> None:
    event = events.new_event("result.critical", tenant=TENANT, subject="Patient/p1")
    fields = {b"event": event.to_json().encode(), b"tenant": b"alpha", b"type": b"result.critical"}
    parsed = StreamEntry.parse(b"5-1", fields)
    assert parsed is not None
    assert parsed.position == (5, 1)
    assert parsed.event.id == event.id
    assert StreamEntry.parse(b"5-2", {**fields, b"only": b"results.notify"}) is None
    assert StreamEntry.parse(b"5-3", {b"tenant": b"alpha"}) is None
    assert uuid.UUID(str(parsed.event.id))
