"""CDS Hooks 2.0 services at ``/cds-services`` (ADR 0012).

The public surface (other modules and the entrypoints import only this):

``router``, ``CDS_SERVICES_PATH``   discovery, the services and feedback (``ehr.entrypoints.api``)
the client registry                 ``register_client``, ``list_clients``, ``enable_client``,
                                    ``disable_client`` and their errors (``ehr cds-hooks clients``)
``to_cds_card``                     a medication-safety issue as a CDS card (the API's
                                    ``include=cds-card``, wired by ``ehr.entrypoints.api``)

Inside: ``service.py`` answers a call from the chart it gathers (``prefetch.py``: what the client
sent, its ``fhirServer`` through :class:`ehr.fhir.ExternalFhirServer`, or HAPI); ``flows.py``
checks it with :mod:`ehr.modules.medication_safety`; ``care_gap_cards.py`` renders the reminders of
:mod:`ehr.modules.care_gaps`; ``client_auth/`` checks the client's signed JWT; ``clients.py`` is
the registry.
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
