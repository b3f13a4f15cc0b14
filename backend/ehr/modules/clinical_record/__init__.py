"""Clinical record: what every patient-record module (problems, allergies, encounters, vitals,
notes, the chart views) shares — one rule, one place, one stable ``code`` (ADR 0018).

The public surface (other modules import only this):

``open_patient``, ``PatientGate``   the patient gate: the patient read through the patients
                                    module (tenant, portal compartment: 404), the break-glass
                                    rule on it and on each entry shown, the PHI audit note
``entry_visibility``                which entries of an open chart the caller sees (restricted
                                    ones only with break-glass)
``UnknownCodeSystem``, ``InvalidCode``, ``PatientMismatch``, ``DateInFuture``,
``IfMatchRequired``                 the chart-write refusals (422 / 428, stable codes)
``check_body_patient``              422 ``patient_mismatch`` when the body names another patient
``check_not_in_future``             422 ``date_in_future`` for a clinical date after today
``require_if_match``                428 when an update has no ``If-Match``
``check_version``                   412 when ``If-Match`` is not the version just read
``SNOMED_SYSTEM``, ``is_snomed_ct_concept``  the SNOMED CT concept id check (shape, partition,
                                    Verhoeff digit)
``USER_SYSTEM``, ``recorder_reference``, ``Recorder``, ``recorder_of``, ``user_of``  the
                                    recorder: the principal as a FHIR Reference, and read back
                                    (``user_of``: any user Reference — an author, a signer)
``ENTERED_IN_ERROR``, ``is_entered_in_error``, ``mark_verification_entered_in_error``  the
                                    "delete" of clinical data: a status, never a hard delete
``page_of``, ``newest_first``, ``newest_written_first``, ``SortKey``, ``ListCursors``,
``ListCursorsDep``, ``LimitParam``,
``CursorParam``, ``InvalidListCursor``, ``DEFAULT_PAGE_SIZE``  paging a patient's list by a
                                    keyset cursor (opaque; sealed to the tenant, the patient and
                                    the list's filters; 422 ``invalid_list_cursor`` otherwise)
"""

from ehr.modules.clinical_record.codes import SNOMED_SYSTEM, is_snomed_ct_concept
from ehr.modules.clinical_record.entered_in_error import (
    ENTERED_IN_ERROR,
    is_entered_in_error,
    mark_verification_entered_in_error,
)
from ehr.modules.clinical_record.gate import PatientGate, entry_visibility, open_patient
from ehr.modules.clinical_record.paging import (
    DEFAULT_PAGE_SIZE,
    CursorParam,
    InvalidListCursor,
    LimitParam,
    ListCursors,
    ListCursorsDep,
    SortKey,
    newest_first,
    newest_written_first,
    page_of,
)
from ehr.modules.clinical_record.recorder import (
    USER_SYSTEM,
    Recorder,
    recorder_of,
    recorder_reference,
    user_of,
)
from ehr.modules.clinical_record.refusals import (
    DateInFuture,
    IfMatchRequired,
    InvalidCode,
    PatientMismatch,
    UnknownCodeSystem,
    check_body_patient,
    check_not_in_future,
)
from ehr.modules.clinical_record.versions import check_version, require_if_match

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ENTERED_IN_ERROR",
    "SNOMED_SYSTEM",
    "USER_SYSTEM",
    "CursorParam",
    "DateInFuture",
    "IfMatchRequired",
    "InvalidCode",
    "InvalidListCursor",
    "LimitParam",
    "ListCursors",
    "ListCursorsDep",
    "PatientGate",
    "PatientMismatch",
    "Recorder",
    "SortKey",
    "UnknownCodeSystem",
    "check_body_patient",
    "check_not_in_future",
    "check_version",
    "entry_visibility",
    "is_entered_in_error",
    "is_snomed_ct_concept",
    "mark_verification_entered_in_error",
    "newest_first",
    "newest_written_first",
    "open_patient",
    "page_of",
    "recorder_of",
    "recorder_reference",
    "require_if_match",
    "user_of",
]
