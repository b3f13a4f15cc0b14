"""A second person witnessing a controlled-substance waste, authenticated in the same request
(ADR 0034): their username, password and — when they use two-factor sign-in — TOTP code.

The witness must be an active user of the caller's tenant, another person than the caller, and
a pharmacist or nurse (a pharmacy technician never witnesses). Their sign-in is checked on a
session of its own: a failure counts toward their lockout (and is committed) without touching
the request's transaction. Nothing is issued: no session, no token.
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.errors import AuthenticationRequired, RequestValidationFailed
from ehr.modules.pharmacy.errors import WitnessInvalidError
from ehr.platform.auth.permissions import Role
from ehr.platform.auth.service import check_credentials, check_second_factor

__all__ = ["WITNESS_ROLES", "authenticate_witness"]

WITNESS_ROLES: Final = frozenset({Role.PHARMACIST.value, Role.NURSE.value})


async def authenticate_witness(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    tenant: str,
    caller_user_id: uuid.UUID | None,
    username: str,
    password: str,
    code: str | None,
) -> str:
    """The witness as ``user:<uuid>``; 422 ``witness_invalid`` for anything else (one message
    for wrong credentials, whatever was wrong)."""
    try:
        async with sessions() as session:
            checked = await check_credentials(
                session, settings, tenant=tenant, username=username, password=password
            )
            account = checked.account
            if account is None:
                if not code or checked.mfa_token is None:
                    raise WitnessInvalidError(
                        "The witness uses two-factor sign-in: give their code",
                        extra={"needs": "code"},
                    )
                account = await check_second_factor(
                    session, settings, mfa_token=checked.mfa_token, code=code
                )
            await session.commit()
    except (AuthenticationRequired, RequestValidationFailed) as refused:
        if isinstance(refused, WitnessInvalidError):
            raise
        raise WitnessInvalidError("The witness's sign-in was not accepted") from None
    if caller_user_id is not None and account.user.id == caller_user_id:
        raise WitnessInvalidError("The witness must be another person than the one wasting")
    if not account.roles & WITNESS_ROLES:
        raise WitnessInvalidError("The witness must be a pharmacist or a nurse")
    return f"user:{account.user.id}"
