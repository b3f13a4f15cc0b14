"""Search-page isolation: a ``_getpages`` id only works for the tenant whose search created it.

HAPI keeps search results under an id and serves ``{base}/{tenant}?_getpages=<id>`` without
checking that the id belongs to that partition (hapi-fhir#7888). The gateway notes every id it
streams to a caller (``ehr:fhir:page:<id>`` → ``<tenant>:<principal subject>``, TTL
``page_ttl_seconds``) and refuses a paging request whose id is not that caller's with 404 —
indistinguishable from an expired id. Binding to the principal, not only the tenant, keeps a
patient-context user from following another user's (unconstrained) search of the same tenant.

The registry lives in Redis only (it has no durable copy), so while Redis cannot be reached it
fails closed for the interactions that need it and nothing else (docs/adr/0013-outages.md):

* a search is still answered; its page ids cannot be registered (logged, counted as
  ``skipped``), so following its paging links is refused later — 503 while Redis is down, 404
  once it is back;
* a paging request (``_getpages``) or ``$export-poll-status`` → 503 ``dependency_unavailable``
  (the owner cannot be checked; never served unchecked);
* an ``$export`` kick-off → 503 before HAPI is asked (:func:`require_registry`): a job nobody
  could poll is not started.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.errors import DependencyUnavailable, NotFoundError
from ehr.core.redis_store import redis_health

__all__ = [
    "EXPORT_KEY_PREFIX",
    "PAGE_KEY_PREFIX",
    "RegistryUnavailable",
    "SearchPageNotFound",
    "check_page",
    "remember_pages",
    "require_registry",
]

logger = structlog.get_logger(__name__)

PAGE_KEY_PREFIX: Final = "ehr:fhir:page:"
# Bulk-export jobs get the same treatment: `$export-poll-status?_jobId=<id>` (status, manifest,
# cancel) only for the caller whose `$export` started the job.
EXPORT_KEY_PREFIX: Final = "ehr:fhir:export:"
_COMPONENT: Final = "fhir_pages"


class SearchPageNotFound(NotFoundError):  # noqa: N818 - like FhirResourceNotFound
    """The ``_getpages`` id (or export job id) is unknown, expired or another caller's."""

    code = "fhir_page_not_found"
    title = "Search page not found"


class RegistryUnavailable(DependencyUnavailable):
    """The page/export-job registry (Redis) cannot be reached: this interaction is refused."""

    def __init__(self) -> None:
        super().__init__(
            "The search-page registry is unavailable; retry later",
            headers={"Retry-After": "5"},
        )


def _refused(redis: Redis) -> RegistryUnavailable:
    redis_health(redis).served_without_redis(_COMPONENT, "refused")
    return RegistryUnavailable()


async def require_registry(redis: Redis) -> None:
    """503 unless the registry answers (before starting work whose ids must be registered)."""
    health = redis_health(redis)
    if not health.available():
        raise _refused(redis)
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        raise _refused(redis) from exc
    health.succeeded()


async def remember_pages(
    redis: Redis,
    owner: str,
    page_ids: Iterable[str],
    ttl: int,
    *,
    prefix: str = PAGE_KEY_PREFIX,
    required: bool = False,
) -> None:
    """Bind ``page_ids`` to ``owner`` (first writer wins: an id never changes owner).

    If Redis cannot be reached: 503 when ``required`` (an export kick-off), else the ids stay
    unregistered — their pages are refused later, never served to anyone — and the answer that
    carries them is still sent.
    """
    ids = list(page_ids)
    if not ids:
        return
    health = redis_health(redis)
    failure: BaseException | None = None
    if health.available():
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for page_id in ids:
                    pipe.set(f"{prefix}{page_id}", owner, ex=ttl, nx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            health.failed(_COMPONENT, exc)
            failure = exc
        else:
            health.succeeded()
            return
    if required:
        raise _refused(redis) from failure
    health.served_without_redis(_COMPONENT, "skipped")
    logger.info("fhir.gateway.pages_unregistered", pages=len(ids))


async def check_page(
    redis: Redis, owner: str, page_id: str, *, prefix: str = PAGE_KEY_PREFIX
) -> None:
    """404 unless ``page_id`` was created by a search (or export) of ``owner``; 503 if the
    registry cannot be asked."""
    health = redis_health(redis)
    if not health.available():
        raise _refused(redis)
    try:
        stored = await redis.get(f"{prefix}{page_id}")
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        raise _refused(redis) from exc
    health.succeeded()
    if stored is None:
        raise SearchPageNotFound("The search page does not exist or has expired")
    owner_text = stored.decode() if isinstance(stored, bytes) else str(stored)
    if owner_text != owner:
        raise SearchPageNotFound("The search page does not exist or has expired")
