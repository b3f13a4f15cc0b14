"""Search-page isolation: a ``_getpages`` id only works for the tenant whose search created it.

HAPI keeps search results under an id and serves ``{base}/{tenant}?_getpages=<id>`` without
checking that the id belongs to that partition (hapi-fhir#7888). The gateway notes every id it
streams to a caller (``ehr:fhir:page:<id>`` → ``<tenant>:<principal subject>``, TTL
``page_ttl_seconds``) and refuses a paging request whose id is not that caller's with 404 —
indistinguishable from an expired id. Binding to the principal, not only the tenant, keeps a
patient-context user from following another user's (unconstrained) search of the same tenant.
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
# cancel) only for the caller whose `$export` started the job.
EXPORT_KEY_PREFIX: Final = "ehr:fhir:export:"


class SearchPageNotFound(NotFoundError):  # noqa: N818 - like FhirResourceNotFound
    """The ``_getpages`` id (or export job id) is unknown, expired or another caller's."""

    code = "fhir_page_not_found"
    title = "Search page not found"


async def remember_pages(
    redis: Redis, owner: str, page_ids: Iterable[str], ttl: int, *, prefix: str = PAGE_KEY_PREFIX
) -> None:
    """Bind ``page_ids`` to ``owner`` (first writer wins: an id never changes owner)."""
    ids = list(page_ids)
    if not ids:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for page_id in ids:
                pipe.set(f"{prefix}{page_id}", owner, ex=ttl, nx=True)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        raise DependencyUnavailable("The search-page registry is unavailable") from exc


async def check_page(
    redis: Redis, owner: str, page_id: str, *, prefix: str = PAGE_KEY_PREFIX
) -> None:
    """404 unless ``page_id`` was created by a search (or export) of ``owner``."""
    try:
        stored = await redis.get(f"{prefix}{page_id}")
    except (RedisError, OSError) as exc:
        raise DependencyUnavailable("The search-page registry is unavailable") from exc
    if stored is None:
        raise SearchPageNotFound("The search page does not exist or has expired")
    owner_text = stored.decode() if isinstance(stored, bytes) else str(stored)
    if owner_text != owner:
        raise SearchPageNotFound("The search page does not exist or has expired")
