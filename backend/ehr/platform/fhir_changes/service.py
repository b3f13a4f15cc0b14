"""Taking a notification: check who sent it, turn it into events, store them once.

:func:`take_notification` is the whole rule the worker's listener applies:

- the tenant must be an active tenant of ours and the ``X-Ehr-Hook-Secret`` header its secret
  (constant-time) — else :class:`NotificationRefused` (401), nothing emitted;
- the notification must be well formed (:class:`~ehr.platform.fhir_changes.notifications.
  NotificationError` → 400);
- its events are added to the outbox in one transaction with derived ids; a notification whose
  ``fhir.changed`` event the outbox already holds is a replay (or HAPI repeating one whose
  answer it lost): :class:`NotificationReplayed` (401), nothing emitted.

:func:`repair_all` runs :func:`~ehr.platform.fhir_changes.subscriptions.ensure_subscriptions` for
every active tenant (the worker, at start).
"""

# Outcomes, not failures of ours: named like ehr.core.errors (no "...Error" suffix).
# ruff: noqa: N818

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.models import Tenant
from ehr.core.errors import AppError
from ehr.fhir import FhirClient
from ehr.platform import events
from ehr.platform.fhir_changes.metrics import NOTIFICATIONS
from ehr.platform.fhir_changes.notifications import (
    Change,
    NotificationError,
    change_events,
    read_change,
)
from ehr.platform.fhir_changes.subscriptions import (
    SubscriptionRepair,
    ensure_subscriptions,
    secret_matches,
)

__all__ = [
    "NotificationRefused",
    "NotificationReplayed",
    "Taken",
    "active_tenants",
    "ensure_for_tenant",
    "repair_all",
    "repair_tenants",
    "take_notification",
]

logger = structlog.get_logger(__name__)

# A tenant slug (the tenants.slug_format rule): anything else is no tenant of ours.
TENANT_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")


class NotificationRefused(Exception):
    """Not from HAPI for one of our tenants (missing or wrong secret, unknown tenant)."""


class NotificationReplayed(Exception):
    """The change was already taken: nothing is emitted again."""


@dataclass(frozen=True, slots=True)
class Taken:
    change: Change
    emitted: list[str]


async def _active_tenant(session: AsyncSession, slug: str) -> bool:
    status = await session.scalar(select(Tenant.status).where(Tenant.slug == slug))
    return status == "active"


def _check_sender(settings: Settings, tenant: str, resource_type: str, secret: str | None) -> None:
    """Before anything is read: the tenant's secret (constant time) → else
    :class:`NotificationRefused`; a type no subscription watches → :class:`NotificationError`."""
    if not TENANT_SLUG.fullmatch(tenant) or not secret_matches(
        settings.security.secret_key, tenant, secret
    ):
        NOTIFICATIONS.labels(outcome="refused").inc()
        logger.warning("fhir_changes.notification.refused", reason="secret")
        raise NotificationRefused
    if resource_type not in settings.fhir_changes.resource_types:
        raise NotificationError("no subscription of this service watches that resource type")


async def take_notification(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    tenant: str,
    resource_type: str,
    resource_id: str,
    method: str,
    secret: str | None,
    read_body: Callable[[], Awaitable[Mapping[str, Any] | None]],
    if_match: str | None,
) -> Taken:
    """``read_body`` is awaited only once the sender is known (no stranger's body is read)."""
    _check_sender(settings, tenant, resource_type, secret)
    body = await read_body()
    change = read_change(
        tenant, resource_type, resource_id, method=method, body=body, if_match=if_match
    )
    found = change_events(change)
    async with sessions() as session, session.begin():
        if not await _active_tenant(session, tenant):
            NOTIFICATIONS.labels(outcome="refused").inc()
            logger.warning("fhir_changes.notification.refused", tenant=tenant, reason="tenant")
            raise NotificationRefused
        emitted = [event.type for event in found if await events.emit_once(session, event)]
        if not emitted or emitted[0] != "fhir.changed":
            # The change event was there already: a replay (raising rolls back the rest).
            NOTIFICATIONS.labels(outcome="replayed").inc()
            logger.info(
                "fhir_changes.notification.replayed",
                tenant=tenant,
                resource=change.reference,
                version=change.version,
            )
            raise NotificationReplayed
    NOTIFICATIONS.labels(outcome="taken").inc()
    logger.info(
        "fhir_changes.notification.taken",
        tenant=tenant,
        resource=change.reference,
        version=change.version,
        operation=change.operation,
        events=emitted,
    )
    return Taken(change, emitted)


async def active_tenants(session: AsyncSession) -> list[str]:
    """The slugs of the active tenants, in order."""
    found = await session.scalars(
        select(Tenant.slug).where(Tenant.status == "active").order_by(Tenant.slug)
    )
    return list(found.all())


async def ensure_for_tenant(fhir: FhirClient, settings: Settings, slug: str) -> SubscriptionRepair:
    """The tenant's subscriptions made right: part of provisioning a tenant (after
    ``tenancy.create_tenant``; the CLI and the seed do it)."""
    return await ensure_subscriptions(
        fhir.for_tenant(slug), settings.fhir_changes, settings.security.secret_key, slug
    )


async def repair_tenants(
    fhir: FhirClient, settings: Settings, slugs: list[str]
) -> dict[str, SubscriptionRepair]:
    """These tenants' subscriptions made right; a tenant HAPI refuses is logged and skipped
    (the next start repairs it)."""
    done: dict[str, SubscriptionRepair] = {}
    for slug in slugs:
        try:
            done[slug] = await ensure_for_tenant(fhir, settings, slug)
        except AppError as exc:
            logger.error("fhir_changes.repair.failed", tenant=slug, error=type(exc).__name__)
    return done


async def repair_all(
    sessions: async_sessionmaker[AsyncSession], fhir: FhirClient, settings: Settings
) -> dict[str, SubscriptionRepair]:
    """Every active tenant's subscriptions made right (the worker, at start)."""
    async with sessions() as session:
        slugs = await active_tenants(session)
    return await repair_tenants(fhir, settings, slugs)
