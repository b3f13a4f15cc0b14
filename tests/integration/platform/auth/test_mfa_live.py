"""TOTP MFA end to end: enrol, confirm, login with a code, replay refused, recovery codes."""

from __future__ import annotations

import base64
import time

import httpx
import pyotp
import pytest
from sqlalchemy import select
from support.auth_live import (
    PASSWORD,
    Account,
    access_token,
    bearer,
    login,
)
from support.database import Sessions

from ehr.core.db.models import MfaSecret, RecoveryCode, Tenant, User

pytestmark = pytest.mark.integration


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


async def _enrol(client: httpx.AsyncClient, access: str) -> tuple[str, list[str]]:
    enrol = await client.post("/api/auth/mfa/enroll", headers=bearer(access))
    assert enrol.status_code == 200, enrol.text
    body = enrol.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert base64.b64decode(body["qr_png_base64"]).startswith(b"\x89PNG")
    secret = body["secret"]
    png = await client.get("/api/auth/mfa/qr.png", headers=bearer(access))
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content == base64.b64decode(body["qr_png_base64"])
    confirm = await client.post(
        "/api/auth/mfa/confirm", headers=bearer(access), json={"code": _code(secret)}
    )
    assert confirm.status_code == 200, confirm.text
    codes = confirm.json()["recovery_codes"]
    assert len(codes) == 10
    return secret, codes


async def _challenge(client: httpx.AsyncClient, tenant: Tenant, user: User) -> str:
    response = await login(client, tenant, user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"mfa_required": True, "mfa_token": body["mfa_token"]}
    return str(body["mfa_token"])


async def test_mfa_login_end_to_end_with_replay_and_recovery_codes(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    secret, recovery_codes = await _enrol(client, access)

    async with db() as session:
        row = await session.get(MfaSecret, user.id)
        assert row is not None
        assert secret.encode() not in row.secret_encrypted  # encrypted at rest
        hashes = (
            await session.scalars(
                select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)
            )
        ).all()
        assert not set(hashes) & set(recovery_codes)  # only hashes stored

    # A password alone no longer logs in: an MFA challenge instead of tokens.
    challenge = await _challenge(client, tenant, user)
    # The confirmation code's step is used: the next step's code (within the window) works.
    code = _code(secret, steps_ahead=1)
    tokens = await client.post("/api/auth/login/mfa", json={"mfa_token": challenge, "code": code})
    assert tokens.status_code == 200, tokens.text
    me = await client.get("/api/auth/me", headers=bearer(tokens.json()["access_token"]))
    assert me.json()["mfa_enabled"] is True

    # The same challenge cannot be used twice.
    again = await client.post("/api/auth/login/mfa", json={"mfa_token": challenge, "code": code})
    assert again.status_code == 401

    # The same code with a fresh challenge: replay inside its window is refused.
    replay = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": await _challenge(client, tenant, user), "code": code},
    )
    assert replay.status_code == 401
    assert replay.headers["content-type"] == "application/problem+json"

    # A recovery code works once.
    recovery = recovery_codes[0]
    first = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": await _challenge(client, tenant, user), "recovery_code": recovery},
    )
    assert first.status_code == 200, first.text
    second = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": await _challenge(client, tenant, user), "recovery_code": recovery},
    )
    assert second.status_code == 401
    # ... written in any case and separators (normalised), another one still works
    other = recovery_codes[1].lower().replace("-", " ")
    third = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": await _challenge(client, tenant, user), "recovery_code": other},
    )
    assert third.status_code == 200, third.text


async def test_wrong_codes_count_towards_lockout_and_bad_input_is_refused(
    client: httpx.AsyncClient, account: Account, db: Sessions
) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    await _enrol(client, access)

    wrong = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": await _challenge(client, tenant, user), "code": "000000"},
    )
    assert wrong.status_code == 401
    async with db() as session:
        row = await session.get(User, user.id)
        assert row is not None
        assert row.failed_login_count == 1

    both = await client.post(
        "/api/auth/login/mfa",
        json={"mfa_token": "x", "code": "123456", "recovery_code": "ABCDE-FGHJK"},
    )
    assert both.status_code == 422
    forged = await client.post("/api/auth/login/mfa", json={"mfa_token": access, "code": "123456"})
    assert forged.status_code == 401  # an access token is not an MFA challenge


async def test_confirm_with_a_wrong_code_and_enrol_twice(
    client: httpx.AsyncClient, account: Account
) -> None:
    tenant, user = account
    access = await access_token(client, tenant, user)
    confirm_early = await client.post(
        "/api/auth/mfa/confirm", headers=bearer(access), json={"code": "123456"}
    )
    assert confirm_early.status_code == 409  # nothing pending
    enrol = await client.post("/api/auth/mfa/enroll", headers=bearer(access))
    assert enrol.status_code == 200
    secret = enrol.json()["secret"]
    wrong = await client.post(
        "/api/auth/mfa/confirm",
        headers=bearer(access),
        json={"code": "000000" if _code(secret) != "000000" else "111111"},
    )
    assert wrong.status_code == 400
    ok = await client.post(
        "/api/auth/mfa/confirm", headers=bearer(access), json={"code": _code(secret)}
    )
    assert ok.status_code == 200
    assert (await client.post("/api/auth/mfa/enroll", headers=bearer(access))).status_code == 409
    # nothing pending any more: no QR code
    assert (await client.get("/api/auth/mfa/qr.png", headers=bearer(access))).status_code == 404
    # login still works only with the second factor
    assert "mfa_token" in (await login(client, tenant, user, PASSWORD)).json()
