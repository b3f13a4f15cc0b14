"""Who a credential is, kept in process — dropped at once when PostgreSQL says otherwise.

PostgreSQL (``users``, ``role_grants``, ``tenants``, ``api_keys``) is the truth. Each process
keeps what authentication loaded from it — a user's account (status, tenant, roles, patient) and
an API key's identity — so that a repeated request needs no database round trip. What makes that
safe is a **change stamp** per account in Redis:

    ehr:auth:ver:user:<user id>       ehr:auth:ver:tenant:<tenant id>
    ehr:auth:ver:api-key:<key id>     ehr:auth:ver:epoch   (all entries, see below)

(absent = never changed; a value is opaque, unique, with a TTL of :data:`VERSION_TTL_SECONDS`).
Every authenticated request reads the stamps it depends on in its single Redis round trip
(:mod:`ehr.platform.auth.request_checks`, with the deny-list check and the rate limit); an entry
is used only when it was loaded under exactly those stamps — read *before* the database read, so
a change committed after the load has a stamp the entry does not have — and is younger than
``settings.auth.principal_cache_seconds`` (the last bound). The epoch is set when Redis has none:
a flushed or restarted Redis (which lost the stamps) gets a new epoch and so drops everything.

**What changes an account** goes through the services, which call :func:`principal_changed` in
their transaction: disabling/enabling a user, changing its roles
(:mod:`ehr.platform.auth.service`), disabling/enabling a tenant
(:mod:`ehr.platform.tenancy.service`), revoking or rotating an API key
(:mod:`ehr.platform.auth.api_keys`). When that transaction COMMITS (a SQLAlchemy ``after_commit``
hook on the session: a rolled-back change bumps nothing, and no caller can forget), every cache
of this process drops the accounts at once and their new stamps are queued; the caller writes
them with ``await publish_principal_changes(redis)`` right after the commit, and otherwise (or if
Redis refused) the next authenticated request of this process writes them before its own checks.
Other processes drop their entries on their next request after the stamps land.

**Redis unavailable** (docs/adr/0013-outages.md): no stamp can be read, so nothing is served from
the cache — every request loads its account from PostgreSQL — and a failed round trip empties
this process's caches (entries from before the outage are never trusted after it). Queued stamps
stay queued (bounded) and are written when Redis answers. A process that dies with stamps queued
leaves other processes' entries stale at most ``principal_cache_seconds``.

**Hand edits**: an UPDATE of those tables outside the services bumps nothing — other processes
may serve the old account until ``principal_cache_seconds`` passes. An operator who edits them by
hand runs ``ehr auth flush-principal-cache`` (a new epoch: every process reloads everything).

Entries are bounded (:data:`MAX_ENTRIES` per kind, least recently used first out); one cache per
Redis client (an app), like :func:`~ehr.core.redis_store.redis_health`.
"""

from __future__ import annotations

import secrets
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ehr.core.redis_store import redis_health

__all__ = [
    "EPOCH_KEY",
    "MAX_ENTRIES",
    "VERSION_KEY_PREFIX",
    "VERSION_TTL_SECONDS",
    "AccountSnapshot",
    "ApiKeySnapshot",
    "PrincipalCache",
    "Stamp",
    "api_key_version_key",
    "changes_written",
    "flush_principal_cache",
    "new_stamp",
    "pending_principal_changes",
    "principal_cache",
    "principal_changed",
    "publish_principal_changes",
    "queue_pending_changes",
    "tenant_version_key",
    "user_version_key",
]

logger = structlog.get_logger(__name__)

VERSION_KEY_PREFIX: Final = "ehr:auth:ver:"
EPOCH_KEY: Final = "ehr:auth:ver:epoch"
# A stamp outlives every entry loaded before it (entries live at most principal_cache_seconds):
# when it expires, entries that saw it see "absent" — a change — and reload.
VERSION_TTL_SECONDS: Final = 86_400
MAX_ENTRIES: Final = 10_000
# Stamps one process keeps for Redis at most (beyond: left to principal_cache_seconds).
_MAX_PENDING: Final = 100_000
_COMPONENT: Final = "principal_cache"
_INFO_KEY: Final = "ehr.auth.principal_changes"
_LISTENING_KEY: Final = "ehr.auth.principal_changes.listening"

Kind = Literal["user", "tenant", "api-key"]
# The stamps an entry was loaded under: (epoch, then one per version key), raw Redis values.
Stamp = tuple[bytes, ...]


def user_version_key(user_id: uuid.UUID) -> str:
    return f"{VERSION_KEY_PREFIX}user:{user_id}"


def tenant_version_key(tenant_id: uuid.UUID) -> str:
    return f"{VERSION_KEY_PREFIX}tenant:{tenant_id}"


def api_key_version_key(key_id: uuid.UUID) -> str:
    return f"{VERSION_KEY_PREFIX}api-key:{key_id}"


def _version_key(kind: Kind, id_: uuid.UUID) -> str:
    return f"{VERSION_KEY_PREFIX}{kind}:{id_}"


def new_stamp() -> str:
    """A value never used before (a time and randomness): a change, or a new epoch."""
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What a user's principal needs from PostgreSQL (``load_account``), immutable."""

    user_id: uuid.UUID
    username: str
    patient_id: str | None
    tenant_id: uuid.UUID
    tenant_slug: str
    roles: frozenset[str]
    active: bool


@dataclass(frozen=True, slots=True)
class ApiKeySnapshot:
    """A live API key's identity (``resolve_api_key``); ``expires_at`` in epoch seconds."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    roles: frozenset[str]
    scopes: frozenset[str]
    key_permissions: frozenset[str]
    expires_at: float


T = TypeVar("T", AccountSnapshot, ApiKeySnapshot)


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    # None: only the ids are known (learned after the database read: not trusted yet).
    stamp: Stamp | None
    loaded_at: float


class _Lru(Generic[T]):
    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self.entries: OrderedDict[object, _Entry[T]] = OrderedDict()

    def get(self, key: object) -> _Entry[T] | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: object, entry: _Entry[T]) -> None:
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self._max:
            self.entries.popitem(last=False)


class PrincipalCache:
    """Accounts by user id, API-key identities by key hash, each with the stamps it was loaded
    under. Never trusted without the stamps of the current request (see the module doc)."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self.users: _Lru[AccountSnapshot] = _Lru(max_entries)
        self.api_keys: _Lru[ApiKeySnapshot] = _Lru(max_entries)

    @staticmethod
    def _valid(entry: _Entry[T] | None, stamp: Stamp, max_age: float) -> T | None:
        if entry is None or entry.stamp != stamp:
            return None
        if time.monotonic() - entry.loaded_at >= max_age:
            return None
        return entry.value

    def user(self, user_id: uuid.UUID, stamp: Stamp, max_age: float) -> AccountSnapshot | None:
        return self._valid(self.users.get(user_id), stamp, max_age)

    def store_user(self, account: AccountSnapshot, stamp: Stamp) -> None:
        self.users.put(account.user_id, _Entry(account, stamp, time.monotonic()))

    def api_key_ids(self, key_hash: str) -> ApiKeySnapshot | None:
        """The key's last known identity (ids for the stamps to read), trusted or not."""
        entry = self.api_keys.get(key_hash)
        return None if entry is None else entry.value

    def api_key(self, key_hash: str, stamp: Stamp, max_age: float) -> ApiKeySnapshot | None:
        found = self._valid(self.api_keys.get(key_hash), stamp, max_age)
        if found is not None and found.expires_at <= time.time():
            return None
        return found

    def store_api_key(self, key_hash: str, key: ApiKeySnapshot, stamp: Stamp | None) -> None:
        self.api_keys.put(key_hash, _Entry(key, stamp, time.monotonic()))

    def forget_api_key(self, key_hash: str) -> None:
        self.api_keys.entries.pop(key_hash, None)

    def drop(
        self,
        *,
        user_ids: Iterable[uuid.UUID] = (),
        tenant_ids: Iterable[uuid.UUID] = (),
        api_key_ids: Iterable[uuid.UUID] = (),
    ) -> None:
        users, tenants, keys = set(user_ids), set(tenant_ids), set(api_key_ids)
        for user_id, user_entry in list(self.users.entries.items()):
            if user_id in users or user_entry.value.tenant_id in tenants:
                del self.users.entries[user_id]
        if not (tenants or keys):
            return
        for key_hash, key_entry in list(self.api_keys.entries.items()):
            if key_entry.value.key_id in keys or key_entry.value.tenant_id in tenants:
                del self.api_keys.entries[key_hash]

    def clear(self) -> None:
        self.users.entries.clear()
        self.api_keys.entries.clear()


_CACHES: Final[weakref.WeakKeyDictionary[Redis, PrincipalCache]] = weakref.WeakKeyDictionary()
# Changes committed in this process whose stamps Redis has not taken yet: (kind, id).
_PENDING: Final[set[tuple[Kind, uuid.UUID]]] = set()


def principal_cache(redis: Redis) -> PrincipalCache:
    """The cache of the app using ``redis`` (one per client: per app, per process)."""
    cache = _CACHES.get(redis)
    if cache is None:
        cache = _CACHES[redis] = PrincipalCache()
    return cache


def _drop_everywhere(changes: Iterable[tuple[Kind, uuid.UUID]]) -> None:
    users = {i for k, i in changes if k == "user"}
    tenants = {i for k, i in changes if k == "tenant"}
    keys = {i for k, i in changes if k == "api-key"}
    for cache in list(_CACHES.values()):
        cache.drop(user_ids=users, tenant_ids=tenants, api_key_ids=keys)


def _committed(session: Session) -> None:
    changes: set[tuple[Kind, uuid.UUID]] | None = session.info.pop(_INFO_KEY, None)
    if not changes:
        return
    _drop_everywhere(changes)
    room = _MAX_PENDING - len(_PENDING)
    if room < len(changes):
        logger.warning("auth.principal.pending_full", pending=len(_PENDING))
    _PENDING.update(list(changes)[: max(0, room)])
    logger.info("auth.principal.changed", changes=len(changes))


def _rolled_back(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


def principal_changed(
    session: AsyncSession,
    *,
    user_ids: Iterable[uuid.UUID] = (),
    tenant_ids: Iterable[uuid.UUID] = (),
    api_key_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Record that this session's transaction changes these accounts (call it from the service
    that changes them). Nothing happens unless the transaction commits; then this process's
    caches drop them and their stamps are queued for :func:`publish_principal_changes`."""
    changes: set[tuple[Kind, uuid.UUID]] = session.info.setdefault(_INFO_KEY, set())
    changes.update(("user", i) for i in user_ids)
    changes.update(("tenant", i) for i in tenant_ids)
    changes.update(("api-key", i) for i in api_key_ids)
    sync_session = session.sync_session
    if not sync_session.info.get(_LISTENING_KEY):
        # session.info is sync_session.info: one listener pair per session.
        sync_session.info[_LISTENING_KEY] = True
        event.listen(sync_session, "after_commit", _committed)
        event.listen(sync_session, "after_rollback", _rolled_back)


def pending_principal_changes() -> int:
    """How many committed changes still wait for Redis (tests, diagnostics)."""
    return len(_PENDING)


def queue_pending_changes(pipe: Pipeline) -> list[tuple[Kind, uuid.UUID]]:
    """Add the pending stamps' SETs to a Redis pipeline; the changes queued."""
    queued = list(_PENDING)
    for kind, id_ in queued:
        pipe.set(_version_key(kind, id_), new_stamp(), ex=VERSION_TTL_SECONDS)
    return queued


def changes_written(queued: Iterable[tuple[Kind, uuid.UUID]]) -> None:
    written = 0
    for change in queued:
        _PENDING.discard(change)
        written += 1
    if written:
        logger.info("auth.principal.stamps_written", changes=written)


async def publish_principal_changes(redis: Redis) -> bool:
    """Write the stamps of every change committed in this process (call after the commit).

    True when Redis took them (or there were none). False when it could not: they stay queued
    and the next authenticated request of this process writes them; meanwhile other processes
    may serve the old account up to ``principal_cache_seconds``.
    """
    if not _PENDING:
        return True
    health = redis_health(redis)
    if not health.available():
        health.served_without_redis(_COMPONENT, "skipped")
        return False
    try:
        async with redis.pipeline(transaction=False) as pipe:
            queued = queue_pending_changes(pipe)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        health.failed(_COMPONENT, exc)
        logger.warning("auth.principal.stamps_deferred", error_type=type(exc).__name__)
        return False
    health.succeeded()
    changes_written(queued)
    return True


async def flush_principal_cache(redis: Redis) -> None:
    """A new epoch: every process drops every cached account on its next request (after a hand
    edit of users, role_grants, tenants or api_keys). Raises if Redis cannot be reached."""
    await redis.set(EPOCH_KEY, new_stamp())
    for cache in list(_CACHES.values()):
        cache.clear()
    logger.info("auth.principal.cache_flushed")
