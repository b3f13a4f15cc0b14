"""The per-process audit appender: one statement per group commit onto a (tenant, shard) chain.

Every PHI access is recorded before its response is sent, so the audit append sits on the hot
path of every request. One :class:`ChainAppender` per database (per sessionmaker) makes it cheap
without weakening it:

- **One statement, one round trip.** The records are linked in Python (the one implementation
  of the canonical hash) against the chain head the process remembers, and handed to the SQL
  function ``audit_append`` (migration 0005) as one JSON array, on a connection in autocommit:
  the statement's implicit transaction takes the chain's advisory lock (the wait bounded by
  ``lock_timeout``, set inside the function), checks the head, inserts, and commits when the
  call returns. No BEGIN, no COMMIT, no separate lock or timeout statement.
- **Chains per (tenant, shard).** The appender writes a tenant's records to ITS shard, so
  replicas and workers append to different chains and never wait on each other's lock. The
  shard is drawn at random when the appender is created; when the function reports that another
  writer used the same chain (the lock was held, or the head had moved), the appender moves that
  tenant to another random shard. Two writers on one shard stay correct (lock + head check);
  they only contend until one moves.
- **Head check instead of a read.** If the head moved under the cached one, the function inserts
  nothing and returns the actual head; the appender relinks and calls again. If the head moved
  again (another writer keeps appending to the chain), it stops guessing: it takes the chain
  lock in a transaction of its own, reads the head under it, links and calls the function in
  that transaction (BEGIN, lock, read, call, COMMIT: five round trips, only under contention, and
  sure to succeed). A reply lost after the commit (a dropped connection) is recognised by the
  head check too: the head returned on the retry is the last record the lost call inserted.
- **Group commit per chain.** Appends of a tenant that arrive while one is being written wait
  and then go together in one call.
- **Nothing weaker than before.** Each caller awaits its own records' commit; a failure reaches
  every caller of the batch (the recorder turns it into 503 ``audit_unavailable``), and a
  failed batch of several callers is retried caller by caller, so one bad entry fails alone.
  A caller that goes away (client disconnect) does not cancel the write of its record. The call
  is bounded by ``statement_timeout_ms`` on the client (a statement cannot change its own
  server-side ``statement_timeout``); the lock wait is bounded on the server.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from weakref import WeakKeyDictionary

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ehr.core.db.models import AuditRecord
from ehr.platform.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    ChainKey,
    Head,
    app_schema,
    format_timestamp,
    link_entries,
    lock_key,
    read_head,
)

__all__ = [
    "APPEND_SQL",
    "AUDIT_SHARDS",
    "ChainAppender",
    "ChainContentionError",
    "appender_for",
    "record_rows",
]

logger = structlog.get_logger(__name__)

# Shards per tenant a writer chooses from. More shards than writer processes keeps writers apart;
# every shard is one more chain to verify and one more head per checkpoint.
AUDIT_SHARDS: Final = 16
# Optimistic calls (the cached head, then the head the function returned) before the locked path.
_OPTIMISTIC_ATTEMPTS: Final = 2

# One statement: lock, head check, insert; committed when it returns (autocommit).
APPEND_SQL: Final = (
    "SELECT appended, head_seq, head_hash, lock_waited FROM "
    '"{schema}".audit_append(:tenant, :shard, :expected_seq, :expected_hash, '
    "CAST(:rows AS jsonb), :lock_timeout_ms)"
)

# The same call in the driver's own placeholders (the request path sends it without SQLAlchemy).
RAW_APPEND_SQL: Final = (
    "SELECT appended, head_seq, head_hash, lock_waited FROM "
    '"{schema}".audit_append($1, $2, $3, $4, $5::jsonb, $6)'
)

# asyncpg's errors that mean the connection is gone (it is dropped from the pool, not reused).
_DISCONNECTS: Final[tuple[type[BaseException], ...]] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)


def _as_dbapi_error(exc: BaseException) -> DBAPIError | None:
    """A driver error as SQLAlchemy would have raised it (``orig`` keeps the SQLSTATE; a lost
    connection says ``connection_invalidated``); None for anything else (cancellation...)."""
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        lost = isinstance(exc, _DISCONNECTS)
        return DBAPIError(None, None, exc, connection_invalidated=lost)
    return None


# The contended path: the chain lock and the timeouts for the transaction, in one statement.
_LOCK_WITH_TIMEOUTS: Final = (
    "SELECT set_config('lock_timeout', :lock_timeout, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " pg_advisory_xact_lock(hashtextextended(:key, 0))"
)

_Waiter = tuple[Sequence[AuditEntry], "asyncio.Future[None]"]


class ChainContentionError(RuntimeError):
    """The function refused rows linked against the head read under the chain lock (a bug or
    a writer ignoring the lock): the records were not written."""


def _row(record: AuditRecord) -> dict[str, Any]:
    return {
        "tenant": record.tenant,
        "seq": record.seq,
        "occurred_at": format_timestamp(record.occurred_at),
        "actor_type": record.actor_type,
        "actor_id": record.actor_id,
        "actor_roles": list(record.actor_roles or ()),
        "action": record.action,
        "resource_type": record.resource_type,
        "resource_id": record.resource_id,
        "patient_id": record.patient_id,
        "outcome": record.outcome,
        "http_status": record.http_status,
        "source_ip": record.source_ip,
        "user_agent": record.user_agent,
        "request_id": record.request_id,
        "purpose_of_use": record.purpose_of_use,
        "break_glass": record.break_glass,
        "break_glass_reason": record.break_glass_reason,
        "details": record.details,
        "prev_hash": record.prev_hash,
        "record_hash": record.record_hash,
    }


def record_rows(records: Sequence[AuditRecord]) -> str:
    """The linked records as the JSON array ``audit_append`` inserts (timestamps canonical, so
    the stored value is the hashed one)."""
    return json.dumps(
        [_row(record) for record in records],
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


class ChainAppender:
    """Appends audit entries to (tenant, shard) hash chains (see the module doc)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lock_timeout_ms: int,
        statement_timeout_ms: int,
        shards: int = AUDIT_SHARDS,
        shard: int | None = None,
    ) -> None:
        engine = sessionmaker.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            raise TypeError("the appender needs a sessionmaker bound to an AsyncEngine")
        if shards < 1 or (shard is not None and not 0 <= shard < shards):
            raise ValueError("the shard must be in range(shards)")
        self._engine = engine
        self._sql = text(APPEND_SQL.format(schema=app_schema(engine)))
        self._raw_sql = RAW_APPEND_SQL.format(schema=app_schema(engine))
        self._lock_timeout_ms = int(lock_timeout_ms)
        self._statement_timeout = statement_timeout_ms / 1000
        self._shards = shards
        self._home = shard if shard is not None else random.randrange(shards)  # noqa: S311
        self._shard_of: dict[str, int] = {}
        self._heads: dict[ChainKey, Head] = {}
        self._pending: dict[str, list[_Waiter]] = {}
        self._draining: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def shard_for(self, tenant: str) -> int:
        """The shard this appender writes ``tenant``'s records to now."""
        return self._shard_of.get(tenant, self._home)

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

    async def _call(
        self, tenant: str, shard: int, head: Head, rows: str
    ) -> tuple[bool, Head, bool]:
        params = {
            "tenant": tenant,
            "shard": shard,
            "expected_seq": head[0],
            "expected_hash": head[1],
            "rows": rows,
            "lock_timeout_ms": self._lock_timeout_ms,
        }
        # The pooled connection's driver (asyncpg) directly: SQLAlchemy's statement layers cost
        # four times the call itself on the request path (docs/adr/0009, cost section). Outside
        # any transaction, the one statement commits when it returns.
        raw = await self._engine.raw_connection()
        try:
            async with asyncio.timeout(self._statement_timeout):
                row = await raw.driver_connection.fetchrow(  # type: ignore[union-attr]
                    self._raw_sql, *params.values()
                )
        except BaseException as exc:
            failure = _as_dbapi_error(exc)
            if failure is None or failure.connection_invalidated:
                raw.invalidate(exc if isinstance(exc, Exception) else None)
            if failure is not None:
                raise failure from exc
            raise
        finally:
            raw.close()
        if row is None:  # pragma: no cover - the function always returns one row
            raise ChainContentionError("audit_append returned no row")
        return bool(row[0]), (int(row[1]), str(row[2])), bool(row[3])

    async def _call_locked(self, tenant: str, shard: int, entries: list[AuditEntry]) -> Head:
        """The contended path: lock, read the head, link and call in one transaction."""
        async with (
            asyncio.timeout(self._statement_timeout),
            self._engine.connect() as connection,
            connection.begin(),
        ):
            await connection.execute(
                text(_LOCK_WITH_TIMEOUTS),
                {
                    "lock_timeout": f"{self._lock_timeout_ms}ms",
                    "statement_timeout": f"{int(self._statement_timeout * 1000)}ms",
                    "key": lock_key(tenant, shard),
                },
            )
            head = await read_head(connection, tenant, shard)
            records = link_entries(
                entries, last_seq=head[0], last_hash=head[1], now=datetime.now(UTC), shard=shard
            )
            params = {
                "tenant": tenant,
                "shard": shard,
                "expected_seq": head[0],
                "expected_hash": head[1],
                "rows": record_rows(records),
                "lock_timeout_ms": self._lock_timeout_ms,
            }
            row = (await connection.execute(self._sql, params)).one()
            if not row[0]:
                raise ChainContentionError("the chain head moved while its lock was held")
            return int(row[1]), str(row[2])

    async def _write(self, tenant: str, entries: list[AuditEntry]) -> None:
        shard = self.shard_for(tenant)
        key = (tenant, shard)
        known = key in self._heads
        head = self._heads.get(key, (0, GENESIS_HASH))
        shared = False
        sent: Head | None = None  # the last record of a call whose reply was lost
        attempts = 0
        while attempts < _OPTIMISTIC_ATTEMPTS:
            attempts += 1
            records = link_entries(
                entries, last_seq=head[0], last_hash=head[1], now=datetime.now(UTC), shard=shard
            )
            last = (records[-1].seq, records[-1].record_hash)
            try:
                appended, actual, waited = await self._call(
                    tenant, shard, head, record_rows(records)
                )
            except DBAPIError as exc:
                self._heads.pop(key, None)
                if not exc.connection_invalidated or sent is not None:
                    raise
                # The connection dropped: the call may or may not have committed. Ask again
                # (same head); the head the function returns says which.
                sent = last
                attempts -= 1
                continue
            except BaseException:
                self._heads.pop(key, None)
                raise
            if appended:
                self._heads[key] = actual
                if shared or waited:
                    self._move(tenant, shard)
                return
            if sent is not None and actual == sent:
                self._heads[key] = actual  # the lost call had committed
                return
            sent = None
            # Linked against a stale or unknown head: relink on the head the function returned.
            shared = shared or known
            known = True
            head = actual
            self._heads[key] = actual
        # The head keeps moving: another writer appends to this chain right now.
        try:
            self._heads[key] = await self._call_locked(tenant, shard, entries)
        except BaseException:
            self._heads.pop(key, None)
            raise
        self._move(tenant, shard)

    def _move(self, tenant: str, shard: int) -> None:
        """Another writer uses ``shard`` for ``tenant``: go to another one (spreads writers)."""
        if self._shards == 1:
            return
        moved = (shard + random.randrange(1, self._shards)) % self._shards  # noqa: S311
        self._shard_of[tenant] = moved
        logger.info("audit.shard.moved", tenant=tenant, shard_from=shard, shard_to=moved)

    def forget_heads(self) -> None:
        """Drop the cached chain heads (the next append of each chain learns its head)."""
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
