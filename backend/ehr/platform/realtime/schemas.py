"""The realtime channel's messages (JSON text frames; the SSE ``data:`` lines carry the same).

Client → server: :class:`AuthMessage` (the first message; sent again later with a fresh token to
keep the connection past the old one's expiry). Server → client: ``ready``, ``event``,
``heartbeat``, ``gap``, ``authenticated``; a refusal is a close frame (codes in
:mod:`ehr.platform.realtime.service`).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.platform.realtime.stream import STREAM_ID

__all__ = [
    "AuthMessage",
    "EventMessage",
    "GapMessage",
    "HeartbeatMessage",
    "ReadyMessage",
    "StreamId",
    "WireMessage",
]

StreamId = Annotated[str, StringConstraints(pattern=STREAM_ID, max_length=41)]
TypePattern = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z][a-z0-9_]{0,39}(\.([a-z][a-z0-9_]{0,39}|\*)){1,3}$", max_length=163
    ),
]
PatientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)]


class AuthMessage(BaseModel):
    """``{"type": "auth", "token": "<access token or API key>", "last_event_id": "…",
    "types": ["result.*"], "patients": ["123"]}`` — the credential, where to resume, and an
    optional filter (narrowing what the caller's permissions allow, never widening it)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=8192, repr=False)
    last_event_id: StreamId | None = None
    types: list[TypePattern] = Field(default_factory=list, max_length=20)
    patients: list[PatientId] = Field(default_factory=list, max_length=50)


class ReadyMessage(BaseModel):
    type: Literal["ready"] = "ready"
    tenant: str
    # Where the connection starts (the last id it resumed past, or the stream's head).
    position: StreamId
    expires_at: datetime | None


class EventMessage(BaseModel):
    type: Literal["event"] = "event"
    # The stream id: what the client sends back as ``last_event_id`` after a reconnect.
    id: StreamId
    event: dict[str, Any]


class HeartbeatMessage(BaseModel):
    type: Literal["heartbeat"] = "heartbeat"
    # Every event up to here was sent or is not for this client: a good ``last_event_id``.
    position: StreamId


class GapMessage(BaseModel):
    """Events after ``last_event_id`` may be missing (trimmed from the stream, or too many to
    replay): reload the state through the API, then carry on from the live events."""

    type: Literal["gap"] = "gap"
    reason: Literal["trimmed", "too_far_behind", "unknown_position"]
    position: StreamId


class WireMessage(dict[str, Any]):
    """A message as sent: an event is serialised ONCE however many subscribers get it (a
    critical result fanned out to 500 clinicians is one JSON encoding, not 500)."""

    @cached_property
    def text(self) -> str:
        return json.dumps(self, separators=(",", ":"))
