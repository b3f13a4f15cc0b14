"""Consumer rules that need no Redis or PostgreSQL: which entries a handler skips (and still
acknowledges), handler names, the worker's call without handlers, the stream's key and fields."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from support.settings import SettingsFactory

from ehr.platform import events
from ehr.platform.events.outbox import entry_fields


class AckOnlyRedis:
    """Records XACKs; any other call would be a test failure (attribute error)."""

    def __init__(self) -> None:
        self.acked: list[bytes] = []

    async def xack(self, _key: str, _group: str, entry_id: bytes) -> int:
        self.acked.append(entry_id)
        return 1


async def never_called(_session: Any, _event: events.Event) -> None:
    raise AssertionError("the handler must not run")


def consumer(handler: events.EventHandler, redis: AckOnlyRedis) -> events.Consumer:
    def no_sessions() -> Any:
        raise AssertionError("no transaction for a skipped entry")

    return events.Consumer(
        handler,
        no_sessions,  # type: ignore[arg-type]
        redis,  # type: ignore[arg-type]
        "ehr:events:test",
        events.EventsSettings(),
    )


def an_event(type_: str = "order.signed") -> events.Event:
    return events.Event(type=type_, tenant="acme", subject="Patient/1")


async def test_an_entry_of_a_type_the_handler_does_not_take_is_acknowledged_unread() -> None:
    redis = AckOnlyRedis()
    handler = events.EventHandler("h", never_called, frozenset({"result.critical"}))
    outcome = await consumer(handler, redis).process(b"1-0", entry_fields(an_event()), 1)
    assert outcome == "skipped"
    assert redis.acked == [b"1-0"]


async def test_a_replayed_dead_letter_of_another_handler_is_acknowledged_unread() -> None:
    redis = AckOnlyRedis()
    handler = events.EventHandler("mine", never_called)
    fields = entry_fields(an_event(), only_handler="theirs")
    assert await consumer(handler, redis).process(b"2-0", fields, 1) == "skipped"
    assert redis.acked == [b"2-0"]


def test_entry_fields_carry_the_envelope_tenant_and_type() -> None:
    event = an_event()
    fields = entry_fields(event)
    assert events.Event.from_json(fields[events.FIELD_EVENT]) == event
    assert fields[events.FIELD_TENANT] == b"acme"
    assert fields[events.FIELD_TYPE] == b"order.signed"
    assert events.FIELD_ONLY_HANDLER not in fields
    assert entry_fields(event, only_handler="h")[events.FIELD_ONLY_HANDLER] == b"h"


def test_a_handler_without_types_takes_every_type() -> None:
    assert events.EventHandler("h", never_called).wants("anything.at_all")
    assert not events.EventHandler("h", never_called, frozenset({"a.b"})).wants("c.d")


def test_the_stream_is_per_app_schema() -> None:
    config = events.EventsSettings()
    assert events.stream_key(config, "ehr_app") == "ehr:events:ehr_app"


async def test_the_worker_call_without_handlers_returns_at_once(
    unit_settings: SettingsFactory,
) -> None:
    # ``ehr worker`` calls run_consumers(settings, stop=stop): nothing to consume, no I/O.
    await asyncio.wait_for(events.run_consumers(unit_settings(), stop=asyncio.Event()), 5)


async def test_handler_names_must_be_unique(unit_settings: SettingsFactory) -> None:
    twice = [events.EventHandler("same", never_called)] * 2
    with pytest.raises(ValueError, match="unique"):
        await events.run_consumers(unit_settings(), twice, stop=asyncio.Event())


def test_event_ids_are_fresh() -> None:
    assert an_event().id != an_event().id
    assert isinstance(an_event().id, uuid.UUID)
