"""Vitals: a patient's vital-sign Observations (FHIR vital-signs profile, LOINC, UCUM units):
record, update (If-Match) and entered-in-error; impossible values refused; BMI derived (ADR 0019).

The public surface (other modules and the entrypoints import only this):

``router``         the routes under ``/api/patients/{patient_id}/vitals``
``latest_vitals``  ``await latest_vitals(fhir, patient_id) -> list[VitalSignOut]``: the latest
                   valid measurement of each vital sign, latest first (for the chart summary;
                   the caller checks access and audits)
``VitalSignOut``   the document of one vital sign
"""

from ehr.modules.vitals.router import router
from ehr.modules.vitals.schemas import VitalSignOut
from ehr.modules.vitals.service import latest_vitals

__all__ = ["VitalSignOut", "latest_vitals", "router"]
