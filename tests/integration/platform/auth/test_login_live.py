"""Password login, identical failures, lockout, throttling, refresh rotation, logout, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from support.auth_live import (
    PASSWORD,
    Account,
    MakeAccount,
    MakeUser,
    access_token,
    bearer,
    login,
    random_ip,
)
from support.database import Sessions
from support.in_process import client_of, started
from support.settings import settings_with
from support.tenants import MakeTenant

from ehr.core.config import Settings
from ehr.core.db.models import RefreshSession, RevokedToken, User
from ehr.core.redis_store import create_redis
from ehr.entrypoints.api import create_app
from ehr.platform.auth.passwords import PasswordRejected
from ehr.platform.auth.service import disable_user, set_password
from ehr.platform.tenancy import disable_tenant, enable_tenant

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def _user_row(db: Sessions, user_id: uuid.UUID) -> User:
    async with db() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def test_login_returns_tokens_and_me_works(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    tenant, user = await make_account(roles=["nurse"])
    response = await login(client, tenant, user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert "user/Patient.rs" in body["scope"].split()
    assert body["refresh_token"].startswith("ehrr_")

    me = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["tenant"] == tenant.slug
    assert me.json()["roles"] == ["nurse"]
    assert me.json()["username"] == user.username
    assert me.json()["mfa_enabled"] is False


async def test_username_is_case_insensitive(
    client: httpx.AsyncClient, make_tenant: MakeTenant, make_user: MakeUser
) -> None:
    tenant = await make_tenant()
    user = await make_user(tenant, username="Dr.Mixed")
    response = await client.post(
        "/api/auth/login",
        json={"tenant": tenant.slug, "username": "DR.MIXED", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert user.username == "dr.mixed"


async def test_unknown_tenant_unknown_user_and_wrong_password_answer_identically(
    client: httpx.AsyncClient, account: Account
) -> None:
    tenant, user = account
    attempts = [
        {"tenant": tenant.slug, "username": user.username, "password": PASSWORD + "x"},
        {"tenant": tenant.slug, "username": "nobody-here", "password": PASSWORD},
        {"tenant": "no-such-tenant-zz", "username": user.username, "password": PASSWORD},
    ]
    responses = [await client.post("/api/auth/login", json=a) for a in attempts]
    assert {r.status_code for r in responses} == {401}
    assert {r.headers["www-authenticate"] for r in responses} == {'Bearer realm="ehr"'}
    assert {r.headers["content-type"] for r in responses} == {PROBLEM}
    bodies = [_without_request_id(r.json()) for r in responses]
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["code"] == "authentication_required"
    assert user.username not in responses[0].text


async def test_lockout_after_the_configured_failures_looks_like_a_wrong_password(
    client: httpx.AsyncClient, account: Account, db: Sessions, settings: Settings
) -> None:
    tenant, user = account
    threshold = settings.auth.lockout_threshold
    for attempt in range(threshold):
        wrong = await login(client, tenant, user, password=f"wrong-password-{attempt}")
        assert wrong.status_code == 401
    row = await _user_row(db, user.id)
    assert row.locked_until is not None
    assert row.locked_until > datetime.now(UTC)

    locked = await login(client, tenant, user)  # the RIGHT password, while locked
    assert locked.status_code == 401
    assert _without_request_id(locked.json()) == _without_request_id(wrong.json())

    async with db() as session, session.begin():  # the lock expires
        await session.execute(update(User).where(User.id == user.id).values(locked_until=None))
    assert (await login(client, tenant, user)).status_code == 200
    row = await _user_row(db, user.id)
    assert row.failed_login_count == 0
    assert row.last_login_at is not None


async def test_failures_below_the_threshold_are_reset_by_a_success(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    for _ in range(2):
        assert (await login(client, tenant, user, password="not-it-at-all")).status_code == 401
    assert (await _user_row(db, user.id)).failed_login_count == 2
    assert (await login(client, tenant, user)).status_code == 200
    assert (await _user_row(db, user.id)).failed_login_count == 0


async def test_per_ip_throttle_answers_429_problem_with_retry_after(
    settings: Settings, make_user: MakeUser, account: Account, db: Sessions
) -> None:
    tenant, user = account
    victim = await make_user(tenant)
    app = create_app(settings_with(settings, "auth", login_attempts_per_ip_per_minute=3))
    ip, other_ip = random_ip(), random_ip()
    async with started(app) as running:
        async with client_of(running, peer=(ip, 1234)) as c:
            # successes are not counted (many users behind one NAT address)
            assert [(await login(c, tenant, user)).status_code for _ in range(4)] == [200] * 4
            failures = [
                (await login(c, tenant, victim, password=f"guess-number-{n}")).status_code
                for n in range(3)
            ]
            assert failures == [401, 401, 401]
            throttled = await login(c, tenant, user)  # even the right password
            refresh = await c.post("/api/auth/token/refresh", json={"refresh_token": "ehrr_x"})
        async with client_of(running, peer=(other_ip, 1234)) as c:
            assert (await login(c, tenant, user)).status_code == 200
    assert throttled.status_code == 429
    assert refresh.status_code == 429
    assert throttled.headers["content-type"] == PROBLEM
    body = throttled.json()
    assert body["code"] == "too_many_requests"
    assert 0 < body["retry_after"] <= 60
    assert throttled.headers["retry-after"] == str(body["retry_after"])
    # the throttled attempt never reached the account: the victim's counter is unchanged
    assert (await _user_row(db, victim.id)).failed_login_count == 3


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    first = (await login(client, tenant, user)).json()

    second = await client.post(
        "/api/auth/token/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["access_token"] != first["access_token"]
    me = await client.get("/api/auth/me", headers=bearer(second_body["access_token"]))
    assert me.status_code == 200

    reused = await client.post(
        "/api/auth/token/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    assert reused.headers["content-type"] == PROBLEM
    # the family is gone: the newest refresh token and the access tokens of the family too
    newest = await client.post(
        "/api/auth/token/refresh", json={"refresh_token": second_body["refresh_token"]}
    )
    assert newest.status_code == 401
    for access in (first["access_token"], second_body["access_token"]):
        assert (await client.get("/api/auth/me", headers=bearer(access))).status_code == 401

    async with db() as session:
        rows = (
            await session.scalars(select(RefreshSession).where(RefreshSession.user_id == user.id))
        ).all()
    assert len(rows) == 2
    assert all(r.revoked_at is not None for r in rows)
    assert {r.revoked_reason for r in rows} == {"reuse_detected"}


async def test_logout_revokes_the_access_token_and_the_refresh_family(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    tokens = (await login(client, tenant, user)).json()
    headers = bearer(tokens["access_token"])
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200

    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    after = await client.get("/api/auth/me", headers=headers)
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    refresh = await client.post(
        "/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    async with db() as session:
        revoked = await session.scalar(
            select(func.count()).select_from(RevokedToken).where(RevokedToken.user_id == user.id)
        )
    assert revoked == 2  # the jti and the family marker


async def test_disabled_user_or_tenant_is_refused_at_once(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    """Through the services (a hand edit bumps no change stamp: see ehr.platform.auth.
    principal_cache), with the account cached by earlier requests."""
    tenant, user = account
    headers = bearer(await access_token(client, tenant, user))
    for _ in range(2):
        assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    async with db() as session, session.begin():
        await disable_tenant(session, tenant.slug)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401
    assert (await login(client, tenant, user)).status_code == 401
    async with db() as session, session.begin():
        await enable_tenant(session, tenant.slug)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    async with db() as session, session.begin():
        await disable_user(session, user.id)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b'{"tenant": "x"}', 422),
        (b'{"tenant": "x", "username": "y", "password": "z", "extra": 1}', 422),
        (b"[]", 422),
    ],
)
async def test_bad_login_input_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, account: Account, db: Sessions, content: bytes, status: int
) -> None:
    user = account.user
    response = await client.post(
        "/api/auth/login", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    row = await _user_row(db, user.id)
    assert row.failed_login_count == 0


async def test_oversized_body_is_413_problem(client: httpx.AsyncClient, settings: Settings) -> None:
    big = b'{"password": "' + b"x" * (settings.api.max_body_bytes + 10) + b'"}'
    response = await client.post(
        "/api/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Bearer ehrk_000000000000_" + "A" * 43,
        "Bearer " + "a" * 9000,
    ],
)
async def test_malformed_credentials_are_401_problems(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/api/auth/me", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "authentication_required"
    assert response.headers["www-authenticate"].startswith('Bearer realm="ehr"')


async def test_no_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="ehr"'
    assert response.headers["content-type"] == PROBLEM


async def test_two_credentials_are_refused(client: httpx.AsyncClient, account: Account) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    response = await client.get(
        "/api/auth/me", headers={**bearer(access), "X-API-Key": "ehrk_000000000000_x"}
    )
    assert response.status_code == 401


async def test_set_password_ends_sessions_and_enforces_the_policy(
    client: httpx.AsyncClient, account: Account, db: Sessions, settings: Settings
) -> None:
    tenant, user = account
    tokens = (await login(client, tenant, user)).json()
    redis = create_redis(settings)
    try:
        async with db() as session, session.begin():
            with pytest.raises(PasswordRejected):
                await set_password(
                    session, user_id=user.id, new_password="password123456", settings=settings
                )
        async with db() as session, session.begin():
            await set_password(
                session,
                user_id=user.id,
                new_password="Another-Long-Passphrase-77",
                settings=settings,
                redis=redis,
            )
    finally:
        await redis.aclose()
    assert (
        await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    refresh = await client.post(
        "/api/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert (await login(client, tenant, user)).status_code == 401  # the old password
    assert (await login(client, tenant, user, "Another-Long-Passphrase-77")).status_code == 200
