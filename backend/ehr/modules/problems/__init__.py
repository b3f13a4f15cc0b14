"""Problems: a patient's problem list (Condition, category problem-list-item): create, update
(If-Match) and entered-in-error; ICD-10-CM / SNOMED CT codes (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``                  the routes under ``/api/patients/{patient_id}/problems``
``is_snomed_ct_concept``    the SNOMED CT concept id check (shape, partition, Verhoeff digit)
``UnknownCodeSystem``, ``InvalidCode``, ``PatientMismatch``, ``DateInFuture``,
``IfMatchRequired``         the chart-write refusals (422/428, stable codes) other chart modules
                            raise too, so one rule has one code
``recorder_reference``      the principal as a FHIR Reference (recorder / asserter)
"""

from ehr.modules.problems.codes import InvalidCode, UnknownCodeSystem, is_snomed_ct_concept
from ehr.modules.problems.router import router
from ehr.modules.problems.service import (
    DateInFuture,
    IfMatchRequired,
    PatientMismatch,
    recorder_reference,
)

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
