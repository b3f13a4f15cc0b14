"""How HAPI URLs and conditional headers are built from tenant, type, id and operation names.

HAPI runs with URL-based partitioning, so every URL is ``{base_url}/{tenant}/{ResourceType}/...``.
Each value is checked against a strict pattern before it is put into a path, so nothing a caller
supplies can add a path segment, climb out of its tenant or smuggle a query string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote, urlencode, urlsplit

from ehr.fhir.errors import (
    FhirInvalidId,
    FhirInvalidRequest,
    FhirInvalidResourceType,
    FhirInvalidTenant,
)

__all__ = [
    "TENANT_PATTERN",
    "relative_path",
    "search_condition",
    "tenant_base_url",
    "tenant_page_url",
    "validate_id",
    "validate_operation",
    "validate_resource_type",
    "validate_tenant",
    "weak_etag",
]

TENANT_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
RESOURCE_TYPE_PATTERN: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
# FHIR R4 id datatype: https://hl7.org/fhir/R4/datatypes.html#id
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# `$everything`, `$validate-code`, `$partition-management-create-partition`...
# HAPI names its own operations with dots (`$hapi.fhir.replace-references`); no `/` or `?`.
OPERATION_PATTERN: Final = re.compile(r"\$[A-Za-z][A-Za-z0-9_.-]{0,99}")
# A path segment fhirpy may produce: a type, an id, `_history`, `_search` or an operation.
_SEGMENT_PATTERN: Final = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$\-.]{0,99}")


def validate_tenant(tenant: str) -> str:
    """``tenant`` if it is a valid HAPI partition name, else :class:`FhirInvalidTenant`."""
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise FhirInvalidTenant(
            "Tenant names are 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return tenant


def validate_resource_type(resource_type: str) -> str:
    """``resource_type`` if shaped like a FHIR resource type, else FhirInvalidResourceType."""
    if not isinstance(resource_type, str) or not RESOURCE_TYPE_PATTERN.fullmatch(resource_type):
        raise FhirInvalidResourceType("A FHIR resource type is a capitalised word like 'Patient'")
    return resource_type


def validate_id(resource_id: str, *, what: str = "resource id") -> str:
    """``resource_id`` if it is a valid FHIR id, else :class:`FhirInvalidId`."""
    # "." and ".." match the FHIR pattern but are URL dot-segments (they would climb the path).
    if (
        not isinstance(resource_id, str)
        or not ID_PATTERN.fullmatch(resource_id)
        or not resource_id.strip(".")
    ):
        raise FhirInvalidId(f"A FHIR {what} is 1-64 letters, digits, '-' or '.'")
    return resource_id


def validate_operation(name: str) -> str:
    """The operation name with its leading ``$`` (added if missing), else FhirInvalidRequest."""
    operation = name if name.startswith("$") else f"${name}"
    if not OPERATION_PATTERN.fullmatch(operation):
        raise FhirInvalidRequest("A FHIR operation name looks like '$everything'")
    return operation


def tenant_base_url(base_url: str, tenant: str) -> str:
    """``{base_url}/{tenant}`` for a validated tenant."""
    return f"{base_url.rstrip('/')}/{validate_tenant(tenant)}"


def relative_path(path: str) -> str:
    """A FHIR path relative to a tenant base (``Patient/123/_history``), checked segment by segment.

    Raises :class:`FhirInvalidRequest` for empty, ``.``/``..`` or otherwise unexpected segments,
    query strings and fragments.
    """
    segments = path.strip("/").split("/")
    for segment in segments:
        if segment in {".", ".."} or not _SEGMENT_PATTERN.fullmatch(segment):
            raise FhirInvalidRequest("The FHIR request path is not valid")
    return "/".join(segments)


def tenant_page_url(url: str, *, base_url: str, tenant: str) -> tuple[str, str]:
    """Re-anchor an absolute URL from HAPI (a ``Bundle.link``) onto our own tenant base.

    HAPI writes links with its own idea of its host (which differs behind a proxy), so only the
    path after ``{base path}/{tenant}`` and the query are kept and appended to *our* tenant base:
    a link can never send a request to another host. The link's path must start with our base
    path followed by ``tenant``. Returns ``(url_without_query, query)``.
    Raises :class:`FhirInvalidRequest` when the link points into another tenant or elsewhere.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or parts.fragment:
        raise FhirInvalidRequest("The FHIR link is not an http(s) URL")
    prefix = f"{urlsplit(base_url).path.rstrip('/')}/{validate_tenant(tenant)}"
    path = parts.path.rstrip("/")
    if path == prefix:
        rest = ""
    elif path.startswith(prefix + "/"):
        rest = relative_path(path[len(prefix) + 1 :])
    else:
        raise FhirInvalidRequest("The FHIR link does not point into this tenant")
    own_base = tenant_base_url(base_url, tenant)
    return (f"{own_base}/{rest}" if rest else own_base), parts.query


def search_condition(condition: str | Mapping[str, str | Sequence[str]]) -> str:
    """A search query string for ``If-None-Exist`` / ``ifNoneExist`` (no leading ``?``).

    A mapping is URL-encoded (``|``, ``:``, ``,`` and ``/`` kept readable); a string is used as
    given. Raises :class:`FhirInvalidRequest` for an empty or non-printable-ASCII condition.
    """
    if isinstance(condition, str):
        query = condition.removeprefix("?")
    else:
        query = urlencode(
            {k: [v] if isinstance(v, str) else list(v) for k, v in condition.items()},
            doseq=True,
            safe=":|,/",
            quote_via=quote,
        )
    if not query or not query.isascii() or not query.isprintable():
        raise FhirInvalidRequest("A conditional request needs a printable ASCII search condition")
    return query


def weak_etag(version: str) -> str:
    """``W/"<version>"`` for ``If-Match``, from a bare version id (``"3"``) or an ETag."""
    inner = version.removeprefix("W/").strip('"') if version.startswith(('W/"', '"')) else version
    return f'W/"{validate_id(inner, what="version id")}"'
