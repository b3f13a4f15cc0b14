"""The one Redis round trip of an authenticated request: deny-list, change stamps, rate limit.

A single ``EVALSHA`` of :data:`SCRIPT` (one command, one round trip) answers, for one request:

* the access-token deny-list (:mod:`ehr.platform.auth.revocation`): whether the marker
  ``ehr:auth:deny:ready`` exists and whether ``ehr:auth:deny:<jti>`` / ``...:fam:<sid>`` does;
* the change stamps of the principal cache (:mod:`ehr.platform.auth.principal_cache`): the
  epoch (set when absent) and ``ehr:auth:ver:<kind>:<id>`` of the accounts the request depends on;
* the rate limit (:mod:`ehr.platform.auth.rate_limit`): ``INCR`` of the client's window counter
  (with its expiry on the window's first request);
* an API key's ``last_used_at`` gate (:mod:`ehr.platform.auth.api_keys`): ``SET NX EX 60``.

What a process still owes Redis — deny-list entries and change stamps committed while Redis was
unreachable — is written first, on a round trip of its own (only then). The script loads itself
on ``NOSCRIPT`` (a restarted Redis). The keys are not in one hash slot: a single Redis (or a
primary with replicas), not a Redis Cluster — as before.

When Redis cannot be reached (or has failed within the retry interval, see
:class:`~ehr.core.redis_store.RedisHealth`), :func:`check_in_redis` answers None and empties this
app's principal cache; the caller falls back to PostgreSQL and the in-process rate limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from ehr.core.redis_store import redis_health
from ehr.platform.auth.principal_cache import (
    EPOCH_KEY,
    Stamp,
    changes_written,
    new_stamp,
    pending_principal_changes,
    principal_cache,
    queue_pending_changes,
)
from ehr.platform.auth.rate_limit import RATE_KEY_TTL_SECONDS, RateWindow
from ehr.platform.auth.revocation import (
    DENY_KEY_PREFIX,
    DENY_READY_KEY,
    denials_written,
    queue_pending_denials,
)

__all__ = ["SCRIPT", "Checked", "check_in_redis"]

logger = structlog.get_logger(__name__)

_COMPONENT: Final = "auth_checks"

SCRIPT: Final = """
local n_deny = tonumber(ARGV[1])
local n_versions = tonumber(ARGV[2])
local i = 1
local ready, denied = 0, 0
if n_deny > 0 then
  ready = redis.call('EXISTS', KEYS[1])
  i = 2
  for _ = 1, n_deny do
    denied = denied + redis.call('EXISTS', KEYS[i])
    i = i + 1
  end
end
local epoch = redis.call('GET', KEYS[i])
if not epoch then
  redis.call('SET', KEYS[i], ARGV[3])
  epoch = ARGV[3]
end
i = i + 1
local out = {ready, denied, epoch}
for _ = 1, n_versions do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
  i = i + 1
end
local count = 0
if ARGV[4] ~= '0' then
  count = redis.call('INCR', KEYS[i])
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], ARGV[4])
  end
  i = i + 1
end
local first = 0
if ARGV[5] ~= '0' then
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[5]) then
    first = 1
  end
end
out[#out + 1] = count
out[#out + 1] = first
return out
"""
_SHA: Final = hashlib.sha1(SCRIPT.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Checked:
    """Redis's answers for one request."""

    # The deny-list marker exists: a miss below is authoritative (else ask PostgreSQL).
    ready: bool
    denied: bool
    # (epoch, then the value of each version key asked for, b"" when absent).
    stamp: Stamp
    # The rate window's count with this request (0 when not asked).
    rate_count: int
    # The last-used gate was set by this request (0/False when not asked).
    first_use: bool


async def _write_pending(redis: Redis) -> None:
    health = redis_health(redis)
    async with redis.pipeline(transaction=False) as pipe:
        denials = queue_pending_denials(pipe, health)
        changes = queue_pending_changes(pipe)
        if not (denials or changes):
            return
        await pipe.execute()
    denials_written(health, denials)
    changes_written(changes)


async def _evalsha(redis: Redis, keys: list[str], args: list[str | int]) -> list[Any]:
    try:
        result = await cast(Any, redis.evalsha(_SHA, len(keys), *keys, *args))
    except NoScriptError:
        await redis.script_load(SCRIPT)
        result = await cast(Any, redis.evalsha(_SHA, len(keys), *keys, *args))
    return cast(list[Any], result)


async def check_in_redis(
    redis: Redis,
    *,
    deny_ids: Sequence[str] = (),
    version_keys: Sequence[str] = (),
    rate: RateWindow | None = None,
    used_key: str | None = None,
    used_ttl_seconds: int = 0,
) -> Checked | None:
    """One round trip (two when this process owes Redis writes); None when Redis is unreachable.

    ``deny_ids``: the token's deny-list ids (none: the deny-list is not read); ``version_keys``:
    the change stamps to read; ``rate``: the request to count; ``used_key``: the last-used gate.
    """
    health = redis_health(redis)
    if not health.available():
        return None
    keys: list[str] = []
    if deny_ids:
        keys.append(DENY_READY_KEY)
        keys.extend(DENY_KEY_PREFIX + i for i in deny_ids)
    keys.append(EPOCH_KEY)
    keys.extend(version_keys)
    if rate is not None:
        keys.append(rate.key)
    if used_key is not None:
        keys.append(used_key)
    args: list[str | int] = [
        len(deny_ids),
        len(version_keys),
        new_stamp(),
        RATE_KEY_TTL_SECONDS if rate is not None else 0,
        used_ttl_seconds if used_key is not None else 0,
    ]
    try:
        if health.pending_denials or pending_principal_changes():
            await _write_pending(redis)
        out = await _evalsha(redis, keys, args)
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        # Entries from before an outage are never trusted after it.
        principal_cache(redis).clear()
        logger.warning("auth.checks.redis_failed", error_type=type(exc).__name__)
        return None
    health.succeeded()
    n = len(version_keys)
    return Checked(
        ready=bool(out[0]),
        denied=bool(out[1]),
        stamp=tuple(bytes(v) for v in out[2 : 3 + n]),
        rate_count=int(out[3 + n]),
        first_use=bool(out[4 + n]),
    )
