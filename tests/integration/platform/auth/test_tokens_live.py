"""JWKS, signing-key rotation with grace, forged tokens through the app, deny-list fallbacks."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from jose import jwt
from redis.asyncio import Redis
from sqlalchemy import delete, update
from support.auth_live import (
    Account,
    MakeAccount,
    access_token,
    bearer,
)
from support.database import Sessions
from support.signing import new_es256_key

from ehr.core.config import Settings
from ehr.core.db.models import RevokedToken, SigningKey, User
from ehr.core.redis_store import create_redis
from ehr.platform.auth.crypto import encrypt
from ehr.platform.auth.revocation import (
    DENY_READY_KEY,
    is_revoked,
    purge_expired,
    revoke_access_token,
)
from ehr.platform.auth.signing_keys import (
    UNKNOWN_KID_RELOAD_SECONDS,
    ActiveSigningKey,
    invalidate_cache,
    rotate_signing_key,
)
from ehr.platform.auth.tokens import (
    decode_access_token,
    encode_access_token,
    issue_access_token_for,
)

pytestmark = pytest.mark.integration


async def test_jwks_lists_the_kid_of_issued_tokens_and_verifies_them(
    client: httpx.AsyncClient, account: Account, settings: Settings
) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    kid = jwt.get_unverified_header(access)["kid"]
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = {k["kid"]: k for k in response.json()["keys"]}
    assert kid in keys
    assert keys[kid]["alg"] == "ES256"
    assert "d" not in keys[kid]  # public part only
    # a relying party can verify with the published key alone
    assert decode_access_token(access, keys, settings).subject == user.id


async def test_rotation_retires_the_signer_and_keeps_its_tokens_valid(
    client: httpx.AsyncClient, account: Account, db: Sessions, settings: Settings
) -> None:
    tenant, user = account
    old_access = await access_token(client, tenant, user)
    old_kid = jwt.get_unverified_header(old_access)["kid"]

    async with db() as session, session.begin():
        new_kid = await rotate_signing_key(session, settings)
    async with db() as session:
        old_row = await session.get(SigningKey, old_kid)
    assert old_row is not None
    assert old_row.retired_at is not None
    assert old_row.expires_at is not None
    grace = max(settings.auth.retired_key_grace_seconds, settings.auth.access_token_ttl_seconds)
    assert old_row.expires_at >= old_row.retired_at + timedelta(seconds=grace)

    new_access = await access_token(client, tenant, user)
    assert jwt.get_unverified_header(new_access)["kid"] == new_kid != old_kid
    jwks = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= jwks
    assert (await client.get("/api/auth/me", headers=bearer(old_access))).status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(new_access))).status_code == 200


async def test_a_retired_key_is_accepted_until_its_grace_ends(
    client: httpx.AsyncClient, account: Account, db: Sessions, settings: Settings
) -> None:
    # A retired key of this test's own (expiring a key other processes may still sign with
    # would break their tokens: the stack's database is shared).
    tenant, user = account
    key = new_es256_key(f"test-{uuid.uuid4().hex[:16]}")
    kid, pem = key.kid, key.private_pem
    now = datetime.now(UTC)
    async with db() as session, session.begin():
        session.add(
            SigningKey(
                kid=kid,
                algorithm="ES256",
                private_key_encrypted=encrypt(settings, pem),
                public_jwk=key.public_jwk,
                created_at=now - timedelta(hours=1),
                retired_at=now - timedelta(minutes=1),
                expires_at=now + timedelta(minutes=30),
            )
        )
    # Another replica's key: this process learns it from the unknown kid (reloads are spaced).
    await asyncio.sleep(UNKNOWN_KID_RELOAD_SECONDS + 0.05)
    try:
        token = encode_access_token(
            ActiveSigningKey(kid=kid, private_pem=pem),
            settings,
            subject=user.id,
            tenant_id=tenant.id,
            tenant=tenant.slug,
            roles=["physician"],
        ).token
        assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
        jwks = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
        assert kid in jwks

        async with db() as session, session.begin():  # the grace period ends
            await session.execute(
                update(SigningKey)
                .where(SigningKey.kid == kid)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        invalidate_cache()  # (other processes notice within the cache time)
        assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 401
        jwks = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
        assert kid not in jwks
    finally:
        async with db() as session, session.begin():
            await session.execute(delete(SigningKey).where(SigningKey.kid == kid))


async def test_forged_tokens_are_refused_by_the_app(
    client: httpx.AsyncClient, account: Account
) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    header, payload, _ = access.split(".")
    claims = jwt.get_unverified_claims(access)
    jwk_doc = (await client.get("/.well-known/jwks.json")).json()
    forged = [
        jwt.encode(
            claims,
            json.dumps(jwk_doc),
            algorithm="HS256",
            headers={"kid": jwt.get_unverified_header(access)["kid"]},
        ),
        f"{header}.{payload}.",
        jwt.encode({**claims, "iss": "urn:evil"}, "secret", algorithm="HS256"),
    ]
    for token in forged:
        response = await client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401


async def test_revocation_is_seen_without_redis_and_after_redis_loses_it(
    db: Sessions, account: Account, settings: Settings
) -> None:
    user = account.user
    redis = create_redis(settings)
    dead = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    jti = f"test-{user.id.hex}"
    try:
        async with db() as session, session.begin():
            await revoke_access_token(
                session,
                redis,
                jti=jti,
                user_id=user.id,
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
                reason="test",
            )
        async with db() as session:
            assert await is_revoked(session, redis, jti=jti, session_id=None)
            # Redis unreachable: PostgreSQL answers
            assert await is_revoked(session, dead, jti=jti, session_id=None)
            assert not await is_revoked(session, dead, jti="never-revoked", session_id=None)
            # Redis lost its data (no ready marker): PostgreSQL answers and Redis is re-warmed
            await redis.delete(DENY_READY_KEY, "ehr:auth:deny:" + jti)
            assert await is_revoked(session, redis, jti=jti, session_id=None)
            assert await redis.exists(DENY_READY_KEY, "ehr:auth:deny:" + jti) == 2
    finally:
        await redis.aclose()
        await dead.aclose()


async def test_issue_access_token_for_helper(
    client: httpx.AsyncClient, make_account: MakeAccount, db: Sessions, settings: Settings
) -> None:
    _, user = await make_account(roles=["pharmacist"])
    async with db() as session, session.begin():
        row = await session.get(User, user.id)
        assert row is not None
        token = await issue_access_token_for(session, settings, row)
    me = await client.get("/api/auth/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["roles"] == ["pharmacist"]


async def test_purge_expired_removes_only_expired_rows(db: Sessions, account: Account) -> None:
    user = account.user
    now = datetime.now(UTC)
    expired, live = f"purge-old-{user.id.hex}", f"purge-new-{user.id.hex}"
    async with db() as session, session.begin():
        session.add_all(
            [
                RevokedToken(jti=expired, user_id=user.id, expires_at=now - timedelta(seconds=5)),
                RevokedToken(jti=live, user_id=user.id, expires_at=now + timedelta(minutes=5)),
            ]
        )
    async with db() as session, session.begin():
        assert await purge_expired(session) >= 1
    async with db() as session:
        assert await session.get(RevokedToken, expired) is None
        assert await session.get(RevokedToken, live) is not None
