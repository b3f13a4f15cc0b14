"""The only code that talks to HAPI FHIR, and the typed layer business code reads FHIR through.

:class:`FhirClient` (one per application) owns the pooled connection; :meth:`FhirClient.for_tenant`
hands business code a :class:`TenantFhirClient` bound to one HAPI partition
(:meth:`TenantFhirClient.search_all` reads a search's pages, bounded: :mod:`ehr.fhir.paging`).
HAPI's failures arrive as the errors in :mod:`ehr.fhir.errors`; :mod:`ehr.fhir.bundles` builds
transaction bundles and reads any Bundle (:func:`iter_entries`, :func:`bundle_resources`,
:func:`next_link`); :mod:`ehr.fhir.datatypes` reads the datatypes (Coding, CodeableConcept,
Identifier, Reference, Period, dates, status codes); :class:`ExternalFhirServer`
(:mod:`ehr.fhir.external`) reads a FHIR server that is not HAPI (a CDS client's ``fhirServer``).
Import them from here.
See docs/adr/0001-fhir-client.md and docs/adr/0017-typed-fhir-layer.md.
"""

from ehr.fhir.bundles import (
    BundleEntry,
    ResourceLocation,
    batch_bundle,
    bundle_resources,
    create_entry,
    delete_entry,
    entry_location,
    has_next,
    iter_entries,
    new_full_url,
    next_link,
    parse_location,
    transaction_bundle,
    update_entry,
)
from ehr.fhir.client import FhirClient, TenantFhirClient
from ehr.fhir.datatypes import (
    Coding,
    FhirDate,
    Identifier,
    Period,
    ReferenceParts,
    bare_version,
    codings,
    concept_text,
    etag_of,
    identifiers,
    parse_fhir_date,
    period_of,
    reference_of,
    reference_parts,
    status_code,
    version_id,
)
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
    FhirResponseTooLarge,
    FhirTimeout,
    FhirUnavailable,
    FhirUnprocessable,
    FhirUpstreamError,
    FhirUpstreamRejected,
)
from ehr.fhir.external import ExternalFhirServer
from ehr.fhir.paging import NextPage, SearchResult, follow_pages, search_result, with_page_size

__all__ = [
    "BundleEntry",
    "Coding",
    "ExternalFhirServer",
    "FhirBadRequest",
    "FhirClient",
    "FhirConflict",
    "FhirDate",
    "FhirInvalidId",
    "FhirInvalidRequest",
    "FhirInvalidResourceType",
    "FhirInvalidTenant",
    "FhirPreconditionFailed",
    "FhirResourceGone",
    "FhirResourceNotFound",
    "FhirResponseTooLarge",
    "FhirTimeout",
    "FhirUnavailable",
    "FhirUnprocessable",
    "FhirUpstreamError",
    "FhirUpstreamRejected",
    "Identifier",
    "NextPage",
    "Period",
    "ReferenceParts",
    "ResourceLocation",
    "SearchResult",
    "TenantFhirClient",
    "bare_version",
    "batch_bundle",
    "bundle_resources",
    "codings",
    "concept_text",
    "create_entry",
    "delete_entry",
    "entry_location",
    "etag_of",
    "follow_pages",
    "has_next",
    "identifiers",
    "iter_entries",
    "new_full_url",
    "next_link",
    "parse_fhir_date",
    "parse_location",
    "period_of",
    "reference_of",
    "reference_parts",
    "search_result",
    "status_code",
    "transaction_bundle",
    "update_entry",
    "version_id",
    "with_page_size",
]
