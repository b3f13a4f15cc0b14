"""The HAPI subscriptions that turn a tenant's FHIR changes into notifications to the worker.

One R4 ``Subscription`` per watched resource type in the tenant's own partition (HAPI matches a
partition's subscriptions against that partition's changes only): ``criteria`` ``{Type}?`` (every
change of the type), ``channel.type`` ``rest-hook``, ``channel.payload``
``application/fhir+json`` (HAPI then sends ``PUT {endpoint}/{Type}/{id}`` with the version in
the body and ``If-Match``; without a payload it would say nothing about which resource changed),
deletes included (``DELETE {endpoint}/{Type}/{id}``), and ``channel.header`` the tenant's hook
secret. Each carries the platform tag :data:`FEED_TAG`: what :func:`ensure_subscriptions` owns.

:func:`ensure_subscriptions` makes a partition's set exactly the wanted one (creates the missing,
rewrites a changed or errored one, deletes strays); it runs when a tenant is provisioned and for
every active tenant when the worker starts (a HAPI restored from backup, a rotated secret key, a
changed notify URL are repaired there). The gateway refuses ``Subscription`` to every client, so
no user reads a secret header or points HAPI elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
from pydantic import SecretStr

from ehr.core.config import FhirChangesSettings
from ehr.fhir import TenantFhirClient, bundle_resources

__all__ = [
    "FEED_TAG",
    "HOOK_SECRET_HEADER",
    "SEND_DELETES_URL",
    "SubscriptionRepair",
    "ensure_subscriptions",
    "hook_secret",
    "secret_matches",
    "wanted_subscriptions",
]

logger = structlog.get_logger(__name__)

# The tag of the subscriptions this module owns (and nothing else in a partition).
FEED_TAG: Final[Mapping[str, str]] = {"system": "urn:ehr:platform", "code": "fhir-change-feed"}
HOOK_SECRET_HEADER: Final = "X-Ehr-Hook-Secret"  # noqa: S105 (a header name)
# HAPI's channel extension: notify deletes too (HAPI sends none by default).
SEND_DELETES_URL: Final = (
    "http://hapifhir.io/fhir/StructureDefinition/subscription-send-delete-messages"
)
_SECRET_CONTEXT: Final = b"ehr-fhir-change-hook|"


def hook_secret(secret_key: SecretStr, tenant: str) -> str:
    """The tenant's notification secret: HMAC-SHA256 of the tenant slug under the service's
    secret key (each tenant's differs; rotating the key rotates them all at the next repair)."""
    digest = hmac.new(
        secret_key.get_secret_value().encode(), _SECRET_CONTEXT + tenant.encode(), hashlib.sha256
    )
    return digest.hexdigest()


def secret_matches(secret_key: SecretStr, tenant: str, presented: str | None) -> bool:
    """Constant-time comparison of a presented header with the tenant's secret."""
    if not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), hook_secret(secret_key, tenant).encode())


def _endpoint(settings: FhirChangesSettings, tenant: str) -> str:
    return f"{settings.notify_url.rstrip('/')}/{tenant}"


def wanted_subscriptions(
    settings: FhirChangesSettings, secret_key: SecretStr, tenant: str
) -> dict[str, dict[str, Any]]:
    """Resource type → the Subscription document the tenant's partition must hold for it."""
    header = f"{HOOK_SECRET_HEADER}: {hook_secret(secret_key, tenant)}"
    return {
        resource_type: {
            "resourceType": "Subscription",
            "meta": {"tag": [dict(FEED_TAG)]},
            "status": "requested",
            "reason": f"Platform change feed: {resource_type} changes become fhir.changed events",
            "criteria": f"{resource_type}?",
            "channel": {
                "extension": [{"url": SEND_DELETES_URL, "valueBoolean": True}],
                "type": "rest-hook",
                "endpoint": _endpoint(settings, tenant),
                "payload": "application/fhir+json",
                "header": [header],
            },
        }
        for resource_type in settings.resource_types
    }


@dataclass
class SubscriptionRepair:
    """What :func:`ensure_subscriptions` did in one partition."""

    kept: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.rewritten or self.deleted)


def _same(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    if current.get("status") not in ("requested", "active"):
        return False  # `error` or `off`: rewritten to `requested`, HAPI activates it again
    if current.get("criteria") != wanted["criteria"]:
        return False
    channel, want = current.get("channel") or {}, wanted["channel"]
    sends_deletes = any(
        ext.get("url") == SEND_DELETES_URL and ext.get("valueBoolean") is True
        for ext in channel.get("extension") or []
        if isinstance(ext, Mapping)
    )
    return bool(
        sends_deletes
        and channel.get("type") == want["type"]
        and channel.get("endpoint") == want["endpoint"]
        and channel.get("payload") == want["payload"]
        and list(channel.get("header") or []) == want["header"]
    )


async def _owned(fhir: TenantFhirClient) -> list[dict[str, Any]]:
    tag = f"{FEED_TAG['system']}|{FEED_TAG['code']}"
    found: list[dict[str, Any]] = []
    bundle: dict[str, Any] | None = await fhir.search(
        "Subscription", {"_tag": tag, "_count": "100"}
    )
    while bundle is not None:
        found.extend(r for r in bundle_resources(bundle) if r.get("resourceType") == "Subscription")
        bundle = await fhir.next_page(bundle)
    return found


async def ensure_subscriptions(
    fhir: TenantFhirClient,
    settings: FhirChangesSettings,
    secret_key: SecretStr,
    tenant: str,
) -> SubscriptionRepair:
    """Make the partition's platform subscriptions exactly :func:`wanted_subscriptions`
    (idempotent; safe to run at every start). With ``enabled`` false, every one is deleted."""
    wanted = wanted_subscriptions(settings, secret_key, tenant) if settings.enabled else {}
    repair = SubscriptionRepair()
    by_type: dict[str, list[dict[str, Any]]] = {}
    for current in await _owned(fhir):
        resource_type = str(current.get("criteria") or "").partition("?")[0]
        by_type.setdefault(resource_type, []).append(current)
    for resource_type, document in wanted.items():
        existing = by_type.pop(resource_type, [])
        keep = next((c for c in existing if _same(c, document)), None)
        if keep is None and existing:
            keep = existing[0]
            await fhir.update({**document, "id": keep["id"]})
            repair.rewritten.append(resource_type)
        elif keep is None:
            await fhir.create(document)
            repair.created.append(resource_type)
        else:
            repair.kept.append(resource_type)
        for stray in existing:
            if stray is not keep:
                await fhir.delete("Subscription", str(stray["id"]))
                repair.deleted.append(resource_type)
    for resource_type, strays in by_type.items():
        for stray in strays:
            await fhir.delete("Subscription", str(stray["id"]))
            repair.deleted.append(resource_type or "?")
    if repair.changed:
        logger.info(
            "fhir_changes.subscriptions.repaired",
            tenant=tenant,
            created=repair.created,
            rewritten=repair.rewritten,
            deleted=repair.deleted,
        )
    return repair
