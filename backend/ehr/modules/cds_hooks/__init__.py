"""CDS Hooks 2.0 services at ``/cds-services`` (ADR 0012).

The public surface: :data:`router` (discovery, the services, feedback; mounted by
``ehr.entrypoints.api``) and the registry of trusted CDS clients (``ehr cds-hooks clients``).
Inside: ``service.py`` answers a call from the chart it gathers (``prefetch.py``: templates, what
the client sent, its ``fhirServer`` through :class:`ehr.fhir.ExternalFhirServer`, or HAPI);
``client_auth/`` checks the client's signed JWT; ``care_gap_cards.py`` renders the reminders of
:mod:`ehr.modules.care_gaps`; ``orders.py`` the order cards; ``clients.py`` is the registry.
"""

from ehr.modules.cds_hooks.clients import (
    CdsClientConflict,
    CdsClientNotFound,
    InvalidCdsClient,
    disable_client,
    enable_client,
    list_clients,
    register_client,
)
from ehr.modules.cds_hooks.medication_cards import to_cds_card
from ehr.modules.cds_hooks.router import CDS_SERVICES_PATH, router

__all__ = [
    "CDS_SERVICES_PATH",
    "CdsClientConflict",
    "CdsClientNotFound",
    "InvalidCdsClient",
    "disable_client",
    "enable_client",
    "list_clients",
    "register_client",
    "router",
    "to_cds_card",
]
