"""Password hashing (argon2id via passlib) and the password policy (NIST SP 800-63B 5.1.1).

Policy, from ``settings.auth``: length between ``password_min_length`` (default 12) and
``password_max_length`` (at least 64), counted in Unicode code points after NFKC normalisation;
NO composition rules (no "one digit, one symbol"); refused when found in the shipped
common/breached-password list (``data/common-passwords.txt``; case-insensitive, also with
trailing digits and punctuation stripped), when it contains the username (case-insensitive),
or when it is one character repeated.

Hashing is CPU-heavy (~0.1 s), so the async functions run it in a worker thread. When the argon2
parameters below change, :func:`verify_password` returns a new hash for the caller to store
(rehash on successful login).
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final

from passlib.context import CryptContext

from ehr.core.config import AuthSettings
from ehr.core.errors import RequestValidationFailed

__all__ = [
    "PasswordRejected",
    "PasswordVerification",
    "check_password_policy",
    "common_passwords",
    "hash_password",
    "hash_password_sync",
    "needs_rehash",
    "normalise_password",
    "verify_against_dummy",
    "verify_password",
]

# argon2id; OWASP's minimum is m=19 MiB, t=2, p=1 — these are above it. Changing them makes
# every stored hash "deprecated": it is replaced at the user's next successful login.
ARGON2_MEMORY_KIB: Final = 65536
ARGON2_TIME_COST: Final = 3
ARGON2_PARALLELISM: Final = 4

_CONTEXT: Final = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=ARGON2_MEMORY_KIB,
    argon2__rounds=ARGON2_TIME_COST,
    argon2__parallelism=ARGON2_PARALLELISM,
)

_COMMON_PASSWORDS_FILE: Final = "common-passwords.txt"
_STRIP_SUFFIX: Final = "0123456789!@#$%^&*()-_=+.,;:?~ "


class PasswordRejected(RequestValidationFailed):
    """The new password does not meet the policy (``detail`` says which rule; never the value)."""

    code = "password_rejected"
    title = "Password rejected by the password policy"


@dataclass(frozen=True, slots=True)
class PasswordVerification:
    ok: bool
    # A fresh hash when the stored one used outdated parameters (store it), else None.
    new_hash: str | None = None


def normalise_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks for Unicode passwords (hashing and policy both use it)."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased and NFKC-normalised."""
    text = (
        resources.files("ehr.platform.auth")
        .joinpath("data", _COMMON_PASSWORDS_FILE)
        .read_text("utf-8")
    )
    entries = (line.strip() for line in text.splitlines())
    return frozenset(
        normalise_password(entry).casefold()
        for entry in entries
        if entry and not entry.startswith("#")
    )


def check_password_policy(password: str, *, username: str, settings: AuthSettings) -> None:
    """Raise :class:`PasswordRejected` (422) unless ``password`` meets the policy."""
    normalised = normalise_password(password)
    if len(normalised) < settings.password_min_length:
        raise PasswordRejected(
            f"The password must have at least {settings.password_min_length} characters"
        )
    if len(normalised) > settings.password_max_length:
        raise PasswordRejected(
            f"The password must have at most {settings.password_max_length} characters"
        )
    folded = normalised.casefold()
    listed = common_passwords()
    if folded in listed or folded.rstrip(_STRIP_SUFFIX) in listed:
        raise PasswordRejected("The password is too common (found in a breached-password list)")
    name = normalise_password(username).casefold().strip()
    if name and name in folded:
        raise PasswordRejected("The password must not contain the username")
    if len(set(folded)) == 1:
        raise PasswordRejected("The password must not be one repeated character")


def hash_password_sync(password: str) -> str:
    return str(_CONTEXT.hash(normalise_password(password)))


async def hash_password(password: str) -> str:
    """argon2id hash of the NFKC-normalised password (in a worker thread)."""
    return await asyncio.to_thread(hash_password_sync, password)


def needs_rehash(password_hash: str) -> bool:
    return bool(_CONTEXT.needs_update(password_hash))


def _verify_sync(password: str, password_hash: str) -> PasswordVerification:
    try:
        ok, new_hash = _CONTEXT.verify_and_update(normalise_password(password), password_hash)
    except ValueError:  # not a hash passlib recognises: never matches
        return PasswordVerification(ok=False)
    return PasswordVerification(ok=bool(ok), new_hash=new_hash if ok else None)


async def verify_password(password: str, password_hash: str) -> PasswordVerification:
    """Check ``password`` against ``password_hash`` (constant-time inside argon2)."""
    return await asyncio.to_thread(_verify_sync, password, password_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password_sync("dummy password for timing equalisation only")


async def verify_against_dummy(password: str) -> None:
    """Spend the time a real verification takes (unknown tenant/user): no timing oracle."""
    await asyncio.to_thread(_verify_sync, password, _dummy_hash())
