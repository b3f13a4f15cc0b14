"""Identifier systems from v2 assigning authorities (HD), and search tokens for conditional URLs.

The rule (the outbound conversion applies its reverse, so it is kept exactly):

* universal id type ``ISO`` -> ``urn:oid:<universal id>``;
* ``UUID`` -> ``urn:uuid:<universal id>``;
* ``URI`` / ``URL`` -> the universal id itself;
* otherwise the namespace id HD.1 -> ``urn:ehr:hl7v2:<HD.1>``, percent-encoded (RFC 3986
  unreserved characters kept), and when HD.1 is empty the universal id in its place.

An identifier without an assigning authority takes the sender's: MSH-4 (sending facility), else
MSH-3 (sending application), through the same rule.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

__all__ = ["LOCAL_PREFIX", "identifier_system", "local_system", "search_token"]

LOCAL_PREFIX: Final = "urn:ehr:hl7v2:"

_OID: Final = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


def local_system(namespace: str) -> str:
    """``urn:ehr:hl7v2:<namespace>`` with the namespace percent-encoded."""
    return LOCAL_PREFIX + quote(namespace.strip(), safe="")


# Assigning authorities with a registered FHIR system (namespace ids as US feeds send them, and
# the OIDs of the same registries): the FHIR URI wins over urn:oid: (FHIR's own guidance).
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
WELL_KNOWN_NAMESPACES = {
    "NPI": NPI_SYSTEM,
    "SSA": SSN_SYSTEM,
    "SSN": SSN_SYSTEM,
    "USSSA": SSN_SYSTEM,
}
WELL_KNOWN_OIDS = {"2.16.840.1.113883.4.6": NPI_SYSTEM, "2.16.840.1.113883.4.1": SSN_SYSTEM}


def identifier_system(
    namespace_id: str, universal_id: str = "", universal_id_type: str = ""
) -> str | None:
    """The FHIR ``Identifier.system`` for an HD (CX.4, EI.2-4, XCN.9, MSH-3/4 …).

    A universal id that does not have the form its type claims (an ``ISO`` id that is not an
    OID) is not trusted; the namespace id is used instead. None when the HD is empty.
    """
    namespace = namespace_id.strip()
    universal = universal_id.strip()
    kind = universal_id_type.strip().upper()
    if universal in WELL_KNOWN_OIDS:
        return WELL_KNOWN_OIDS[universal]
    if not universal and namespace.upper() in WELL_KNOWN_NAMESPACES:
        return WELL_KNOWN_NAMESPACES[namespace.upper()]
    if universal:
        if kind == "ISO" and _OID.match(universal):
            return f"urn:oid:{universal}"
        if kind == "UUID" and _UUID.match(universal):
            return f"urn:uuid:{universal.lower()}"
        if kind in {"URI", "URL"} and _URI.match(universal):
            return universal
    if namespace:
        return local_system(namespace)
    if universal:
        return local_system(universal)
    return None


def _escape_token_part(part: str) -> str:
    # FHIR search escaping of the characters that have a meaning in a token parameter.
    for char in ("\\", ",", "$", "|"):
        part = part.replace(char, "\\" + char)
    return quote(part, safe=":/")


def search_token(system: str, value: str) -> str:
    """``system|value`` for a query string: FHIR-escaped, then percent-encoded (``:`` and ``/``
    kept, the separating ``|`` kept)."""
    return f"{_escape_token_part(system)}|{_escape_token_part(value)}"
