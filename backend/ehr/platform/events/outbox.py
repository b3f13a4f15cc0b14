"""Writing events: the outbox row in the caller's transaction, and the stream entry.

``emit(session, event)`` adds one ``event_outbox`` row to the caller's session: it commits or
rolls back with the app write beside it, and if PostgreSQL is down the caller's request fails
(nothing is acknowledged that is not stored). Redis is not touched here: the relay moves rows to
the stream later, so Redis being down never fails a request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import structlog
from redis.asyncio import Redis
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import EventOutbox
from ehr.platform.events.envelope import Event
from ehr.platform.events.metrics import EVENTS_EMITTED
from ehr.platform.events.settings import EventsSettings

__all__ = [
    "FIELD_EVENT",
    "FIELD_ONLY_HANDLER",
    "FIELD_TENANT",
    "FIELD_TYPE",
    "emit",
    "emit_once",
    "stream_key",
    "xadd_events",
]

logger = structlog.get_logger(__name__)

# Fields of a stream entry: the envelope (JSON), and copies of tenant and type so that a
# consumer can filter without parsing; ``only`` names the one handler a replayed dead letter is
# for (the other consumer groups acknowledge it unread).
FIELD_EVENT: Final = b"event"
FIELD_TENANT: Final = b"tenant"
FIELD_TYPE: Final = b"type"
FIELD_ONLY_HANDLER: Final = b"only"


def stream_key(events: EventsSettings, app_schema: str) -> str:
    """The stream of one app schema: ``ehr:events:ehr_app`` (a test schema gets its own)."""
    return f"{events.stream_prefix}:{app_schema}"


def emit(session: AsyncSession, event: Event) -> EventOutbox:
    """Add ``event`` to the outbox in ``session``'s transaction (flushed with the caller's work).

    Call it in the same unit of work as the write the event reports; the caller commits.
    """
    row = EventOutbox(
        event_id=event.id,
        tenant=event.tenant,
        type=event.type,
        payload=event.model_dump(mode="json"),
    )
    session.add(row)
    EVENTS_EMITTED.labels(type=event.type).inc()
    return row


async def emit_once(session: AsyncSession, event: Event) -> bool:
    """Add ``event`` unless the outbox already holds an event with its id; ``True`` if added.

    For events whose id is derived from what they report (a FHIR change: tenant, resource,
    version), so that a repeated report adds nothing. Runs an INSERT at once (not at flush);
    it commits or rolls back with the caller's transaction like :func:`emit`.
    """
    statement = (
        insert(EventOutbox)
        .values(
            event_id=event.id,
            tenant=event.tenant,
            type=event.type,
            payload=event.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(index_elements=[EventOutbox.event_id])
        .returning(EventOutbox.id)
    )
    added = (await session.execute(statement)).scalar_one_or_none() is not None
    if added:
        EVENTS_EMITTED.labels(type=event.type).inc()
    return added


def entry_fields(event: Event, *, only_handler: str | None = None) -> dict[bytes, bytes]:
    fields = {
        FIELD_EVENT: event.to_json().encode(),
        FIELD_TENANT: event.tenant.encode(),
        FIELD_TYPE: event.type.encode(),
    }
    if only_handler is not None:
        fields[FIELD_ONLY_HANDLER] = only_handler.encode()
    return fields


async def xadd_events(
    redis: Redis,
    key: str,
    payloads: Iterable[dict[str, Any]],
    *,
    maxlen: int,
    only_handler: str | None = None,
) -> Sequence[bytes]:
    """XADD each envelope (in order, one pipeline round trip), trimming ``MAXLEN ~ maxlen``."""
    pipe = redis.pipeline(transaction=False)
    count = 0
    for payload in payloads:
        event = Event.model_validate(payload)
        pipe.xadd(
            key,
            entry_fields(event, only_handler=only_handler),  # type: ignore[arg-type]
            maxlen=maxlen,
            approximate=True,
        )
        count += 1
    if not count:
        return []
    ids: list[bytes] = await pipe.execute()
    return ids
