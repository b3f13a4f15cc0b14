"""Password policy (NIST SP 800-63B) and argon2 hashing."""

from __future__ import annotations

import pytest
from passlib.hash import argon2

from ehr.core.config import AuthSettings
from ehr.platform.auth.passwords import (
    PasswordRejected,
    check_password_policy,
    common_passwords,
    hash_password,
    needs_rehash,
    verify_against_dummy,
    verify_password,
)

POLICY = AuthSettings()


def test_the_shipped_list_is_loaded_and_normalised() -> None:
    listed = common_passwords()
    assert len(listed) > 300
    assert "password" in listed
    assert "qwertyuiop123" in listed
    assert all(entry == entry.casefold() for entry in listed)


@pytest.mark.parametrize(
    "password",
    [
        "Tall-Quiet-Harbour-Lamps-42",
        "correct horse battery staple on a hill",
        "ééééé-naïve-kaffee-ü",  # non-ASCII is fine
        "a" * 5 + "b" * 7,
    ],
)
def test_acceptable_passwords(password: str) -> None:
    check_password_policy(password, username="alice", settings=POLICY)


def test_no_composition_rules_all_lowercase_is_fine() -> None:
    check_password_policy("lanterns under the quiet bridge", username="bob", settings=POLICY)


def test_minimum_length_from_settings() -> None:
    with pytest.raises(PasswordRejected, match="at least 12"):
        check_password_policy("Short-pw-9", username="alice", settings=POLICY)
    check_password_policy(
        "Longish-pw", username="alice", settings=AuthSettings(password_min_length=10)
    )


def test_maximum_length_is_at_least_64_and_enforced() -> None:
    check_password_policy("q7-" * 30, username="alice", settings=POLICY)  # 90 characters
    with pytest.raises(PasswordRejected, match="at most 128"):
        check_password_policy("q7-" * 50, username="alice", settings=POLICY)


@pytest.mark.parametrize(
    "password",
    ["password123456", "PASSWORD123456", "Qwertyuiop123", "iloveyou12345", "Dragon123456!!"],
)
def test_common_passwords_are_rejected_case_insensitively(password: str) -> None:
    with pytest.raises(PasswordRejected, match="too common"):
        check_password_policy(password, username="alice", settings=POLICY)


def test_password_containing_the_username_is_rejected() -> None:
    with pytest.raises(PasswordRejected, match="username"):
        check_password_policy("my-name-is-ALICE-smith", username="alice", settings=POLICY)


def test_one_repeated_character_is_rejected() -> None:
    with pytest.raises(PasswordRejected, match="repeated"):
        check_password_policy("zzzzzzzzzzzzzz", username="alice", settings=POLICY)


def test_rejection_is_422_problem_with_its_own_code() -> None:
    error = PasswordRejected("x")
    assert error.status_code == 422
    assert error.code == "password_rejected"


async def test_hash_and_verify() -> None:
    hashed = await hash_password("Tall-Quiet-Harbour-Lamps-42")
    assert hashed.startswith("$argon2id$")
    assert "Tall-Quiet" not in hashed
    ok = await verify_password("Tall-Quiet-Harbour-Lamps-42", hashed)
    assert ok.ok
    assert ok.new_hash is None
    bad = await verify_password("Tall-Quiet-Harbour-Lamps-43", hashed)
    assert not bad.ok
    assert bad.new_hash is None


async def test_unicode_is_normalised_before_hashing() -> None:
    hashed = await hash_password("caf\u00e9-lanterns-bridge")  # precomposed é
    assert (await verify_password("cafe\u0301-lanterns-bridge", hashed)).ok  # e + combining


async def test_outdated_parameters_are_rehashed_on_verify() -> None:
    old = argon2.using(rounds=2, memory_cost=8192, parallelism=1).hash("Tall-Quiet-Harbour")
    assert needs_rehash(old)
    result = await verify_password("Tall-Quiet-Harbour", old)
    assert result.ok
    assert result.new_hash is not None
    assert not needs_rehash(result.new_hash)


async def test_garbage_hash_never_matches_and_dummy_verification_runs() -> None:
    assert not (await verify_password("anything-at-all", "not-a-hash")).ok
    await verify_against_dummy("anything-at-all")
