"""Where ``Idempotency-Key`` claims and answers are kept: the ``idempotency_keys`` table.

A claim is one ``INSERT … ON CONFLICT DO NOTHING``, committed at once in its own session (not the
request's), so the unique (tenant, key) constraint is the lock between two concurrent requests
with the same key: exactly one inserts, the other reads the row — in flight (no answer yet),
answered (replay), or another request's (fingerprint differs). The answer is stored, again in its
own session, when the request succeeds; a request that fails releases its claim (the row is
deleted) so the caller may retry. An expired row is replaced by a new claim.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.db.models import IdempotencyKey

__all__ = ["Claim", "IdempotencyStore", "SqlIdempotencyStore", "StoredAnswer"]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer given to the first request with a key."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a key found: ``owned`` (this request runs), else the row's fingerprint and
    its answer (None while the first request is still in flight)."""

    owned: bool
    fingerprint: str | None = None
    answer: StoredAnswer | None = None


class IdempotencyStore(Protocol):
    """Claims, answers and releases keys (the table, or a test's memory)."""

    async def claim(
        self, tenant: str, key: str, fingerprint: str, *, now: dt.datetime, ttl: dt.timedelta
    ) -> Claim: ...

    async def complete(self, tenant: str, key: str, answer: StoredAnswer) -> None: ...

    async def release(self, tenant: str, key: str) -> None: ...


class SqlIdempotencyStore:
    """:class:`IdempotencyStore` on the ``idempotency_keys`` table (short sessions of its own)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def claim(
        self, tenant: str, key: str, fingerprint: str, *, now: dt.datetime, ttl: dt.timedelta
    ) -> Claim:
        async with self._sessionmaker() as session, session.begin():
            inserted = await session.execute(
                insert(IdempotencyKey)
                .values(
                    tenant=tenant,
                    key=key,
                    request_fingerprint=fingerprint,
                    expires_at=now + ttl,
                )
                .on_conflict_do_nothing(index_elements=["tenant", "key"])
                .returning(IdempotencyKey.id)
            )
            if inserted.scalar_one_or_none() is not None:
                return Claim(owned=True)
            row = (
                await session.execute(
                    select(IdempotencyKey).where(
                        IdempotencyKey.tenant == tenant, IdempotencyKey.key == key
                    )
                )
            ).scalar_one_or_none()
            if row is None or row.expires_at <= now:
                # Released meanwhile, or expired: take it over (only one taker wins the update).
                return await self._take_over(session, tenant, key, fingerprint, now, ttl, row)
            answer = None
            if row.response_status is not None:
                stored = row.response_body or {}
                answer = StoredAnswer(
                    status=row.response_status,
                    body=stored.get("body"),
                    headers=dict(stored.get("headers") or {}),
                )
            return Claim(owned=False, fingerprint=row.request_fingerprint, answer=answer)

    async def _take_over(
        self,
        session: AsyncSession,
        tenant: str,
        key: str,
        fingerprint: str,
        now: dt.datetime,
        ttl: dt.timedelta,
        row: IdempotencyKey | None,
    ) -> Claim:
        if row is None:
            inserted = await session.execute(
                insert(IdempotencyKey)
                .values(
                    tenant=tenant, key=key, request_fingerprint=fingerprint, expires_at=now + ttl
                )
                .on_conflict_do_nothing(index_elements=["tenant", "key"])
                .returning(IdempotencyKey.id)
            )
            owned = inserted.scalar_one_or_none() is not None
            return Claim(owned=True) if owned else Claim(owned=False, fingerprint=None)
        taken = await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row.id, IdempotencyKey.expires_at <= now)
            .values(
                request_fingerprint=fingerprint,
                response_status=None,
                response_body=None,
                created_at=now,
                expires_at=now + ttl,
            )
            .returning(IdempotencyKey.id)
        )
        if taken.scalar_one_or_none() is not None:
            return Claim(owned=True)
        return Claim(owned=False, fingerprint=None)

    async def complete(self, tenant: str, key: str, answer: StoredAnswer) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.tenant == tenant, IdempotencyKey.key == key)
                .values(
                    response_status=answer.status,
                    response_body={"body": answer.body, "headers": answer.headers},
                )
            )

    async def release(self, tenant: str, key: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.tenant == tenant,
                    IdempotencyKey.key == key,
                    IdempotencyKey.response_status.is_(None),
                )
            )
