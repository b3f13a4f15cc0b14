"""Purpose of use, the trail and the error headers (no database)."""

from __future__ import annotations

import pytest

from ehr.core.errors import (
    AuditUnavailable,
    AuthenticationRequired,
    DependencyUnavailable,
    RequestValidationFailed,
    TooManyRequests,
)
from ehr.platform.audit.recorder import parse_purpose_of_use
from ehr.platform.audit.trail import AuditTrail


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "TREAT"),
        ("", "TREAT"),
        ("TREAT", "TREAT"),
        ("etreat", "ETREAT"),
        (" HPAYMT ", "HPAYMT"),
        ("HOPERAT", "HOPERAT"),
        ("PATRQT", "PATRQT"),
    ],
)
def test_purpose_of_use_codes(header: str | None, expected: str) -> None:
    assert parse_purpose_of_use(header) == expected


@pytest.mark.parametrize("header", ["MARKETING", "TREAT,ETREAT", "x" * 200, "TRE AT"])
def test_unknown_purpose_of_use_is_refused(header: str) -> None:
    with pytest.raises(RequestValidationFailed):
        parse_purpose_of_use(header)


def test_trail_notes_and_break_glass() -> None:
    trail = AuditTrail()
    trail.access("patient:read", resource_type="Patient", resource_id="1", patient_id="1")
    assert [note.action for note in trail.notes] == ["patient:read"]
    assert (trail.purpose_of_use, trail.break_glass) == ("TREAT", False)
    trail.assert_break_glass("unconscious patient in ED")
    assert (trail.purpose_of_use, trail.break_glass) == ("ETREAT", True)
    assert trail.break_glass_reason == "unconscious patient in ED"


def test_audit_unavailable_is_a_503_dependency_error() -> None:
    error = AuditUnavailable()
    assert isinstance(error, DependencyUnavailable)
    assert (error.status_code, error.code) == (503, "audit_unavailable")


def test_error_headers() -> None:
    assert AuthenticationRequired().headers["WWW-Authenticate"].startswith("Bearer")
    assert TooManyRequests(retry_after=30).headers == {"Retry-After": "30"}
    assert TooManyRequests(retry_after=30).extra == {"retry_after": 30}
    assert TooManyRequests(extra={"retry_after": 7}).headers == {"Retry-After": "7"}
    assert TooManyRequests().headers == {}
    assert AuditUnavailable(headers={"Retry-After": "5"}).headers == {"Retry-After": "5"}
