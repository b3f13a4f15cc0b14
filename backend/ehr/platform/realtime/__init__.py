"""The realtime channel (ADR 0025): a tenant's domain events pushed to frontends over a
WebSocket (``/api/events/ws``) or Server-Sent Events (``/api/events/stream``), filtered by the
subscriber's permissions and patient compartment, resumable from the last stream id.

It reads the relay's stream (ADR 0023, ``ehr.platform.events``); it writes nothing.
"""

from ehr.platform.realtime.access import DOMAIN_PERMISSIONS, Subscription, may_see
from ehr.platform.realtime.dependencies import EVENT_PERMISSIONS
from ehr.platform.realtime.router import router
from ehr.platform.realtime.service import (
    BAD_MESSAGE,
    FORBIDDEN,
    SLOW_CONSUMER,
    TRY_AGAIN_LATER,
    UNAUTHENTICATED,
)
from ehr.platform.realtime.settings import RealtimeSettings

__all__ = [
    "BAD_MESSAGE",
    "DOMAIN_PERMISSIONS",
    "EVENT_PERMISSIONS",
    "FORBIDDEN",
    "SLOW_CONSUMER",
    "TRY_AGAIN_LATER",
    "UNAUTHENTICATED",
    "RealtimeSettings",
    "Subscription",
    "may_see",
    "router",
]
