"""The principal cache's rules without a stack: stamps, age, bounds, invalidation, Redis failure."""

from __future__ import annotations

import time
import uuid

import pytest
from redis.asyncio import Redis
from support.ports import free_port

from ehr.core.errors import TooManyRequests
from ehr.core.redis_store import redis_health
from ehr.platform.auth.principal_cache import (
    AccountSnapshot,
    ApiKeySnapshot,
    PrincipalCache,
    principal_cache,
)
from ehr.platform.auth.rate_limit import RateWindow
from ehr.platform.auth.request_checks import check_in_redis

STAMP = (b"epoch-1", b"", b"")


def account(tenant_id: uuid.UUID | None = None) -> AccountSnapshot:
    return AccountSnapshot(
        user_id=uuid.uuid4(),
        username="u",
        patient_id=None,
        tenant_id=tenant_id or uuid.uuid4(),
        tenant_slug="t",
        roles=frozenset({"physician"}),
        active=True,
    )


def api_key(tenant_id: uuid.UUID, *, expires_in: float = 3600) -> ApiKeySnapshot:
    return ApiKeySnapshot(
        key_id=uuid.uuid4(),
        tenant_id=tenant_id,
        tenant_slug="t",
        roles=frozenset(),
        scopes=frozenset(),
        key_permissions=frozenset({"patient:read"}),
        expires_at=time.time() + expires_in,
    )


def test_an_entry_is_used_only_under_the_stamps_it_was_loaded_under() -> None:
    cache = PrincipalCache()
    found = account()
    cache.store_user(found, STAMP)
    assert cache.user(found.user_id, STAMP, 30) == found
    assert cache.user(found.user_id, (b"epoch-1", b"changed", b""), 30) is None
    assert cache.user(found.user_id, (b"epoch-2", b"", b""), 30) is None  # a flushed Redis
    assert cache.user(found.user_id, STAMP, 0.0) is None  # older than the maximum age


def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    cache = PrincipalCache(max_entries=2)
    first, second, third = account(), account(), account()
    cache.store_user(first, STAMP)
    cache.store_user(second, STAMP)
    assert cache.user(first.user_id, STAMP, 30) == first  # used: second is now the oldest
    cache.store_user(third, STAMP)
    assert cache.user(second.user_id, STAMP, 30) is None
    assert cache.user(first.user_id, STAMP, 30) == first
    assert cache.user(third.user_id, STAMP, 30) == third


def test_dropping_a_tenant_drops_its_users_and_keys_only() -> None:
    cache = PrincipalCache()
    tenant, other = uuid.uuid4(), uuid.uuid4()
    mine, theirs = account(tenant), account(other)
    key = api_key(tenant)
    for entry in (mine, theirs):
        cache.store_user(entry, STAMP)
    cache.store_api_key("hash", key, STAMP)
    cache.drop(tenant_ids=[tenant])
    assert cache.user(mine.user_id, STAMP, 30) is None
    assert cache.api_key_ids("hash") is None
    assert cache.user(theirs.user_id, STAMP, 30) == theirs


def test_a_key_known_by_its_ids_only_or_expired_is_not_trusted() -> None:
    cache = PrincipalCache()
    tenant = uuid.uuid4()
    cache.store_api_key("ids-only", api_key(tenant), None)
    assert cache.api_key_ids("ids-only") is not None
    assert cache.api_key("ids-only", STAMP, 30) is None
    cache.store_api_key("expired", api_key(tenant, expires_in=-1), STAMP)
    assert cache.api_key("expired", STAMP, 30) is None


async def test_an_unreachable_redis_empties_the_cache_and_answers_nothing() -> None:
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        cache = principal_cache(redis)
        cache.store_user(account(), STAMP)
        checked = await check_in_redis(
            redis, deny_ids=["jti"], version_keys=["k"], rate=RateWindow.now_for("c", 10)
        )
        assert checked is None
        assert not cache.users.entries
        assert redis_health(redis).degraded
        # Within the retry interval Redis is not even tried.
        assert await check_in_redis(redis, deny_ids=["jti"]) is None
    finally:
        await redis.aclose()


def test_over_the_rate_limit_is_429_with_the_seconds_to_the_window_end() -> None:
    rate = RateWindow.now_for("client", 2)
    rate.enforce(2)
    with pytest.raises(TooManyRequests) as refused:
        rate.enforce(3)
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 61
