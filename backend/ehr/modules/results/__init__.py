"""Results: laboratory reports (DiagnosticReport + Observations, LOINC, UCUM) linked to their
orders, interpretation flags, critical values with acknowledgement Tasks, trends (ADR 0022).

The public surface (other modules and the entrypoints import only this):

``router``                    ``/api/patients/{patient_id}/results`` and ``.../trends/{loinc}``
``critical_results_router``   ``/api/critical-results`` (the tenant's worklist)
``result_policy_router``      ``/api/result-policy`` (the tenant's critical values and delays)
``is_loinc_code``             the LOINC shape and check-digit test
``review_observations``       the tenant's critical-value rules on FHIR Observations from outside
                              the API (HL7 v2 ORU); ``acknowledgement_for`` their worklist Task
"""

from ehr.modules.results.codes import is_loinc_code
from ehr.modules.results.review import ObservationReview, acknowledgement_for, review_observations
from ehr.modules.results.router import router
from ehr.modules.results.tenant_router import critical_results_router, result_policy_router

__all__ = [
    "ObservationReview",
    "acknowledgement_for",
    "critical_results_router",
    "is_loinc_code",
    "result_policy_router",
    "review_observations",
    "router",
]
