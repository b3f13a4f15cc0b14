"""Vitals: a patient's vital-sign Observations (FHIR vital-signs profile, LOINC, UCUM units):
record, update (If-Match) and entered-in-error; impossible values refused; BMI derived (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``   the routes under ``/api/patients/{patient_id}/vitals``
"""

from ehr.modules.vitals.router import router

__all__ = ["router"]
