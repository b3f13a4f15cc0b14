"""Idempotency-Key: replay, reuse with another body, in flight, release on failure, per
principal (an in-memory store with the claim rules of the table)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi import Response
from fastapi.responses import JSONResponse

from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency import (
    REPLAYED_HEADER,
    Claim,
    Idempotency,
    IdempotencyKeyReused,
    IdempotencyRequestInFlight,
    StoredAnswer,
    request_fingerprint,
)

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def _principal(subject: int = 1) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.UUID(int=subject),
        tenant="DEFAULT",
        tenant_id=uuid.UUID(int=99),
        roles=frozenset({"physician"}),
    )


class MemoryStore:
    """The table's rules in memory: (tenant, key) unique; expired rows are taken over."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    async def claim(
        self, tenant: str, key: str, fingerprint: str, *, now: dt.datetime, ttl: dt.timedelta
    ) -> Claim:
        row = self.rows.get((tenant, key))
        if row is None or row["expires_at"] <= now:
            self.rows[(tenant, key)] = {
                "fingerprint": fingerprint,
                "answer": None,
                "expires_at": now + ttl,
            }
            return Claim(owned=True)
        return Claim(owned=False, fingerprint=row["fingerprint"], answer=row["answer"])

    async def complete(self, tenant: str, key: str, answer: StoredAnswer) -> None:
        self.rows[(tenant, key)]["answer"] = answer

    async def release(self, tenant: str, key: str) -> None:
        row = self.rows.get((tenant, key))
        if row is not None and row["answer"] is None:
            del self.rows[(tenant, key)]


def _idem(
    store: MemoryStore,
    key: str | None = "key-0001",
    *,
    principal: Principal | None = None,
    clock: dt.datetime = NOW,
) -> Idempotency:
    return Idempotency(
        store,
        principal=principal or _principal(),
        key=key,
        method="POST",
        path="/api/patients/p1/orders",
        if_match=None,
        clock=lambda: clock,
    )


class Work:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"id": f"order-{self.calls}"}


def _response(etag: str = 'W/"1"') -> Response:
    response = Response()
    response.headers["ETag"] = etag
    response.headers["Location"] = "/api/patients/p1/orders/x"
    return response


async def test_without_a_key_the_work_always_runs() -> None:
    store, work = MemoryStore(), Work()
    for _ in range(2):
        await _idem(store, None).once({"a": 1}, work, response=Response(), status_code=201)
    assert work.calls == 2
    assert store.rows == {}


async def test_the_same_key_and_request_is_replayed_without_running_again() -> None:
    store, work = MemoryStore(), Work()
    first = await _idem(store).once({"a": 1}, work, response=_response(), status_code=201)
    again = await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    assert work.calls == 1
    assert first == {"id": "order-1"}
    assert isinstance(again, JSONResponse)
    assert again.status_code == 201
    assert again.body == b'{"id":"order-1"}'
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.headers["etag"] == 'W/"1"'
    assert again.headers["location"] == "/api/patients/p1/orders/x"


async def test_the_same_key_with_another_body_is_refused() -> None:
    store, work = MemoryStore(), Work()
    await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    with pytest.raises(IdempotencyKeyReused) as raised:
        await _idem(store).once({"a": 2}, work, response=Response(), status_code=201)
    assert raised.value.status_code == 422
    assert raised.value.code == "idempotency_key_reused"
    assert work.calls == 1


async def test_a_duplicate_while_the_first_is_in_flight_is_a_conflict() -> None:
    store = MemoryStore()
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow() -> dict[str, Any]:
        started.set()
        await finish.wait()
        return {"id": "slow"}

    first = asyncio.create_task(
        _idem(store).once({"a": 1}, slow, response=Response(), status_code=201)
    )
    await started.wait()
    with pytest.raises(IdempotencyRequestInFlight) as raised:
        await _idem(store).once({"a": 1}, Work(), response=Response(), status_code=201)
    assert raised.value.status_code == 409
    assert raised.value.code == "idempotency_request_in_flight"
    finish.set()
    assert await first == {"id": "slow"}


async def test_a_failed_request_releases_its_key_for_a_retry() -> None:
    store, work = MemoryStore(), Work()

    async def fails() -> dict[str, Any]:
        raise RuntimeError("HAPI down")

    with pytest.raises(RuntimeError):
        await _idem(store).once({"a": 1}, fails, response=Response(), status_code=201)
    assert store.rows == {}
    await _idem(store).once({"a": 2}, work, response=Response(), status_code=201)
    assert work.calls == 1


async def test_keys_are_per_principal() -> None:
    store, work = MemoryStore(), Work()
    await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    other = await _idem(store, principal=_principal(2)).once(
        {"a": 1}, work, response=Response(), status_code=201
    )
    assert other == {"id": "order-2"}
    assert work.calls == 2


async def test_an_expired_key_runs_again() -> None:
    store, work = MemoryStore(), Work()
    await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    later = NOW + dt.timedelta(hours=25)
    await _idem(store, clock=later).once({"a": 1}, work, response=Response(), status_code=201)
    assert work.calls == 2


def test_the_fingerprint_ignores_key_order_but_not_if_match_or_path() -> None:
    base = request_fingerprint("POST", "/a", None, {"x": 1, "y": [1, 2]})
    assert base == request_fingerprint("post", "/a", None, {"y": [1, 2], "x": 1})
    assert base != request_fingerprint("POST", "/b", None, {"x": 1, "y": [1, 2]})
    assert base != request_fingerprint("POST", "/a", 'W/"2"', {"x": 1, "y": [1, 2]})


async def test_an_answer_that_cannot_be_stored_is_answered_and_never_redone() -> None:
    class Failing(MemoryStore):
        async def complete(self, tenant: str, key: str, answer: StoredAnswer) -> None:
            raise OSError("database connection lost")

    store, work = Failing(), Work()
    first = await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    assert first == {"id": "order-1"}
    with pytest.raises(IdempotencyRequestInFlight):
        await _idem(store).once({"a": 1}, work, response=Response(), status_code=201)
    assert work.calls == 1
