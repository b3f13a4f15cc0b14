"""Accounts and the login flows: users, passwords, lockout, MFA login, refresh, logout.

Lockout (per account, state on the ``users`` row): every failed password or second-factor check
increments ``failed_login_count`` atomically; reaching ``settings.auth.lockout_threshold`` sets
``locked_until`` = now + ``lockout_seconds`` and resets the counter; a success resets it. A
locked account answers EXACTLY like a wrong password (401, same body) — the lock is not
revealed, and a correct password does not open it before it expires. The password is still
verified while locked, and unknown tenants/users are verified against a dummy hash, so all
failures take about one argon2 verification.

Failure bookkeeping (counter, lock, a reused refresh family's revocation, a spent MFA challenge)
must survive the error response, so those paths COMMIT before raising; every other path only
flushes and the request commits.

Accounts change only here (:func:`disable_user`, :func:`enable_user`, :func:`set_user_roles`; a
tenant in :mod:`ehr.platform.tenancy.service`): each marks the account changed
(:func:`~ehr.platform.auth.principal_cache.principal_changed`), so authentication's caches drop
it when the transaction commits — at once in this process, and in the others once the caller
has run ``await publish_principal_changes(redis)`` after the commit (else on this process's next
authenticated request). An UPDATE by hand bumps nothing: see ``ehr auth flush-principal-cache``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from redis.asyncio import Redis
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings, get_settings
from ehr.core.db.models import MfaSecret, RecoveryCode, RevokedToken, RoleGrant, Tenant, User
from ehr.core.errors import ConflictError, NotFoundError, RequestValidationFailed
from ehr.platform.auth import mfa
from ehr.platform.auth.passwords import (
    check_password_policy,
    hash_password,
    verify_against_dummy,
    verify_password,
)
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.principal_cache import principal_changed
from ehr.platform.auth.revocation import revoke_access_token, revoke_family_access
from ehr.platform.auth.sessions import (
    IssuedRefreshToken,
    create_refresh_session,
    lock_refresh_session,
    revoke_family,
    revoke_user_sessions,
    rotate_refresh_session,
)
from ehr.platform.auth.signing_keys import current_signing_key
from ehr.platform.auth.tokens import (
    AccessClaims,
    BearerChallenge,
    IssuedAccessToken,
    encode_access_token,
    encode_mfa_challenge,
    verify_mfa_challenge,
)

__all__ = [
    "INVALID_CREDENTIALS",
    "Account",
    "CheckedCredentials",
    "LoginResult",
    "TokenPair",
    "check_credentials",
    "check_second_factor",
    "complete_mfa_login",
    "create_user",
    "disable_user",
    "enable_user",
    "load_account",
    "login",
    "logout",
    "refresh_tokens",
    "reset_mfa",
    "set_password",
    "set_user_roles",
]

logger = structlog.get_logger(__name__)

INVALID_CREDENTIALS: Final = "Invalid tenant, username or password"
_INVALID_SECOND_FACTOR: Final = "Invalid MFA challenge or code"
_USERNAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._@-]{0,127}")


@dataclass(frozen=True, slots=True)
class Account:
    user: User
    tenant: Tenant
    roles: frozenset[str]

    @property
    def active(self) -> bool:
        return self.user.status == "active" and self.tenant.status == "active"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedAccessToken
    refresh: IssuedRefreshToken


@dataclass(frozen=True, slots=True)
class LoginResult:
    """Either tokens, or (MFA enabled) a one-use challenge for ``POST /api/auth/login/mfa``."""

    tokens: TokenPair | None = None
    mfa_token: str | None = None


def _invalid_credentials() -> BearerChallenge:
    return BearerChallenge(INVALID_CREDENTIALS, error=None)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _checked_roles(roles: Sequence[str]) -> list[str]:
    role_names = sorted(set(roles))
    unknown = sorted(set(role_names) - {r.value for r in Role})
    if unknown:
        raise RequestValidationFailed(f"Unknown role(s): {', '.join(unknown)}")
    if not role_names:
        raise RequestValidationFailed("A user needs at least one role")
    return role_names


# --- accounts ----------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    username: str,
    password: str,
    roles: Sequence[str],
    display_name: str | None = None,
    patient_id: str | None = None,
    granted_by: str | None = None,
    settings: Settings | None = None,
) -> User:
    """Create a user with its role grants (password policy enforced; username lower-cased).

    Raises 422 (bad username, unknown role, password rejected), 404 (no tenant), 409 (taken).
    Flushes; the caller commits.
    """
    settings = settings or get_settings()
    name = normalise_username(username)
    if not _USERNAME_PATTERN.fullmatch(name):
        raise RequestValidationFailed(
            "A username has 1-128 characters: letters, digits, '.', '_', '@', '-'"
        )
    role_names = _checked_roles(roles)
    check_password_policy(password, username=name, settings=settings.auth)
    if await session.get(Tenant, tenant_id) is None:
        raise NotFoundError("No such tenant")
    taken = await session.scalar(
        select(User.id).where(User.tenant_id == tenant_id, func.lower(User.username) == name)
    )
    if taken is not None:
        raise ConflictError("This username is taken in the tenant")
    user = User(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        username=name,
        display_name=display_name,
        password_hash=await hash_password(password),
        patient_id=patient_id,
        status="active",
        mfa_enabled=False,
        failed_login_count=0,
    )
    session.add(user)
    await session.flush()
    session.add_all(RoleGrant(user_id=user.id, role=r, granted_by=granted_by) for r in role_names)
    await session.flush()
    logger.info("auth.user.created", user_id=str(user.id), tenant_id=str(tenant_id))
    return user


async def _set_status(session: AsyncSession, user_id: uuid.UUID, status: str) -> User:
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFoundError("No such user")
    if user.status != status:
        user.status = status
        await session.flush()
        principal_changed(session, user_ids=[user_id])
        event_name = "auth.user.disabled" if status == "disabled" else "auth.user.enabled"
        logger.info(event_name, user_id=str(user_id))
    return user


async def disable_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Disable the user: its tokens are refused from the commit on, logins too (idempotent).

    Flushes; the caller commits, then calls ``publish_principal_changes`` (module doc)."""
    return await _set_status(session, user_id, "disabled")


async def enable_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """Re-enable a disabled user (idempotent). Flushes; the caller commits and publishes."""
    return await _set_status(session, user_id, "active")


async def set_user_roles(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    roles: Sequence[str],
    granted_by: str | None = None,
) -> frozenset[str]:
    """Make ``roles`` the user's grants (422 for an unknown role or none): a removed role stops
    working from the commit on (tokens carry roles, but only those still held count); an added
    one needs a new token. Flushes; the caller commits and publishes (module doc)."""
    wanted = set(_checked_roles(roles))
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFoundError("No such user")
    held = set(
        (await session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == user_id))).all()
    )
    if held == wanted:
        return frozenset(held)
    removed, added = held - wanted, wanted - held
    if removed:
        await session.execute(
            delete(RoleGrant).where(RoleGrant.user_id == user_id, RoleGrant.role.in_(removed))
        )
    session.add_all(RoleGrant(user_id=user_id, role=r, granted_by=granted_by) for r in added)
    await session.flush()
    principal_changed(session, user_ids=[user_id])
    logger.info(
        "auth.user.roles_set", user_id=str(user_id), added=sorted(added), removed=sorted(removed)
    )
    return frozenset(wanted)


async def set_password(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    new_password: str,
    settings: Settings | None = None,
    revoke_sessions: bool = True,
    redis: Redis | None = None,
) -> None:
    """Set a new password (policy enforced), clear any lock, and by default end the user's
    refresh sessions — and, given ``redis``, deny-list their access tokens too. Flushes."""
    settings = settings or get_settings()
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFoundError("No such user")
    check_password_policy(new_password, username=user.username, settings=settings.auth)
    user.password_hash = await hash_password(new_password)
    user.password_changed_at = datetime.now(UTC)
    user.failed_login_count = 0
    user.locked_until = None
    if revoke_sessions:
        families = await revoke_user_sessions(session, user_id, reason="password_changed")
        if redis is not None:
            for family_id in families:
                await revoke_family_access(
                    session,
                    redis,
                    family_id=family_id,
                    user_id=user_id,
                    access_ttl_seconds=settings.auth.access_token_ttl_seconds,
                    reason="password_changed",
                )
    await session.flush()
    logger.info("auth.user.password_set", user_id=str(user_id))


async def reset_mfa(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Remove the user's TOTP secret and recovery codes and turn MFA off. Flushes."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFoundError("No such user")
    await session.execute(delete(MfaSecret).where(MfaSecret.user_id == user_id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    user.mfa_enabled = False
    await session.flush()
    logger.info("auth.user.mfa_reset", user_id=str(user_id))


async def load_account(session: AsyncSession, user_id: uuid.UUID) -> Account | None:
    """The user, its tenant and its current role grants (one round trip)."""
    row = (
        await session.execute(
            select(User, Tenant, func.array_remove(func.array_agg(RoleGrant.role), None))
            .join(Tenant, Tenant.id == User.tenant_id)
            .outerjoin(RoleGrant, RoleGrant.user_id == User.id)
            .where(User.id == user_id)
            .group_by(User.id, Tenant.id)
        )
    ).one_or_none()
    if row is None:
        return None
    user, tenant, roles = row
    return Account(user=user, tenant=tenant, roles=frozenset(roles or ()))


# --- login -------------------------------------------------------------------------------------


async def _record_failure(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> None:
    """Count a failure (atomically), lock at the threshold, and COMMIT."""
    threshold = settings.auth.lockout_threshold
    reached = User.failed_login_count + 1 >= threshold
    lock_until = datetime.now(UTC) + timedelta(seconds=settings.auth.lockout_seconds)
    result = await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            failed_login_count=case((reached, 0), else_=User.failed_login_count + 1),
            locked_until=case((reached, lock_until), else_=User.locked_until),
        )
        .returning(User.locked_until)
        .execution_options(synchronize_session=False)
    )
    locked_until = result.scalar_one_or_none()
    await session.commit()
    if locked_until is not None and locked_until >= lock_until - timedelta(seconds=1):
        logger.info("auth.login.account_locked", user_id=str(user_id))


def _is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > datetime.now(UTC)


async def _issue_tokens(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    *,
    source_ip: str | None,
    user_agent: str | None,
    refresh: IssuedRefreshToken | None = None,
) -> TokenPair:
    if refresh is None:
        refresh = await create_refresh_session(
            session,
            user_id=account.user.id,
            ttl_seconds=settings.auth.refresh_token_ttl_seconds,
            source_ip=source_ip,
            user_agent=user_agent,
        )
    key = await current_signing_key(session, settings)
    access = encode_access_token(
        key,
        settings,
        subject=account.user.id,
        tenant_id=account.tenant.id,
        tenant=account.tenant.slug,
        roles=account.roles,
        session_id=refresh.family_id,
    )
    return TokenPair(access=access, refresh=refresh)


async def _succeed(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    *,
    source_ip: str | None,
    user_agent: str | None,
) -> TokenPair:
    account.user.failed_login_count = 0
    account.user.locked_until = None
    account.user.last_login_at = datetime.now(UTC)
    tokens = await _issue_tokens(
        session, settings, account, source_ip=source_ip, user_agent=user_agent
    )
    logger.info("auth.login.succeeded", user_id=str(account.user.id))
    return tokens


@dataclass(frozen=True, slots=True)
class CheckedCredentials:
    """Step one passed: the account, or (MFA on) the challenge step two needs."""

    account: Account | None = None
    mfa_token: str | None = field(default=None, repr=False)


async def check_credentials(
    session: AsyncSession, settings: Settings, *, tenant: str, username: str, password: str
) -> CheckedCredentials:
    """Tenant + username + password, without issuing anything (the login and the SMART
    authorization page share it). Every failure is the same 401; failures count to the lockout."""
    row = (
        await session.execute(
            select(User, Tenant)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(Tenant.slug == tenant, func.lower(User.username) == normalise_username(username))
        )
    ).one_or_none()
    if row is None:
        await verify_against_dummy(password)
        logger.info("auth.login.failed", reason="unknown_account")
        raise _invalid_credentials()
    user, tenant_row = row
    verification = await verify_password(password, user.password_hash)
    if user.status != "active" or tenant_row.status != "active":
        logger.info("auth.login.failed", reason="inactive", user_id=str(user.id))
        raise _invalid_credentials()
    if _is_locked(user):
        logger.info("auth.login.failed", reason="locked", user_id=str(user.id))
        raise _invalid_credentials()
    if not verification.ok:
        await _record_failure(session, settings, user.id)
        logger.info("auth.login.failed", reason="password", user_id=str(user.id))
        raise _invalid_credentials()
    if verification.new_hash is not None:
        user.password_hash = verification.new_hash
        logger.info("auth.password.rehashed", user_id=str(user.id))
    if user.mfa_enabled:
        key = await current_signing_key(session, settings)
        await session.flush()
        return CheckedCredentials(
            mfa_token=encode_mfa_challenge(key, settings, user_id=user.id, tenant_id=tenant_row.id)
        )
    account = await load_account(session, user.id)
    if account is None:  # pragma: no cover - the row was just read
        raise _invalid_credentials()
    return CheckedCredentials(account=account)


async def login(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant: str,
    username: str,
    password: str,
    source_ip: str | None = None,
    user_agent: str | None = None,
) -> LoginResult:
    """Step one: tenant + username + password. Every failure is the same 401."""
    checked = await check_credentials(
        session, settings, tenant=tenant, username=username, password=password
    )
    if checked.account is None:
        return LoginResult(mfa_token=checked.mfa_token)
    tokens = await _succeed(
        session, settings, checked.account, source_ip=source_ip, user_agent=user_agent
    )
    return LoginResult(tokens=tokens)


async def check_second_factor(
    session: AsyncSession,
    settings: Settings,
    *,
    mfa_token: str,
    code: str | None = None,
    recovery_code: str | None = None,
) -> Account:
    """Step two without issuing anything: the challenge from step one plus a TOTP code or a
    recovery code; the account on success.

    The challenge is spent by the first attempt, right or wrong (a wrong code means logging in
    again): guessing is bounded by password verifications and the lockout.
    """
    if (code is None) == (recovery_code is None):
        raise RequestValidationFailed("Give exactly one of code and recovery_code")
    challenge = await verify_mfa_challenge(session, settings, mfa_token)
    spent = await session.execute(
        insert(RevokedToken)
        .values(
            jti=challenge.jti,
            user_id=challenge.user_id,
            expires_at=challenge.expires_at,
            reason="mfa_challenge_used",
        )
        .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
        .returning(RevokedToken.jti)
    )
    if spent.first() is None:
        logger.info("auth.mfa.failed", reason="challenge_reused", user_id=str(challenge.user_id))
        raise BearerChallenge(_INVALID_SECOND_FACTOR, error=None)
    account = await load_account(session, challenge.user_id)
    if (
        account is None
        or not account.active
        or account.tenant.id != challenge.tenant_id
        or not account.user.mfa_enabled
        or _is_locked(account.user)
    ):
        await session.commit()
        logger.info("auth.mfa.failed", reason="account", user_id=str(challenge.user_id))
        raise BearerChallenge(_INVALID_SECOND_FACTOR, error=None)
    if code is not None:
        ok = await mfa.verify_totp_for_user(session, settings, account.user.id, code)
    else:
        assert recovery_code is not None  # noqa: S101 - checked above; narrows the type
        ok = await mfa.use_recovery_code(session, settings, account.user.id, recovery_code)
    if not ok:
        await _record_failure(session, settings, account.user.id)
        logger.info("auth.mfa.failed", reason="code", user_id=str(account.user.id))
        raise BearerChallenge(_INVALID_SECOND_FACTOR, error=None)
    if recovery_code is not None:
        logger.info("auth.mfa.recovery_code_used", user_id=str(account.user.id))
    return account


async def complete_mfa_login(
    session: AsyncSession,
    settings: Settings,
    *,
    mfa_token: str,
    code: str | None = None,
    recovery_code: str | None = None,
    source_ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """Step two of the login (:func:`check_second_factor`), then the session's tokens."""
    account = await check_second_factor(
        session, settings, mfa_token=mfa_token, code=code, recovery_code=recovery_code
    )
    return await _succeed(session, settings, account, source_ip=source_ip, user_agent=user_agent)


async def refresh_tokens(
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    *,
    refresh_token: str,
    source_ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """Rotate a refresh token; a reused one revokes its whole family (committed) and is 401."""
    outcome = await lock_refresh_session(session, refresh_token)
    row = outcome.row
    if outcome.status == "unknown" or row is None:
        raise BearerChallenge("The refresh token is invalid")
    if outcome.status == "reused":
        await revoke_family(session, row.family_id, reason="reuse_detected")
        await revoke_family_access(
            session,
            redis,
            family_id=row.family_id,
            user_id=row.user_id,
            access_ttl_seconds=settings.auth.access_token_ttl_seconds,
            reason="refresh_reuse",
            strict=False,
        )
        await session.commit()
        logger.warning(
            "auth.refresh.reuse_detected", user_id=str(row.user_id), family_id=str(row.family_id)
        )
        raise BearerChallenge("The refresh token is invalid")
    if outcome.status == "expired":
        raise BearerChallenge("The refresh token has expired: log in again")
    account = await load_account(session, row.user_id)
    if account is None or not account.active:
        await revoke_family(session, row.family_id, reason="account_inactive")
        await session.commit()
        raise BearerChallenge("The refresh token is invalid")
    child = await rotate_refresh_session(session, row, source_ip=source_ip, user_agent=user_agent)
    return await _issue_tokens(
        session, settings, account, source_ip=source_ip, user_agent=user_agent, refresh=child
    )


async def logout(
    session: AsyncSession, redis: Redis, settings: Settings, *, claims: AccessClaims
) -> None:
    """Revoke the presented access token and its refresh family (and so its other tokens)."""
    await revoke_access_token(
        session,
        redis,
        jti=claims.jti,
        user_id=claims.subject,
        expires_at=claims.expires_at,
        reason="logout",
    )
    if claims.session_id is not None:
        await revoke_family(session, claims.session_id, reason="logout")
        await revoke_family_access(
            session,
            redis,
            family_id=claims.session_id,
            user_id=claims.subject,
            access_ttl_seconds=settings.auth.access_token_ttl_seconds,
            reason="logout",
        )
    await session.flush()
    logger.info("auth.logout", user_id=str(claims.subject))
