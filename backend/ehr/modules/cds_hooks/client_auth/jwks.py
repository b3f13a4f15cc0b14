"""Key sets fetched from the ``jku`` URLs a client is allowed, cached per process (step 4).

:func:`fetch_jwks` GETs one (no redirects, bounded time and size: :data:`MAX_JWKS_BYTES`) and keeps
its usable keys; :class:`JwksCache` reuses a set for ``jwks_cache_seconds`` and refetches on an
unknown ``kid`` at most once per ``jwks_min_refresh_seconds`` per URL (key rotation).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import Request

from ehr.core.config import CdsHooksSettings
from ehr.platform.auth.client_keys import usable_keys

__all__ = [
    "MAX_JWKS_BYTES",
    "Fetcher",
    "JwksCache",
    "JwksFetchError",
    "fetch_jwks",
    "jwks_cache_for",
]

logger = structlog.get_logger(__name__)

MAX_JWKS_BYTES: Final = 64 * 1024


class JwksFetchError(Exception):
    """A client's key set could not be fetched or read (the message never holds key material)."""


async def fetch_jwks(url: str, settings: CdsHooksSettings) -> tuple[dict[str, Any], ...]:
    """GET the JWKS at ``url``: no redirects, bounded time and size; its usable public keys."""
    if urlsplit(url).scheme not in ("https", "http"):
        raise JwksFetchError("not an http(s) URL")
    timeout = settings.jwks_fetch_timeout_seconds
    body = bytearray()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "GET", url, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as response,
        ):
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP status {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise JwksFetchError("key set too large")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksFetchError("key set too large")
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        raise JwksFetchError(type(exc).__name__) from None
    try:
        document = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise JwksFetchError("not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("not a JWKS document")
    return usable_keys(document)


Fetcher = Callable[[str, CdsHooksSettings], Awaitable[tuple[dict[str, Any], ...]]]


@dataclass(slots=True)
class _CachedKeySet:
    keys: tuple[dict[str, Any], ...]
    fetched_at: float


class JwksCache:
    """Key sets fetched from ``jku`` URLs, per process.

    A set is reused for ``jwks_cache_seconds``. A ``kid`` it lacks triggers a refetch, at most once
    per ``jwks_min_refresh_seconds`` per URL (so a client rotating keys is picked up, and a flood
    of made-up kids costs one request per interval). A failed fetch is not retried within that
    interval either: those calls are refused at once.
    """

    def __init__(
        self, *, fetch: Fetcher = fetch_jwks, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._sets: dict[str, _CachedKeySet] = {}
        self._attempted_at: dict[str, float] = {}
        self._failed: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def _fresh(self, url: str, settings: CdsHooksSettings) -> _CachedKeySet | None:
        cached = self._sets.get(url)
        if cached is None or self._clock() - cached.fetched_at >= settings.jwks_cache_seconds:
            return None
        return cached

    def _recently_attempted(self, url: str, settings: CdsHooksSettings) -> bool:
        attempted = self._attempted_at.get(url)
        return attempted is not None and (
            self._clock() - attempted < settings.jwks_min_refresh_seconds
        )

    def _answer(
        self, url: str, kid: str, settings: CdsHooksSettings
    ) -> tuple[dict[str, Any], ...] | None:
        """Keys named ``kid`` without fetching, or None when a fetch is due."""
        cached = self._fresh(url, settings)
        if cached is not None:
            found = tuple(key for key in cached.keys if key.get("kid") == kid)
            if found or self._recently_attempted(url, settings):
                return found
            return None
        if url in self._failed and self._recently_attempted(url, settings):
            raise JwksFetchError("the last fetch failed moments ago")
        return None

    async def keys(
        self, url: str, kid: str, settings: CdsHooksSettings
    ) -> tuple[dict[str, Any], ...]:
        """The keys of the set at ``url`` named ``kid`` (possibly none); JwksFetchError."""
        answer = self._answer(url, kid, settings)
        if answer is not None:
            return answer
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            answer = self._answer(url, kid, settings)  # another call may have fetched meanwhile
            if answer is not None:
                return answer
            self._attempted_at[url] = self._clock()
            try:
                keys = await self._fetch(url, settings)
            except JwksFetchError:
                self._failed.add(url)
                raise
            self._failed.discard(url)
            self._sets[url] = _CachedKeySet(keys=keys, fetched_at=self._clock())
            logger.info("cds_hooks.jwks.fetched", url=url, keys=len(keys))
        return tuple(key for key in keys if key.get("kid") == kid)


def jwks_cache_for(request: Request) -> JwksCache:
    """The app's (per-process) key-set cache, created on first use."""
    cache = getattr(request.app.state, "cds_jwks_cache", None)
    if not isinstance(cache, JwksCache):
        cache = JwksCache()
        request.app.state.cds_jwks_cache = cache
    return cache
