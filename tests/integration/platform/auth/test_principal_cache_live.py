"""Authentication with its caches on (real PostgreSQL and Redis): what a warm request costs, and
that every change of an account acts on the next request all the same.

A warm bearer request reads no PostgreSQL and makes ONE Redis round trip (deny-list, change
stamps and rate limit in one EVALSHA). Disabling a user, removing a role, disabling a tenant,
revoking a token or an API key — through the services, the CLI (another process) or by hand
followed by ``ehr auth flush-principal-cache`` — is refused on the very next request, and with
Redis unreachable PostgreSQL answers every request.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import delete, event, update
from starlette.requests import Request
from support.auth_live import (
    Account,
    MakeAccount,
    access_token,
    bearer,
    issue_api_key,
    random_ip,
)
from support.database import Sessions
from support.in_process import client_of, started
from support.ports import free_port
from support.settings import settings_with
from support.signing import new_es256_key

from ehr.core.config import Settings
from ehr.core.db.models import SigningKey, User
from ehr.core.dependencies import AppResources
from ehr.core.errors import TooManyRequests
from ehr.entrypoints.api import create_app
from ehr.platform.auth import tokens
from ehr.platform.auth.api_keys import revoke_api_key
from ehr.platform.auth.crypto import encrypt
from ehr.platform.auth.dependencies import authenticate
from ehr.platform.auth.principal_cache import (
    pending_principal_changes,
    publish_principal_changes,
    user_version_key,
)
from ehr.platform.auth.service import disable_user, enable_user, set_user_roles
from ehr.platform.auth.signing_keys import invalidate_cache
from ehr.platform.auth.tokens import BearerChallenge, encode_access_token
from ehr.platform.tenancy import disable_tenant, enable_tenant

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class CachedApp:
    running: FastAPI  # what clients call (lifespan running)
    resources: AppResources


@pytest.fixture(scope="session")
async def cached_app(settings: Settings) -> AsyncIterator[CachedApp]:
    """An app of this module's own (its resources at hand: engine, Redis client)."""
    app = create_app(settings)
    async with started(app) as running:
        resources = app.state.resources
        assert isinstance(resources, AppResources)
        yield CachedApp(running, resources)


@pytest.fixture
async def client(cached_app: CachedApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(cached_app.running, peer=(random_ip(), 40000)) as http:
        yield http


def request_with(headers: dict[str, str]) -> Request:
    """A bare request carrying ``headers`` (what the gateway hands to ``authenticate``)."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/fhir/Patient", "headers": raw})


@dataclass
class Traffic:
    """Statements sent to PostgreSQL and packets (round trips) sent to Redis meanwhile."""

    statements: list[str] = field(default_factory=list)
    redis_sends: list[bytes] = field(default_factory=list)


@contextmanager
def traffic(resources: AppResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Traffic]:
    seen = Traffic()

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.statements.append(statement)

    original = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(command)
        seen.redis_sends.append(packed)
        await original(self, command, check_health)

    engine = resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    try:
        yield seen
    finally:
        monkeypatch.setattr(AbstractConnection, "send_packed_command", original)
        event.remove(engine, "before_cursor_execute", on_statement)


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.get("/api/auth/me", headers=headers)


async def warm(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Two requests: the account is then cached under the current stamps."""
    for _ in range(2):
        response = await me(client, headers)
        assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def published(cached_app: CachedApp) -> None:
    """What the test just committed, written to Redis (as the service's caller does)."""
    assert await publish_principal_changes(cached_app.resources.redis)
    assert pending_principal_changes() == 0


# --- what a warm request costs -------------------------------------------------------------------


async def test_a_warm_request_reads_no_postgresql_and_makes_one_redis_round_trip(
    cached_app: CachedApp,
    client: httpx.AsyncClient,
    account: Account,
    db: Sessions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, user = account
    resources = cached_app.resources
    headers = bearer(await access_token(client, tenant, user))
    await authenticate(request_with(headers), resources, rate_limit_per_minute=1000)  # loads

    with traffic(resources, monkeypatch) as seen:
        principal = await authenticate(request_with(headers), resources, rate_limit_per_minute=1000)
    assert principal.subject == user.id
    assert principal.tenant == tenant.slug
    assert seen.statements == []
    assert len(seen.redis_sends) == 1, seen.redis_sends
    assert b"EVALSHA" in seen.redis_sends[0]

    _, key = await issue_api_key(db, tenant.id, name="cache", permissions=["self:manage"])
    key_headers = {"X-API-Key": key}
    for _ in range(2):  # first sight (ids), then loaded under its stamps
        await authenticate(request_with(key_headers), resources, rate_limit_per_minute=1000)
    with traffic(resources, monkeypatch) as seen:
        keyed = await authenticate(request_with(key_headers), resources, rate_limit_per_minute=1000)
    assert keyed.kind == "api_key"
    assert seen.statements == []  # last_used_at was written by the first request this minute
    assert len(seen.redis_sends) == 1, seen.redis_sends


async def test_the_rate_limit_is_counted_in_the_same_round_trip(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account
) -> None:
    tenant, user = account
    resources = cached_app.resources
    headers = bearer(await access_token(client, tenant, user))
    for _ in range(2):
        await authenticate(request_with(headers), resources, rate_limit_per_minute=2)
    with pytest.raises(TooManyRequests) as refused:
        await authenticate(request_with(headers), resources, rate_limit_per_minute=2)
    assert refused.value.status_code == 429
    assert int(refused.value.headers["Retry-After"]) > 0
    # Without a limit (every /api route) the same principal is still served.
    assert (await authenticate(request_with(headers), resources)).subject == user.id


# --- changes act on the next request ------------------------------------------------------------


async def test_a_disabled_user_is_refused_on_the_next_request_and_back_when_enabled(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)
    redis = cached_app.resources.redis
    before = await redis.get(user_version_key(user.id))

    async with db() as session, session.begin():
        await disable_user(session, user.id)
    await published(cached_app)
    assert await redis.get(user_version_key(user.id)) != before
    assert (await me(client, headers)).status_code == 401

    async with db() as session, session.begin():
        await enable_user(session, user.id)
    await published(cached_app)
    assert (await me(client, headers)).status_code == 200


async def test_a_rolled_back_change_invalidates_nothing(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)
    redis = cached_app.resources.redis
    before = await redis.get(user_version_key(user.id))
    async with db() as session:
        await disable_user(session, user.id)
        await session.rollback()
    assert pending_principal_changes() == 0
    assert await redis.get(user_version_key(user.id)) == before
    assert (await me(client, headers)).status_code == 200


async def test_a_removed_role_is_gone_from_the_next_request(
    cached_app: CachedApp, client: httpx.AsyncClient, make_account: MakeAccount, db: Sessions
) -> None:
    tenant, user = await make_account(roles=["physician", "nurse"])
    headers = bearer(await access_token(client, tenant, user))
    assert (await warm(client, headers))["roles"] == ["nurse", "physician"]

    async with db() as session, session.begin():
        await set_user_roles(session, user_id=user.id, roles=["nurse"], granted_by="test")
    await published(cached_app)
    after = await me(client, headers)
    assert after.status_code == 200
    assert after.json()["roles"] == ["nurse"]


async def test_a_disabled_tenant_is_refused_and_works_again_when_enabled(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    _, key = await issue_api_key(db, tenant.id, name="tenant", permissions=["self:manage"])
    key_headers = {"X-API-Key": key}
    await warm(client, headers)
    await warm(client, key_headers)

    async with db() as session, session.begin():
        await disable_tenant(session, tenant.slug)
    await published(cached_app)
    assert (await me(client, headers)).status_code == 401
    assert (await me(client, key_headers)).status_code == 401

    async with db() as session, session.begin():
        await enable_tenant(session, tenant.slug)
    await published(cached_app)
    assert (await me(client, headers)).status_code == 200
    assert (await me(client, key_headers)).status_code == 200


async def test_a_revoked_token_or_api_key_is_refused_with_warm_caches(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await me(client, headers)).status_code == 401

    row, key = await issue_api_key(db, tenant.id, name="revoked", permissions=["self:manage"])
    key_headers = {"X-API-Key": key}
    await warm(client, key_headers)
    await warm(client, key_headers)
    async with db() as session, session.begin():
        await revoke_api_key(session, row.id)
    await published(cached_app)
    assert (await me(client, key_headers)).status_code == 401


async def test_another_processes_change_acts_through_redis_alone(
    client: httpx.AsyncClient, account: Account, settings: Settings
) -> None:
    """``ehr auth disable-user`` in a separate process: only the stamp it writes reaches this
    process's warm cache."""
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)

    async def ehr(*args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ehr.entrypoints.cli",
            "auth",
            *args,
            "--tenant",
            tenant.slug,
            user.username,
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, (out, err)

    await ehr("disable-user")
    assert (await me(client, headers)).status_code == 401
    await ehr("enable-user")
    assert (await me(client, headers)).status_code == 200


async def test_a_hand_edit_acts_after_flush_principal_cache(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)
    async with db() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(status="disabled"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ehr.entrypoints.cli",
        "auth",
        "flush-principal-cache",
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out, err)
    assert (await me(client, headers)).status_code == 401


# --- Redis unreachable ----------------------------------------------------------------------------


@asynccontextmanager
async def app_without_redis(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    down = settings_with(settings, "redis", url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"))
    async with started(create_app(down)) as app, client_of(app) as http:
        yield http


async def test_without_redis_postgresql_answers_and_a_disable_still_acts(
    client: httpx.AsyncClient, account: Account, db: Sessions, settings: Settings
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    async with app_without_redis(settings) as http:
        for _ in range(3):
            assert (await me(http, headers)).status_code == 200
        async with db() as session, session.begin():
            await disable_user(session, user.id)
        assert (await me(http, headers)).status_code == 401
        async with db() as session, session.begin():
            await enable_user(session, user.id)
        assert (await me(http, headers)).status_code == 200


async def test_stamps_redis_refused_are_written_by_the_next_request(
    cached_app: CachedApp, client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    await warm(client, headers)
    redis = cached_app.resources.redis
    before = await redis.get(user_version_key(user.id))
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        async with db() as session, session.begin():
            await disable_user(session, user.id)
        assert not await publish_principal_changes(dead)
    finally:
        await dead.aclose()
    assert pending_principal_changes() > 0
    assert await redis.get(user_version_key(user.id)) == before

    assert (await me(client, headers)).status_code == 401
    assert pending_principal_changes() == 0  # written before that request's own checks
    assert await redis.get(user_version_key(user.id)) != before


# --- the verified-token cache ------------------------------------------------------------------


class _Later:
    """``time`` for the tokens module, ``seconds`` ahead."""

    def __init__(self, seconds: float) -> None:
        import time as real

        self._real = real
        self._seconds = seconds

    def time(self) -> float:
        return self._real.time() + self._seconds


async def test_a_cached_token_is_refused_once_expired(
    cached_app: CachedApp,
    client: httpx.AsyncClient,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    resources = cached_app.resources
    await authenticate(request_with(headers), resources)  # verified and cached
    ttl = resources.settings.auth.access_token_ttl_seconds
    monkeypatch.setattr(tokens, "time", _Later(ttl + 2))
    with pytest.raises(BearerChallenge) as refused:
        await authenticate(request_with(headers), resources)
    assert refused.value.detail == "The access token has expired"


@pytest.fixture
async def extra_signing_key(db: Sessions, settings: Settings) -> AsyncIterator[Any]:
    """A verification key of its own (retired at once: it never signs for anyone else)."""
    key = new_es256_key(f"test-{uuid.uuid4().hex[:12]}")
    now = datetime.now(UTC)
    async with db() as session, session.begin():
        session.add(
            SigningKey(
                kid=key.kid,
                algorithm="ES256",
                private_key_encrypted=encrypt(settings, key.private_pem),
                public_jwk=key.public_jwk,
                created_at=now - timedelta(days=1),
                retired_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
    invalidate_cache()
    try:
        yield key
    finally:
        async with db() as session, session.begin():
            await session.execute(delete(SigningKey).where(SigningKey.kid == key.kid))
        invalidate_cache()


async def test_a_cached_token_is_refused_once_its_key_is_gone(
    cached_app: CachedApp, account: Account, db: Sessions, extra_signing_key: Any
) -> None:
    tenant, user = account
    resources = cached_app.resources
    issued = encode_access_token(
        extra_signing_key.active,
        resources.settings,
        subject=user.id,
        tenant_id=tenant.id,
        tenant=tenant.slug,
        roles=["physician"],
    )
    headers = bearer(issued.token)
    assert (await authenticate(request_with(headers), resources)).subject == user.id

    async with db() as session, session.begin():
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid == extra_signing_key.kid)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    invalidate_cache()  # what every process does within signing_keys.CACHE_SECONDS
    with pytest.raises(BearerChallenge) as refused:
        await authenticate(request_with(headers), resources)
    assert refused.value.detail == "The access token is invalid"
