"""Clinical notes: DocumentReferences from templates, draft → signed → amended, addenda and
co-signature; a signed note is never altered (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``   the routes under ``/api/patients/{patient_id}/notes``
"""

from ehr.modules.notes.router import router

__all__ = ["router"]
