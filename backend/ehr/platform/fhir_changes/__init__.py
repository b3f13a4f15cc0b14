"""FHIR changes as domain events (ADR 0027): HAPI's own REST-hook subscriptions, one per watched
resource type in each tenant's partition, notify the worker's internal listener; each accepted
notification becomes ``fhir.changed`` (and ``result.critical`` for a critical Observation) in the
events outbox. So a write through ``/fhir``, the business API or HL7v2 yields the same event.

For provisioning (after ``tenancy.create_tenant``: the CLI, the seed) and the worker (at start)::

    await fhir_changes.ensure_for_tenant(fhir, settings, slug)
    await fhir_changes.repair_all(sessions, fhir, settings)      # every active tenant

For the worker's HTTP port::

    fhir_changes.add_notification_routes(http_app, sessions, settings)

For the results module (its Observations' first version emits no second critical event):
``RESULTS_TAG``.
"""

from ehr.platform.fhir_changes.notifications import (
    CRITICAL_INTERPRETATIONS,
    RESULTS_TAG,
    Change,
    NotificationError,
    change_events,
    event_id,
    read_change,
)
from ehr.platform.fhir_changes.receiver import add_notification_routes, notification_route
from ehr.platform.fhir_changes.service import (
    NotificationRefused,
    NotificationReplayed,
    Taken,
    active_tenants,
    ensure_for_tenant,
    repair_all,
    repair_tenants,
    take_notification,
)
from ehr.platform.fhir_changes.subscriptions import (
    FEED_TAG,
    HOOK_SECRET_HEADER,
    SubscriptionRepair,
    ensure_subscriptions,
    hook_secret,
    secret_matches,
    wanted_subscriptions,
)

__all__ = [
    "CRITICAL_INTERPRETATIONS",
    "FEED_TAG",
    "HOOK_SECRET_HEADER",
    "RESULTS_TAG",
    "Change",
    "NotificationError",
    "NotificationRefused",
    "NotificationReplayed",
    "SubscriptionRepair",
    "Taken",
    "active_tenants",
    "add_notification_routes",
    "change_events",
    "ensure_for_tenant",
    "ensure_subscriptions",
    "event_id",
    "hook_secret",
    "notification_route",
    "read_change",
    "repair_all",
    "repair_tenants",
    "secret_matches",
    "take_notification",
    "wanted_subscriptions",
]
