"""The refusals every chart write shares: one rule, one stable ``code`` (ADR 0018).

Problems, allergies, vitals, encounters and notes refuse the same mistakes the same way: a body
naming another patient (422 ``patient_mismatch``), a clinical date after today (422
``date_in_future``), an update without ``If-Match`` (428 ``if_match_required``), a code in a
system the record kind does not take (422 ``unknown_code_system``) or a code its system does not
allow (422 ``invalid_code``). Which systems a kind takes is the kind's own rule (problems:
ICD-10-CM / SNOMED CT; allergies: RxNorm / SNOMED CT); the refusal is shared.
"""

# Error class names say what happened in the domain's words (as in ehr.core.errors).
# ruff: noqa: N818

from __future__ import annotations

import datetime as dt

from ehr.core.errors import AppError, RequestValidationFailed

__all__ = [
    "DateInFuture",
    "IfMatchRequired",
    "InvalidCode",
    "PatientMismatch",
    "UnknownCodeSystem",
    "check_body_patient",
    "check_not_in_future",
]


class UnknownCodeSystem(RequestValidationFailed):
    """The coding names a system this resource is not coded in."""

    code = "unknown_code_system"
    title = "Unknown code system"


class InvalidCode(RequestValidationFailed):
    """The code does not have the shape (or check digit) its system requires."""

    code = "invalid_code"
    title = "Invalid code"


class PatientMismatch(RequestValidationFailed):
    """The body names a patient other than the path's."""

    code = "patient_mismatch"
    title = "The body names another patient"


class DateInFuture(RequestValidationFailed):
    """A clinical date (onset, abatement) after today."""

    code = "date_in_future"
    title = "Date in the future"


class IfMatchRequired(AppError):
    """An update without ``If-Match`` (it could overwrite a change the caller never saw)."""

    status_code = 428
    code = "if_match_required"
    title = "If-Match required"


def check_body_patient(given: str | None, patient_id: str) -> None:
    """:class:`PatientMismatch` when the body names a patient other than the path's."""
    if given is not None and given != patient_id:
        raise PatientMismatch("The body's patient_id is not the patient in the path.")


def check_not_in_future(name: str, value: dt.date | None, *, today: dt.date) -> None:
    """:class:`DateInFuture` when the ``name`` date is after ``today`` (UTC).

    The easternmost time zones are a day ahead of UTC: "today" there is still allowed.
    """
    if value is not None and value > today + dt.timedelta(days=1):
        raise DateInFuture(f"The {name} date is after today.", extra={"field": name})
