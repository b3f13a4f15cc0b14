"""TOTP verification (window, replay) and recovery codes."""

from __future__ import annotations

import base64

import pyotp

from ehr.core.config import Settings
from ehr.platform.auth.mfa import (
    TOTP_PERIOD_SECONDS,
    generate_recovery_codes,
    hash_recovery_code,
    matching_totp_step,
    normalise_recovery_code,
    provisioning_uri,
    qr_png,
)

SECRET = pyotp.random_base32(length=32)
NOW = 1_800_000_000.0
STEP = int(NOW // TOTP_PERIOD_SECONDS)


def code_at(step: int) -> str:
    return pyotp.TOTP(SECRET).at(step * TOTP_PERIOD_SECONDS)


def test_current_code_matches_its_step() -> None:
    assert matching_totp_step(SECRET, code_at(STEP), last_used_step=None, at=NOW) == STEP


def test_one_step_of_drift_either_side_is_accepted() -> None:
    assert matching_totp_step(SECRET, code_at(STEP - 1), last_used_step=None, at=NOW) == STEP - 1
    assert matching_totp_step(SECRET, code_at(STEP + 1), last_used_step=None, at=NOW) == STEP + 1
    assert matching_totp_step(SECRET, code_at(STEP - 2), last_used_step=None, at=NOW) is None


def test_a_used_code_cannot_be_replayed_inside_its_window() -> None:
    code = code_at(STEP)
    assert matching_totp_step(SECRET, code, last_used_step=STEP, at=NOW) is None
    assert matching_totp_step(SECRET, code, last_used_step=STEP, at=NOW + 20) is None
    # nor an OLDER code once a newer one was used
    assert matching_totp_step(SECRET, code_at(STEP - 1), last_used_step=STEP, at=NOW) is None
    # the next step's code is fine
    assert matching_totp_step(SECRET, code_at(STEP + 1), last_used_step=STEP, at=NOW) == STEP + 1


def test_malformed_codes_never_match() -> None:
    for code in ("", "12345", "1234567", "abcdef", "12 34 5"):
        assert matching_totp_step(SECRET, code, last_used_step=None, at=NOW) is None


def test_provisioning_uri_and_qr_png() -> None:
    uri = provisioning_uri(SECRET, account="alice", issuer="EHR Platform")
    assert uri.startswith("otpauth://totp/")
    assert f"secret={SECRET}" in uri
    png = qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert base64.b64decode(base64.b64encode(png)) == png


def test_recovery_codes_are_random_and_normalised_before_hashing() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    settings = Settings()
    code = codes[0]
    assert hash_recovery_code(code, settings) == hash_recovery_code(
        code.lower().replace("-", " "), settings
    )
    assert normalise_recovery_code("ab0o-il1") == "AB00111"
    assert hash_recovery_code(codes[0], settings) != hash_recovery_code(codes[1], settings)
    assert code not in hash_recovery_code(code, settings)
