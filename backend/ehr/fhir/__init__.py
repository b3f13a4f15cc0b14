"""The only code that talks to HAPI FHIR.

:class:`FhirClient` (one per application) owns the pooled connection; :meth:`FhirClient.for_tenant`
hands business code a :class:`TenantFhirClient` bound to one HAPI partition. HAPI's failures arrive
as the errors in :mod:`ehr.fhir.errors`; :mod:`ehr.fhir.bundles` builds transaction bundles.
See docs/adr/0001-fhir-client.md.
"""

from ehr.fhir.client import FhirClient, TenantFhirClient
from ehr.fhir.errors import (
    FhirBadRequest,
    FhirConflict,
    FhirInvalidId,
    FhirInvalidRequest,
    FhirInvalidResourceType,
    FhirInvalidTenant,
    FhirPreconditionFailed,
    FhirResourceGone,
    FhirResourceNotFound,
    FhirTimeout,
    FhirUnavailable,
    FhirUnprocessable,
    FhirUpstreamError,
    FhirUpstreamRejected,
)

__all__ = [
    "FhirBadRequest",
    "FhirClient",
    "FhirConflict",
    "FhirInvalidId",
    "FhirInvalidRequest",
    "FhirInvalidResourceType",
    "FhirInvalidTenant",
    "FhirPreconditionFailed",
    "FhirResourceGone",
    "FhirResourceNotFound",
    "FhirTimeout",
    "FhirUnavailable",
    "FhirUnprocessable",
    "FhirUpstreamError",
    "FhirUpstreamRejected",
    "TenantFhirClient",
]
