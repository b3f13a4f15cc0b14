"""Clinical notes: DocumentReferences from templates (shipped and per tenant), draft → signed →
amended, addenda and co-signature, each signature act with its Provenance; a signed note is never
altered (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``         the routes under ``/api/patients/{patient_id}/notes``
``admin_router``   ``/api/note-templates``: a tenant's own note templates (tenant:admin)
"""

from ehr.modules.notes.admin_router import admin_router
from ehr.modules.notes.router import router

__all__ = ["admin_router", "router"]
