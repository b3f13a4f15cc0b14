"""Webhooks from the API's, the CLI's and the events' side: endpoints (create, list, read,
enable, disable), deliveries (enqueued from events, listed, replayed). Everything in the
caller's session (the caller commits), every read scoped to one tenant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Environment, Settings
from ehr.core.db.models import Tenant, WebhookDelivery, WebhookEndpoint
from ehr.platform import jobs
from ehr.platform.auth.crypto import decrypt, encrypt
from ehr.platform.events import Event
from ehr.platform.webhooks.errors import (
    DeliveryNotFoundError,
    DeliveryNotReplayableError,
    EndpointNotFoundError,
)
from ehr.platform.webhooks.matching import matches
from ehr.platform.webhooks.settings import WebhooksSettings
from ehr.platform.webhooks.signing import generate_secret
from ehr.platform.webhooks.targets import resolve_target

__all__ = [
    "CreatedEndpoint",
    "create_endpoint",
    "delivery_body",
    "endpoint_secret",
    "enqueue_deliveries",
    "get_delivery",
    "get_endpoint",
    "list_deliveries",
    "list_endpoints",
    "queue_attempt",
    "replay_delivery",
    "set_enabled",
]

logger = structlog.get_logger(__name__)

OWNER: Final = "system:webhooks"


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def allow_http(settings: Settings, webhooks: WebhooksSettings) -> bool:
    return webhooks.allow_http or settings.env is Environment.DEVELOPMENT


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    webhooks: WebhooksSettings,
    *,
    tenant_id: uuid.UUID,
    url: str,
    event_types: Sequence[str],
    description: str | None,
    created_by: str,
) -> CreatedEndpoint:
    """Register an endpoint after the SSRF check of its URL; the secret is returned once."""
    await resolve_target(
        url,
        allow_http=allow_http(settings, webhooks),
        allow_private=webhooks.allow_private_targets,
    )
    secret = generate_secret()
    now = datetime.now(UTC)
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        url=url,
        description=description,
        event_types=sorted(set(event_types)),
        secret_encrypted=encrypt(settings, secret.encode("ascii")),
        enabled=True,
        consecutive_failures=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    logger.info("webhooks.endpoint.created", endpoint_id=str(endpoint.id))
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def endpoint_secret(settings: Settings, endpoint: WebhookEndpoint) -> str:
    return decrypt(settings, endpoint.secret_encrypted).decode("ascii")


async def list_endpoints(session: AsyncSession, tenant_id: uuid.UUID) -> list[WebhookEndpoint]:
    query = (
        sa.select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list((await session.scalars(query)).all())


async def get_endpoint(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    query = sa.select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
    )
    if for_update:
        query = query.with_for_update()
    endpoint = await session.scalar(query)
    if endpoint is None:
        raise EndpointNotFoundError("No webhook endpoint with this id for this tenant.")
    return endpoint


async def set_enabled(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, enabled: bool
) -> WebhookEndpoint:
    """Enable (the failure streak starts again) or disable (``manual``) an endpoint."""
    endpoint = await get_endpoint(session, tenant_id, endpoint_id, for_update=True)
    now = datetime.now(UTC)
    endpoint.enabled = enabled
    endpoint.updated_at = now
    if enabled:
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
    else:
        endpoint.disabled_reason = "manual"
        endpoint.disabled_at = now
    await session.flush()
    return endpoint


def delivery_body(payload: dict[str, Any]) -> bytes:
    """The POSTed JSON: ``{"type", "timestamp", "data"}`` (the Standard Webhooks payload
    shape), ``data`` being the event envelope (ids and codes only). Deterministic."""
    document = {
        "type": payload.get("type"),
        "timestamp": payload.get("occurred_at"),
        "data": payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


async def queue_attempt(
    session: AsyncSession,
    delivery: WebhookDelivery,
    definition: jobs.JobDefinition,
    *,
    schedule_at: datetime | None = None,
) -> None:
    job = await jobs.defer(
        session,
        definition,
        tenant_id=delivery.tenant_id,
        owner=OWNER,
        args={"delivery_id": str(delivery.id)},
        schedule_at=schedule_at,
    )
    delivery.job_id = job.id
    delivery.next_attempt_at = schedule_at


async def enqueue_deliveries(
    session: AsyncSession, event: Event, definition: jobs.JobDefinition
) -> list[uuid.UUID]:
    """One delivery row and one job per enabled endpoint of the event's tenant whose patterns
    match the event type, in the caller's transaction. Idempotent: an event already enqueued
    for an endpoint is skipped (unique endpoint + event). The delivery ids created."""
    tenant_id = await session.scalar(sa.select(Tenant.id).where(Tenant.slug == event.tenant))
    if tenant_id is None:
        return []
    endpoints = (
        await session.scalars(
            sa.select(WebhookEndpoint).where(
                WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
            )
        )
    ).all()
    created: list[uuid.UUID] = []
    payload = event.model_dump(mode="json")
    for endpoint in endpoints:
        if not matches(endpoint.event_types, event.type):
            continue
        delivery_id = await session.scalar(
            insert(WebhookDelivery)
            .values(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=event.type,
                payload=payload,
                status="pending",
                attempts=0,
            )
            .on_conflict_do_nothing(
                index_elements=["endpoint_id", "event_id"],
                index_where=sa.text("replay_of IS NULL"),
            )
            .returning(WebhookDelivery.id)
        )
        if delivery_id is None:
            continue
        delivery = await session.get_one(WebhookDelivery, delivery_id)
        await queue_attempt(session, delivery, definition)
        created.append(delivery_id)
    if created:
        await session.flush()
        logger.info(
            "webhooks.deliveries.enqueued",
            event_id=str(event.id),
            type=event.type,
            deliveries=len(created),
        )
    return created


async def list_deliveries(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    status: str | None = None,
    limit: int = 50,
) -> list[WebhookDelivery]:
    await get_endpoint(session, tenant_id, endpoint_id)
    query = sa.select(WebhookDelivery).where(
        WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.endpoint_id == endpoint_id
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list((await session.scalars(query.limit(limit))).all())


async def get_delivery(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    delivery = await session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.endpoint_id == endpoint_id,
        )
    )
    if delivery is None:
        raise DeliveryNotFoundError("No webhook delivery with this id for this endpoint.")
    return delivery


async def replay_delivery(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    definition: jobs.JobDefinition,
) -> WebhookDelivery:
    """Send a finished delivery's event again: a new delivery (same ``webhook-id``, so a
    receiver that deduplicates sees the same message), ``replay_of`` the original."""
    endpoint = await get_endpoint(session, tenant_id, endpoint_id)
    original = await get_delivery(session, tenant_id, endpoint_id, delivery_id)
    if original.status in ("pending", "retrying"):
        raise DeliveryNotReplayableError(
            "The delivery is still under way.", extra={"status": original.status}
        )
    if not endpoint.enabled:
        raise DeliveryNotReplayableError(
            "The endpoint is disabled; enable it first.", extra={"status": original.status}
        )
    replay = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        event_id=original.event_id,
        event_type=original.event_type,
        payload=original.payload,
        status="pending",
        attempts=0,
        replay_of=original.id,
    )
    session.add(replay)
    await session.flush()
    await queue_attempt(session, replay, definition)
    await session.flush()
    return replay
