"""Outbound webhooks (ADR 0026): tenants' endpoints, Standard Webhooks signatures, durable
deliveries as jobs with retries, disabling after sustained failure, an SSRF guard, replay.

For the composition roots::

    app.include_router(webhooks.router)                 # /api/webhooks (entrypoints/api.py)
    WORKER_JOBS = (..., *webhooks.JOBS)                 # the delivery job (entrypoints/worker.py)
    await events.run_consumers(settings, (*webhooks.HANDLERS, ...), stop=stop)

``HANDLERS`` holds the events consumer that turns each event into deliveries; code that has an
event and a session can call :func:`enqueue_deliveries` itself (same transaction).
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from ehr.platform import events, jobs
from ehr.platform.webhooks import service
from ehr.platform.webhooks.attempts import DELIVER
from ehr.platform.webhooks.router import delivery_out, endpoint_out, router
from ehr.platform.webhooks.service import (
    create_endpoint,
    get_delivery,
    get_endpoint,
    list_deliveries,
    list_endpoints,
    replay_delivery,
    set_enabled,
)
from ehr.platform.webhooks.settings import WebhooksSettings
from ehr.platform.webhooks.signing import generate_secret, sign, signature_headers, verify
from ehr.platform.webhooks.targets import TargetRefused, refusal_of, resolve_target

__all__ = [
    "DELIVER",
    "HANDLERS",
    "HANDLER_NAME",
    "JOBS",
    "TargetRefused",
    "WebhooksSettings",
    "create_endpoint",
    "delivery_out",
    "endpoint_out",
    "enqueue_deliveries",
    "generate_secret",
    "get_delivery",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "refusal_of",
    "replay_delivery",
    "resolve_target",
    "router",
    "set_enabled",
    "sign",
    "signature_headers",
    "verify",
]

# The consumer group and receipts' key of the events handler (stable: see EventHandler).
HANDLER_NAME: Final = "webhooks.enqueue"


async def enqueue_deliveries(session: AsyncSession, event: events.Event) -> list[uuid.UUID]:
    """A delivery and its job for each enabled endpoint of the event's tenant that wants the
    event's type, in ``session``'s transaction (idempotent per endpoint and event)."""
    return await service.enqueue_deliveries(session, event, DELIVER)


async def _handle(session: AsyncSession, event: events.Event) -> None:
    await enqueue_deliveries(session, event)


HANDLERS: Final[tuple[events.EventHandler, ...]] = (events.EventHandler(HANDLER_NAME, _handle),)
JOBS: Final[tuple[jobs.JobDefinition, ...]] = (DELIVER,)
