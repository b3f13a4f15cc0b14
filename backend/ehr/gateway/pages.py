"""Search-page isolation: a ``_getpages`` id only works for the tenant whose search created it.

HAPI keeps search results under an id and serves ``{base}/{tenant}?_getpages=<id>`` without
checking that the id belongs to that partition (hapi-fhir#7888). The gateway notes every id it
streams to a tenant (``ehr:fhir:page:<id>`` → tenant, TTL ``page_ttl_seconds``) and refuses a
paging request whose id is not the caller's with 404 — indistinguishable from an expired id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.errors import DependencyUnavailable, NotFoundError

__all__ = [
    "EXPORT_KEY_PREFIX",
    "PAGE_KEY_PREFIX",
    "SearchPageNotFound",
    "check_page",
    "remember_pages",
]

PAGE_KEY_PREFIX: Final = "ehr:fhir:page:"
# Bulk-export jobs get the same treatment: `$export-poll-status?_jobId=<id>` (status, manifest,
# cancel) only for the tenant whose `$export` started the job.
EXPORT_KEY_PREFIX: Final = "ehr:fhir:export:"


class SearchPageNotFound(NotFoundError):  # noqa: N818 - like FhirResourceNotFound
    """The ``_getpages`` id is unknown, expired or another tenant's."""

    code = "fhir_page_not_found"
    title = "Search page not found"


async def remember_pages(
    redis: Redis, tenant: str, page_ids: Iterable[str], ttl: int, *, prefix: str = PAGE_KEY_PREFIX
) -> None:
    """Bind ``page_ids`` to ``tenant`` (first writer wins: an id never changes tenant)."""
    ids = list(page_ids)
    if not ids:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for page_id in ids:
                pipe.set(f"{prefix}{page_id}", tenant, ex=ttl, nx=True)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        raise DependencyUnavailable("The search-page registry is unavailable") from exc


async def check_page(
    redis: Redis, tenant: str, page_id: str, *, prefix: str = PAGE_KEY_PREFIX
) -> None:
    """404 unless ``page_id`` was created by a search (or export) of ``tenant``."""
    try:
        owner = await redis.get(f"{prefix}{page_id}")
    except (RedisError, OSError) as exc:
        raise DependencyUnavailable("The search-page registry is unavailable") from exc
    if owner is None:
        raise SearchPageNotFound("The search page does not exist or has expired")
    owner_text = owner.decode() if isinstance(owner, bytes) else str(owner)
    if owner_text != tenant:
        raise SearchPageNotFound("The search page does not exist or has expired")
