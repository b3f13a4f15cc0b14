"""Allergies: a patient's AllergyIntolerances (RxNorm / SNOMED CT substances, criticality,
reactions): create, update (If-Match) and entered-in-error (ADR 0018). What they write is what
the medication-safety engine reads.

The public surface (other modules and the entrypoints import only this):

``router``   the routes under ``/api/patients/{patient_id}/allergies``
"""

from ehr.modules.allergies.router import router

__all__ = ["router"]
