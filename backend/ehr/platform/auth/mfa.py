"""TOTP multi-factor authentication (RFC 6238 via pyotp) and one-time recovery codes.

* Enrolment: a random 160-bit secret, stored Fernet-encrypted (:mod:`ehr.platform.auth.crypto`) in
  ``mfa_secrets``, unconfirmed; the user scans the otpauth URI (QR PNG) and confirms with a code.
  Confirmation enables MFA and issues :data:`RECOVERY_CODE_COUNT` recovery codes.
* Verification accepts the current 30-second step and one step either side (clock drift), and
  only a step greater than ``last_used_step``: a code cannot be replayed inside its window.
  The secret row is locked (``SELECT ... FOR UPDATE``) so two concurrent uses of one code
  cannot both pass.
* Recovery codes: 10 random characters of Crockford base32 (50 bits) shown once; stored as
  HMAC-SHA256 keyed with ``settings.security.secret_key`` (a pepper). A slow hash adds little for
  random 50-bit codes, and the keyed hash lets a code be found and spent in one atomic UPDATE.
"""

from __future__ import annotations

import base64
import hmac
import io
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import MfaSecret, RecoveryCode, User
from ehr.core.errors import BadRequestError, ConflictError, NotFoundError
from ehr.platform.auth.crypto import decrypt, encrypt

__all__ = [
    "RECOVERY_CODE_COUNT",
    "TOTP_PERIOD_SECONDS",
    "MfaEnrolment",
    "confirm_enrolment",
    "generate_recovery_codes",
    "hash_recovery_code",
    "matching_totp_step",
    "normalise_recovery_code",
    "pending_enrolment_qr",
    "provisioning_uri",
    "qr_png",
    "start_enrolment",
    "use_recovery_code",
    "verify_totp_for_user",
]

TOTP_PERIOD_SECONDS: Final = 30
TOTP_DIGITS: Final = 6
# Steps accepted either side of the current one (clock drift between phone and server).
TOTP_VALID_WINDOW: Final = 1
RECOVERY_CODE_COUNT: Final = 10
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True, slots=True)
class MfaEnrolment:
    secret: str
    otpauth_uri: str
    qr_png: bytes

    @property
    def qr_png_base64(self) -> str:
        return base64.b64encode(self.qr_png).decode("ascii")


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps import."""
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS)
    return str(totp.provisioning_uri(name=account, issuer_name=issuer))


def qr_png(uri: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=5, border=4)
    return buffer.getvalue()


def matching_totp_step(
    secret: str, code: str, *, last_used_step: int | None, at: float | None = None
) -> int | None:
    """The time step ``code`` is valid for (within the window), if newer than ``last_used_step``.

    ``None`` when the code is wrong, outside the window, or already used (replay).
    """
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    now = time.time() if at is None else at
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS)
    current = int(now // TOTP_PERIOD_SECONDS)
    matched: int | None = None
    for step in range(current - TOTP_VALID_WINDOW, current + TOTP_VALID_WINDOW + 1):
        # Compare every candidate (no early exit on a match).
        if hmac.compare_digest(str(totp.generate_otp(step)), code):
            matched = step
    if matched is None or (last_used_step is not None and matched <= last_used_step):
        return None
    return matched


def generate_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """``XXXXX-XXXXX`` codes (Crockford base32, 50 random bits each)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_CROCKFORD) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    """Upper case, no separators; Crockford look-alikes (O→0, I/L→1) folded."""
    cleaned = code.strip().upper().replace("-", "").replace(" ", "")
    return cleaned.replace("O", "0").replace("I", "1").replace("L", "1")


def hash_recovery_code(code: str, settings: Settings) -> str:
    pepper = settings.security.secret_key.get_secret_value().encode("utf-8")
    digest = hmac.new(pepper, normalise_recovery_code(code).encode("ascii", "replace"), "sha256")
    return digest.hexdigest()


# --- database flows (flush only; the request commits) ------------------------------------------


async def start_enrolment(session: AsyncSession, settings: Settings, user: User) -> MfaEnrolment:
    """A new, unconfirmed secret for ``user`` (replacing an earlier unconfirmed one).

    Refused (409) while MFA is enabled: an administrator resets it first.
    """
    if user.mfa_enabled:
        raise ConflictError("MFA is already enabled for this account")
    secret = pyotp.random_base32(length=32)
    await session.execute(delete(MfaSecret).where(MfaSecret.user_id == user.id))
    session.add(MfaSecret(user_id=user.id, secret_encrypted=encrypt(settings, secret.encode())))
    await session.flush()
    uri = provisioning_uri(secret, account=user.username, issuer=settings.auth.mfa_issuer_name)
    return MfaEnrolment(secret=secret, otpauth_uri=uri, qr_png=qr_png(uri))


async def pending_enrolment_qr(session: AsyncSession, settings: Settings, user: User) -> bytes:
    """The QR code PNG of the user's pending (unconfirmed) enrolment; 404 when there is none."""
    secret_row = await session.get(MfaSecret, user.id)
    if secret_row is None or secret_row.confirmed_at is not None:
        raise NotFoundError("No MFA enrolment is pending")
    secret = decrypt(settings, secret_row.secret_encrypted).decode()
    return qr_png(
        provisioning_uri(secret, account=user.username, issuer=settings.auth.mfa_issuer_name)
    )


async def _locked_secret(session: AsyncSession, user_id: uuid.UUID) -> MfaSecret | None:
    result = await session.scalars(
        select(MfaSecret).where(MfaSecret.user_id == user_id).with_for_update()
    )
    return result.one_or_none()


async def confirm_enrolment(
    session: AsyncSession, settings: Settings, user: User, code: str
) -> list[str]:
    """Check ``code`` against the pending secret, enable MFA, return fresh recovery codes."""
    if user.mfa_enabled:
        raise ConflictError("MFA is already enabled for this account")
    secret_row = await _locked_secret(session, user.id)
    if secret_row is None:
        raise ConflictError("No MFA enrolment is pending: enrol first")
    secret = decrypt(settings, secret_row.secret_encrypted).decode()
    step = matching_totp_step(secret, code, last_used_step=secret_row.last_used_step)
    if step is None:
        raise BadRequestError("The code is not valid")
    now = datetime.now(UTC)
    secret_row.last_used_step = step
    secret_row.confirmed_at = now
    user.mfa_enabled = True
    codes = generate_recovery_codes()
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(c, settings)) for c in codes
    )
    await session.flush()
    return codes


async def verify_totp_for_user(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str
) -> bool:
    """True (and the step recorded as used) when ``code`` is a fresh valid TOTP code."""
    secret_row = await _locked_secret(session, user_id)
    if secret_row is None or secret_row.confirmed_at is None:
        return False
    secret = decrypt(settings, secret_row.secret_encrypted).decode()
    step = matching_totp_step(secret, code, last_used_step=secret_row.last_used_step)
    if step is None:
        return False
    secret_row.last_used_step = step
    await session.flush()
    return True


async def use_recovery_code(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str
) -> bool:
    """Spend a recovery code (atomically: a code works once, even under concurrency)."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == hash_recovery_code(code, settings),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
        .returning(RecoveryCode.id)
    )
    return result.first() is not None
