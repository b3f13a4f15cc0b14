"""Reading the domain-event stream the relay writes (ADR 0023): the only code here that knows its
shape, kept small on purpose.

One stream per app schema (``events.stream_key``), every tenant in it; each entry carries the
envelope (JSON) and copies of its tenant and type, so entries of other tenants are skipped
without parsing. An entry carrying ``only`` is a dead letter replayed for one handler: the
realtime channel saw the original and skips it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ehr.platform.events import FIELD_EVENT, FIELD_ONLY_HANDLER, FIELD_TENANT, FIELD_TYPE, Event

__all__ = ["STREAM_ID", "StreamEntry", "StreamPosition", "StreamReader", "stream_id"]

# A Redis stream entry id: "<milliseconds>-<sequence>".
STREAM_ID: Final = r"^[0-9]{1,20}-[0-9]{1,20}$"
_STREAM_ID: Final = re.compile(STREAM_ID)
ZERO: Final = (0, 0)

StreamPosition = tuple[int, int]


def stream_id(text: str) -> StreamPosition:
    """``"1733561234567-3"`` → ``(1733561234567, 3)``; ValueError when it is not one."""
    if not _STREAM_ID.fullmatch(text):
        raise ValueError("not a stream entry id")
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def _text(position: StreamPosition) -> str:
    return f"{position[0]}-{position[1]}"


@dataclass(slots=True)
class StreamEntry:
    """One entry: its stream id and position, the tenant and type (for filtering), the envelope."""

    id: str
    position: StreamPosition
    tenant: str
    type: str
    raw: bytes
    _event: Event | None = field(default=None, repr=False)
    # The message subscribers get (the channel builds it once, for all of them).
    wire: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def event(self) -> Event:
        """The envelope, parsed once however many subscribers see it."""
        if self._event is None:
            self._event = Event.from_json(self.raw)
        return self._event

    @classmethod
    def parse(cls, entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamEntry | None:
        """The entry, or None for what a subscriber never gets (a replay for one handler, an
        entry without the fields the relay writes)."""
        if FIELD_ONLY_HANDLER in fields:
            return None
        raw, tenant, type_ = (
            fields.get(FIELD_EVENT),
            fields.get(FIELD_TENANT),
            fields.get(FIELD_TYPE),
        )
        if raw is None or tenant is None or type_ is None:
            return None
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return cls(text, stream_id(text), tenant.decode(), type_.decode(), raw)


def _entries(rows: Sequence[Any]) -> list[StreamEntry]:
    parsed = (StreamEntry.parse(entry_id, fields) for entry_id, fields in rows)
    return [entry for entry in parsed if entry is not None]


@dataclass(frozen=True, slots=True)
class StreamReader:
    """XINFO / XRANGE / XREAD on the one stream."""

    redis: Redis
    key: str

    async def head(self) -> tuple[StreamPosition, StreamPosition]:
        """(the last id ever added, the highest id trimmed away) — ``(0, 0)`` when none."""
        try:
            info: dict[Any, Any] = await self.redis.xinfo_stream(self.key)
        except ResponseError as exc:  # no such key yet: nothing added, nothing trimmed
            if "no such key" in str(exc).lower():
                return ZERO, ZERO
            raise
        last = info.get("last-generated-id") or info.get(b"last-generated-id") or b"0-0"
        trimmed = info.get("max-deleted-entry-id") or info.get(b"max-deleted-entry-id") or b"0-0"
        return stream_id(_decode(last)), stream_id(_decode(trimmed))

    async def after(
        self, position: StreamPosition, count: int
    ) -> tuple[list[StreamEntry], StreamPosition | None]:
        """Up to ``count`` entries after ``position`` (exclusive): the ones a subscriber may get
        and the last id scanned (None: nothing after ``position``)."""
        rows: Any = await self.redis.xrange(
            self.key, min=f"({_text(position)}", max="+", count=count
        )
        if not rows:
            return [], None
        return _entries(rows), stream_id(_decode(rows[-1][0]))

    async def live(
        self, position: StreamPosition, *, block_ms: int, count: int
    ) -> tuple[list[StreamEntry], StreamPosition]:
        """Entries after ``position``, waiting up to ``block_ms`` for one; the new position."""
        answer: Any = await self.redis.xread(
            {self.key: _text(position)}, count=count, block=block_ms
        )
        if not answer:
            return [], position
        rows = answer[0][1]
        if not rows:
            return [], position
        return _entries(rows), stream_id(_decode(rows[-1][0]))


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
