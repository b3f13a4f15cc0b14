"""Degraded-mode building blocks (no network): the in-process counter, the per-client Redis
health, and which exceptions mean "a backing service is unreachable" (docs/adr/0013-outages.md).
"""

from __future__ import annotations

import socket

import pytest
from redis import exceptions as redis_exceptions
from redis.asyncio import Redis
from sqlalchemy import exc as sa_exc

from ehr.core.errors import DependencyUnavailable
from ehr.core.outages import DatabaseUnavailable, unavailable_error
from ehr.core.redis_store import LocalWindowCounter, RedisHealth, redis_health


def test_local_counter_counts_per_key_and_window() -> None:
    counter = LocalWindowCounter(60)
    assert counter.incr("a", now=120.0) == (1, 61)
    assert counter.incr("a", now=150.0) == (2, 31)
    assert counter.incr("b", now=150.0)[0] == 1
    assert counter.get("a", now=179.5)[0] == 2
    # the next window starts from zero
    assert counter.incr("a", now=180.0) == (1, 61)
    assert counter.get("b", now=180.0)[0] == 0


def test_local_counter_is_bounded() -> None:
    counter = LocalWindowCounter(60, max_keys=3)
    for key in "abcd":
        counter.incr(key, now=0.0)
    assert counter.get("a", now=0.0)[0] == 0  # the oldest key went first
    assert [counter.get(k, now=0.0)[0] for k in "bcd"] == [1, 1, 1]


def test_health_skips_redis_after_a_failure_then_retries() -> None:
    health = RedisHealth(retry_after_seconds=3600)
    assert health.available()
    assert not health.degraded
    health.failed("test", ConnectionError())
    assert health.degraded
    assert not health.available()
    health.retry_after_seconds = 0.0
    assert health.available()
    health.succeeded()
    assert not health.degraded
    assert health.available()


async def test_health_is_per_client() -> None:
    first, second = Redis(), Redis()
    try:
        assert redis_health(first) is redis_health(first)
        redis_health(first).failed("test", ConnectionError())
        assert not redis_health(second).degraded
        counter = redis_health(first).local_counter("x", 60)
        assert redis_health(first).local_counter("x", 60) is counter
        assert redis_health(second).local_counter("x", 60) is not counter
    finally:
        redis_health(first).succeeded()
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, Exception("gone")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("closed")),
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True),
    ],
)
def test_database_connection_failures_are_503(exc: BaseException) -> None:
    error = unavailable_error(exc)
    assert isinstance(error, DatabaseUnavailable)
    assert (error.status_code, error.code) == (503, "database_unavailable")
    assert error.headers["Retry-After"]


def test_redis_connection_failures_are_503() -> None:
    for exc in (redis_exceptions.ConnectionError("x"), redis_exceptions.TimeoutError("x")):
        error = unavailable_error(exc)
        assert isinstance(error, DependencyUnavailable)
        assert error.code == "dependency_unavailable"


def test_other_errors_are_not_outages() -> None:
    # An OSError raised outside the database and Redis drivers is not attributed to them.
    for exc in (ConnectionRefusedError(111, "refused"), socket.gaierror(-2, "x"), ValueError()):
        with pytest.raises(type(exc)) as raised:
            raise exc
        assert unavailable_error(raised.value) is None
    integrity = sa_exc.IntegrityError("INSERT", {}, Exception("duplicate"))
    assert unavailable_error(integrity) is None
    assert unavailable_error(DependencyUnavailable()) is None


def test_an_exception_group_counts_when_every_member_does() -> None:
    down = sa_exc.OperationalError("SELECT 1", {}, Exception("gone"))
    both = ExceptionGroup("tasks", [down, redis_exceptions.ConnectionError("x")])
    assert isinstance(unavailable_error(both), DatabaseUnavailable)
    mixed = ExceptionGroup("tasks", [down, ValueError("bug")])
    assert unavailable_error(mixed) is None
