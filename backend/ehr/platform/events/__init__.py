"""Domain events (ADR 0023): a typed envelope, a transactional outbox in PostgreSQL, a relay to
a Redis stream, consumer groups with idempotent handlers, retries and dead letters.

For modules (in the same unit of work as the write the event reports)::

    from ehr.platform import events

    events.emit(session, events.new_event(
        "order.signed", tenant=tenant.slug, subject="Patient/123",
        resource="ServiceRequest/456", resource_version="3", data={"priority": "stat"},
    ))                                   # commits or rolls back with the caller's transaction

    async def notify_clinician(session: AsyncSession, event: events.Event) -> None:
        ...                              # effects in ``session``: committed with the receipt

    HANDLERS = (events.EventHandler("results.notify", notify_clinician,
                                    frozenset({"result.critical"})),)

For the worker (``ehr worker``, ADR 0024), which runs them until ``stop`` is set::

    await events.run_relay(settings, stop=stop)
    await events.run_consumers(settings, HANDLERS, stop=stop)

Both take ``events=EventsSettings(...)`` (else ``EHR_EVENTS__*``) and ``redis=`` (else a client
of ``settings.redis``). Neither raises on Redis or PostgreSQL being down: they back off and
resume. Operators: ``ehr events status|dead-letters list|replay|replay-outbox``.

``EVENT_JOBS`` (the daily ``events.prune``) belongs in the worker's ``WORKER_JOBS``.

Readers of the stream other than consumer groups (the realtime hub) use ``stream_key`` and the
entry fields ``FIELD_EVENT`` (the envelope JSON), ``FIELD_TENANT``, ``FIELD_TYPE`` and
``FIELD_ONLY_HANDLER`` (present on a replayed dead letter: meant for one handler, skip it).
"""

from ehr.platform.events.backoff import jittered, retry_delay
from ehr.platform.events.consumers import Consumer, EventHandler, HandleEvent, run_consumers
from ehr.platform.events.envelope import (
    EVENT_SCHEMA_VERSION,
    Event,
    EventDataError,
    Reference,
    new_event,
)
from ehr.platform.events.jobs import EVENT_JOBS, PRUNE_EVENTS, prune_events
from ehr.platform.events.outbox import (
    FIELD_EVENT,
    FIELD_ONLY_HANDLER,
    FIELD_TENANT,
    FIELD_TYPE,
    emit,
    emit_once,
    stream_key,
)
from ehr.platform.events.relay import Relay, run_relay
from ehr.platform.events.replay import (
    DeadLetterView,
    list_dead_letters,
    outbox_status,
    replay_dead_letters,
    replay_outbox,
)
from ehr.platform.events.settings import EventsSettings

__all__ = [
    "EVENT_JOBS",
    "EVENT_SCHEMA_VERSION",
    "FIELD_EVENT",
    "FIELD_ONLY_HANDLER",
    "FIELD_TENANT",
    "FIELD_TYPE",
    "PRUNE_EVENTS",
    "Consumer",
    "DeadLetterView",
    "Event",
    "EventDataError",
    "EventHandler",
    "EventsSettings",
    "HandleEvent",
    "Reference",
    "Relay",
    "emit",
    "emit_once",
    "jittered",
    "list_dead_letters",
    "new_event",
    "outbox_status",
    "prune_events",
    "replay_dead_letters",
    "replay_outbox",
    "retry_delay",
    "run_consumers",
    "run_relay",
    "stream_key",
]
