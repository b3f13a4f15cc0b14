"""Problems: a patient's problem list (Condition, category problem-list-item): create, update
(If-Match) and entered-in-error; ICD-10-CM / SNOMED CT codes (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``                  the routes under ``/api/patients/{patient_id}/problems``
``is_snomed_ct_concept``    the SNOMED CT concept id check (re-exported from ``clinical_record``)
``UnknownCodeSystem``, ``InvalidCode``, ``PatientMismatch``, ``DateInFuture``,
``IfMatchRequired``         the chart-write refusals, re-exported from ``clinical_record`` (their
                            home now) until the modules that import them from here switch
``recorder_reference``      the principal as a FHIR Reference (re-exported likewise)
"""

from ehr.modules.clinical_record import (
    DateInFuture,
    IfMatchRequired,
    InvalidCode,
    PatientMismatch,
    UnknownCodeSystem,
    is_snomed_ct_concept,
    recorder_reference,
)
from ehr.modules.problems.router import router

__all__ = [
    "DateInFuture",
    "IfMatchRequired",
    "InvalidCode",
    "PatientMismatch",
    "UnknownCodeSystem",
    "is_snomed_ct_concept",
    "recorder_reference",
    "router",
]
