"""The per-process audit appender: group commit onto each tenant's hash chain.

Every PHI access is recorded before its response is sent, so the audit append sits on the hot
path of every request. One :class:`ChainAppender` per database (per sessionmaker) makes it cheap
without weakening it:

- **One writer per tenant per process.** Appends of a tenant that arrive while one is being
  written wait and then go together, in ONE transaction (group commit): under load, many
  requests share one lock, one round trip set, one commit.
- **A cached chain head.** The process remembers the tenant's last ``(seq, record_hash)`` it
  wrote or read, so an append is ``BEGIN; lock + timeouts; INSERT; COMMIT``. Other processes
  append too: every appender holds the tenant's advisory lock while it inserts, and
  ``UNIQUE (tenant, seq)`` refuses a record built on a head another process has moved — the
  appender then reads the head under the lock and links again (at most three times).
- **Nothing weaker than before.** Each caller awaits its own records' commit; a failure reaches
  every caller of the batch (the recorder turns it into 503 ``audit_unavailable``), and a
  failed batch of several callers is retried caller by caller, so one bad entry fails alone.
  A caller that goes away (client disconnect) does not cancel the write of its record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final
from weakref import WeakKeyDictionary

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.platform.audit.chain import AuditEntry, link_entries, lock_key, read_head

__all__ = ["ChainAppender", "appender_for"]

_CONFLICT_ATTEMPTS: Final = 3
# The timeouts (transaction-local) and the chain lock in one round trip. set_config runs before
# the lock call in the target list, so lock_timeout already bounds the wait for the lock.
_LOCK_WITH_TIMEOUTS: Final = (
    "SELECT set_config('lock_timeout', :lock_timeout, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " pg_advisory_xact_lock(hashtextextended(:key, 0))"
)

_Waiter = tuple[Sequence[AuditEntry], "asyncio.Future[None]"]


class ChainAppender:
    """Appends audit entries to per-tenant hash chains (see the module doc)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lock_timeout_ms: int,
        statement_timeout_ms: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._timeouts = {
            "lock_timeout": str(int(lock_timeout_ms)),
            "statement_timeout": str(int(statement_timeout_ms)),
        }
        self._heads: dict[str, tuple[int, str]] = {}
        self._pending: dict[str, list[_Waiter]] = {}
        self._draining: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` (all of one tenant); returns once they are committed."""
        if not entries:
            return
        tenant = entries[0].tenant
        if any(entry.tenant != tenant for entry in entries):
            raise ValueError("an append takes entries of one tenant")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a restarted app, a test): nothing of the old one is usable.
            self._loop, self._pending, self._draining = loop, {}, set()
            self._heads.clear()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.setdefault(tenant, []).append((entries, done))
        if tenant not in self._draining:
            self._draining.add(tenant)
            task = asyncio.create_task(self._drain(tenant), name=f"audit-append:{tenant}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # shield: a caller that is cancelled stops waiting; its record is still written.
        await asyncio.shield(done)

    async def _drain(self, tenant: str) -> None:
        try:
            while batch := self._pending.pop(tenant, None):
                await self._write_batch(tenant, batch)
        finally:
            # No await between the last (empty) pop and here: an append arriving now starts a
            # new drain.
            self._draining.discard(tenant)

    async def _write_batch(self, tenant: str, batch: list[_Waiter]) -> None:
        try:
            await self._write(tenant, [entry for entries, _ in batch for entry in entries])
        except Exception as exc:  # noqa: BLE001 - handed to the callers, who decide
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for waiter in batch:  # one bad entry must not fail the others
                await self._write_batch(tenant, [waiter])
            return
        for _, done in batch:
            _settle(done, None)

    async def _write(self, tenant: str, entries: list[AuditEntry]) -> None:
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                async with self._sessionmaker() as session, session.begin():
                    await session.execute(
                        text(_LOCK_WITH_TIMEOUTS), {**self._timeouts, "key": lock_key(tenant)}
                    )
                    head = self._heads.get(tenant)
                    if head is None:
                        head = await read_head(session, tenant)
                    records = link_entries(
                        entries, last_seq=head[0], last_hash=head[1], now=datetime.now(UTC)
                    )
                    session.add_all(records)
                    await session.flush()
            except IntegrityError:
                # Another process moved the head (UNIQUE (tenant, seq)): read it and relink.
                self._heads.pop(tenant, None)
                if attempt == _CONFLICT_ATTEMPTS:
                    raise
                continue
            except BaseException:
                self._heads.pop(tenant, None)
                raise
            self._heads[tenant] = (records[-1].seq, records[-1].record_hash)
            return

    def forget_heads(self) -> None:
        """Drop the cached chain heads (the next append of each tenant reads its head)."""
        self._heads.clear()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


_APPENDERS: WeakKeyDictionary[async_sessionmaker[AsyncSession], ChainAppender] = WeakKeyDictionary()


def appender_for(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    lock_timeout_ms: int,
    statement_timeout_ms: int,
) -> ChainAppender:
    """The appender of this database (one per sessionmaker, created on first use)."""
    appender = _APPENDERS.get(sessionmaker)
    if appender is None:
        appender = ChainAppender(
            sessionmaker,
            lock_timeout_ms=lock_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
        )
        _APPENDERS[sessionmaker] = appender
    return appender
