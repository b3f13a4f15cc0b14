"""Encounters: list, read, start and discharge a patient's Encounters, only along the status
transitions FHIR R4 allows (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``   the routes under ``/api/patients/{patient_id}/encounters``
"""

from ehr.modules.encounters.router import router

__all__ = ["router"]
