"""Problems: a patient's problem list (Condition, category problem-list-item): create, update
(If-Match) and entered-in-error; ICD-10-CM / SNOMED CT codes (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``   the routes under ``/api/patients/{patient_id}/problems``

The chart-write refusals, the SNOMED CT check and the recorder are ``clinical_record``'s.
"""

from ehr.modules.problems.router import router

__all__ = ["router"]
