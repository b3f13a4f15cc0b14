"""One delivery attempt: the signed POST to a checked address, and what its outcome means.

Pure parts (tested alone): :func:`classify` (success, retry or give up), :func:`backoff`
(exponential with full jitter), :func:`retry_after` (the header, seconds or a date). The POST
connects to the address the SSRF guard checked (``Host`` and TLS SNI carry the URL's host),
never follows a redirect, and is bounded by connect, read and total timeouts, so a hanging
target costs one worker slot for ``total_timeout_seconds`` at most.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

import httpx

from ehr.platform.webhooks.settings import WebhooksSettings
from ehr.platform.webhooks.signing import signature_headers
from ehr.platform.webhooks.targets import ResolvedTarget

__all__ = [
    "AttemptResult",
    "Outcome",
    "backoff",
    "classify",
    "post_signed",
    "retry_after",
]

USER_AGENT: Final = "ehr-webhooks/1"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class AttemptResult:
    """What an attempt recorded: no response body, ever."""

    outcome: Outcome
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after_seconds: float | None = None


def classify(status_code: int) -> Outcome:
    """2xx succeeded; 408, 429 and 5xx are retried; other answers (4xx, a 3xx redirect that
    is not followed) are given up — the receiver refused the request as it is."""
    if 200 <= status_code < 300:
        return Outcome.SUCCEEDED
    if status_code in (408, 429) or status_code >= 500:
        return Outcome.RETRY
    return Outcome.GIVE_UP


def backoff(
    attempt: int, *, base: float, cap: float, floor: float = 0.0, rng: random.Random | None = None
) -> float:
    """Delay after failed attempt ``attempt`` (>= 1): full jitter, uniform in
    [0, min(cap, base * 2^(attempt-1))], then at least ``floor``."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 1) - 1, 62)))
    return max(floor, (rng or random).uniform(0.0, ceiling))


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _pinned_url(target: ResolvedTarget, url: str) -> httpx.URL:
    """The URL with its host replaced by the checked address (no second DNS lookup)."""
    return httpx.URL(url).copy_with(host=target.address)


async def post_signed(
    target: ResolvedTarget,
    url: str,
    *,
    secret: str,
    message_id: str,
    body: bytes,
    settings: WebhooksSettings,
    timestamp: int | None = None,
) -> AttemptResult:
    """POST ``body`` signed per Standard Webhooks to the checked address; never raises for
    the target's failures (they are the result)."""
    stamp = timestamp if timestamp is not None else int(time.time())
    default_port = 443 if target.scheme == "https" else 80
    host_header = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    headers = {
        **signature_headers(secret, message_id, stamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": host_header,
    }
    timeout = httpx.Timeout(
        connect=settings.connect_timeout_seconds,
        read=settings.read_timeout_seconds,
        write=settings.read_timeout_seconds,
        pool=settings.connect_timeout_seconds,
    )
    started = time.monotonic()
    error: str | None = None
    status: int | None = None
    after: float | None = None
    try:
        async with (
            asyncio.timeout(settings.total_timeout_seconds),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        ):
            response = await client.post(
                _pinned_url(target, url),
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.host},
            )
            status = response.status_code
            after = retry_after(response.headers.get("retry-after"))
    except (TimeoutError, httpx.TimeoutException):
        error = "timeout"
    except httpx.ConnectError:
        error = "connect_error"
    except httpx.HTTPError as exc:
        error = f"http_error:{type(exc).__name__}"[:200]
    latency = int((time.monotonic() - started) * 1000)
    if status is None:
        return AttemptResult(Outcome.RETRY, None, latency, error)
    outcome = classify(status)
    if outcome is not Outcome.SUCCEEDED:
        error = "redirect_not_followed" if 300 <= status < 400 else f"http_{status}"
    return AttemptResult(outcome, status, latency, error, after)
