"""The ``/api/webhooks`` documents. The secret appears once, in :class:`EndpointCreated`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ehr.platform.webhooks.matching import EVENT_TYPE_PATTERN

__all__ = [
    "DeliveryList",
    "DeliveryOut",
    "EndpointCreate",
    "EndpointCreated",
    "EndpointList",
    "EndpointOut",
]

EventTypePattern = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=128)]
DeliveryStatus = Literal["pending", "retrying", "succeeded", "failed"]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, description="https URL of the receiver.")
    event_types: list[EventTypePattern] = Field(
        min_length=1,
        max_length=50,
        description="Event types: exact (`order.signed`), `result.*`, or `*` for all.",
    )
    description: str | None = Field(default=None, max_length=500)


class EndpointOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="`manual`, or `failing` (sustained failure).")
    disabled_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_success_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_<base64>`); shown only in this answer."
    )


class EndpointList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EndpointOut]


class DeliveryOut(BaseModel):
    """A delivery's log entry: no request or response body."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The `webhook-id` header.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str | None
    replay_of: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[DeliveryOut]
