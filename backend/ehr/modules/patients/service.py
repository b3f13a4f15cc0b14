"""Patient search, read and create through the tenant-bound FHIR client.

Consistency with HAPI: a create is a FHIR conditional create on the patient's identifier
(``If-None-Exist: identifier=system|value``), so a retried POST returns the patient created the
first time instead of a duplicate. Paging follows HAPI's own ``next`` links; the link is handed
to the caller as an opaque page token signed with the service's secret (HMAC-SHA256, bound to the
tenant and to the caller's compartment), so a caller cannot turn it into an arbitrary FHIR
request, nor replay another tenant's or another compartment's paging link.

Portal principals (role ``patient``) are confined to their own Patient (the service's
``compartment``): reading another id is a 404 (HAPI is not even asked), searches are limited to
``_id=<own id>`` and results are filtered again. The service returns raw FHIR resources; the
router applies the break-glass rule and audits before turning them into summaries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args
from urllib.parse import quote

import structlog

from ehr.core.errors import BadRequestError
from ehr.fhir import (
    FhirResourceNotFound,
    TenantFhirClient,
    bundle_resources,
    identifiers,
    next_link,
)
from ehr.modules.patients.schemas import (
    Gender,
    PatientCreate,
    PatientIdentifier,
    PatientPage,
    PatientSummary,
)

__all__ = [
    "InvalidPageTokenError",
    "PatientResults",
    "PatientSearch",
    "PatientService",
    "escape_search_value",
    "to_summary",
]

logger = structlog.get_logger(__name__)

PATIENTS_PATH: Final = "/api/patients"
_GENDERS: Final = frozenset(get_args(Gender))
_TOKEN_MAC_BYTES: Final = 16


class InvalidPageTokenError(BadRequestError):
    """Raised when a ``page_token`` was not issued by this service for this tenant."""

    code = "invalid_page_token"
    title = "Invalid page token"


def escape_search_value(value: str) -> str:
    """Escape FHIR search special characters (``\\``, ``|``, ``,``, ``$``) in a token part."""
    for char in ("\\", "|", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PatientSearch:
    """Validated search criteria (the router has checked formats and bounds)."""

    __slots__ = ("birthdate", "count", "identifier", "name")

    def __init__(
        self,
        *,
        name: str | None = None,
        identifier: str | None = None,
        birthdate: str | None = None,
        count: int = 20,
    ) -> None:
        self.name = name
        self.identifier = identifier
        self.birthdate = birthdate
        self.count = count

    def to_params(self) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        if self.name:
            params.append(("name", self.name))
        if self.identifier:
            params.append(("identifier", self.identifier))
        if self.birthdate:
            params.append(("birthdate", self.birthdate))
        params += [("_count", str(self.count)), ("_total", "accurate")]
        return params


@dataclass(frozen=True, slots=True)
class PatientResults:
    """One page of a search: the Patient resources, HAPI's total and our ``next`` link."""

    resources: list[dict[str, Any]]
    total: int | None
    next: str | None

    def page(self, resources: list[dict[str, Any]] | None = None) -> PatientPage:
        shown = self.resources if resources is None else resources
        return PatientPage(items=[to_summary(r) for r in shown], total=self.total, next=self.next)


class PatientService:
    """The patients use cases for one tenant (and, for portal users, one compartment)."""

    def __init__(
        self,
        fhir: TenantFhirClient,
        *,
        page_token_key: bytes,
        compartment: str | None = None,
    ) -> None:
        self._fhir = fhir
        self._page_token_key = page_token_key
        # None: staff (the whole tenant); else the one Patient id visible ("" = none).
        self._compartment = compartment

    @property
    def compartment(self) -> str | None:
        return self._compartment

    # --- use cases ---------------------------------------------------------------------------

    async def search(self, criteria: PatientSearch) -> PatientResults:
        """The first page of patients matching ``criteria`` (within the compartment)."""
        params = criteria.to_params()
        if self._compartment is not None:
            if not self._compartment:
                return PatientResults(resources=[], total=0, next=None)
            params.append(("_id", self._compartment))
        bundle = await self._fhir.search("Patient", params)
        return self._results(bundle)

    async def next_page(self, page_token: str) -> PatientResults:
        """The page a previous answer's ``next`` token points at."""
        url = self._open_token(page_token)
        bundle = await self._fhir.next_page({"link": [{"relation": "next", "url": url}]})
        if bundle is None:  # pragma: no cover - we always pass a next link
            return PatientResults(resources=[], total=None, next=None)
        return self._results(bundle)

    async def get(self, patient_id: str) -> dict[str, Any]:
        """The Patient resource ``patient_id``.

        ``FhirResourceNotFound`` if it does not exist in this tenant, or lies outside the
        caller's compartment; ``FhirResourceGone`` if deleted.
        """
        if self._compartment is not None and patient_id != self._compartment:
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return await self._fhir.read("Patient", patient_id)

    async def create(self, payload: PatientCreate) -> dict[str, Any]:
        """Create the patient, or return the one that already has this identifier."""
        identifier = payload.identifier
        name: dict[str, Any] = {"use": "official", "family": payload.family}
        if payload.given:
            name["given"] = payload.given
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "identifier": [{"system": identifier.system, "value": identifier.value}],
            "name": [name],
        }
        if payload.gender is not None:
            resource["gender"] = payload.gender
        if payload.birth_date is not None:
            resource["birthDate"] = payload.birth_date.isoformat()
        condition = f"{identifier.system}|{escape_search_value(identifier.value)}"
        stored = await self._fhir.create(resource, if_none_exist={"identifier": condition})
        logger.info(
            "patients.create.completed", resource_id=stored.get("id"), tenant=self._fhir.tenant
        )
        return stored

    # --- paging ------------------------------------------------------------------------------

    def _results(self, bundle: Mapping[str, Any]) -> PatientResults:
        resources = bundle_resources(bundle, "Patient")
        if self._compartment is not None:
            resources = [r for r in resources if r.get("id") == self._compartment]
        total = bundle.get("total")
        next_url = next_link(bundle)
        next_page = (
            f"{PATIENTS_PATH}?page_token={quote(self._seal_token(next_url))}"
            if next_url is not None
            else None
        )
        if self._compartment is not None:
            total = len(resources)
        return PatientResults(
            resources=resources, total=total if isinstance(total, int) else None, next=next_page
        )

    def _mac(self, url: bytes) -> bytes:
        scope = (
            self._fhir.tenant
            if self._compartment is None
            else (f"{self._fhir.tenant}/Patient/{self._compartment}")
        )
        message = b"patients.page:" + scope.encode() + b":" + url
        return hmac.new(self._page_token_key, message, hashlib.sha256).digest()[:_TOKEN_MAC_BYTES]

    def _seal_token(self, url: str) -> str:
        raw = url.encode()
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def _open_token(self, token: str) -> str:
        try:
            body, mac = token.split(".", 1)
            raw, given_mac = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error):
            raise InvalidPageTokenError("The page token is malformed.") from None
        if not hmac.compare_digest(given_mac, self._mac(raw)):
            raise InvalidPageTokenError("The page token was not issued for this search.")
        return raw.decode()


def _name_text(resource: Mapping[str, Any]) -> str | None:
    names = [n for n in resource.get("name") or [] if isinstance(n, Mapping)]
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    text = name.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    parts = [
        *(str(g) for g in name.get("given") or []),
        *([str(name["family"])] if name.get("family") else []),
    ]
    return " ".join(parts) or None


def to_summary(resource: Mapping[str, Any]) -> PatientSummary:
    """The summary of a FHIR Patient resource."""
    gender = resource.get("gender")
    birth_date = resource.get("birthDate")
    return PatientSummary(
        id=str(resource.get("id", "")),
        name=_name_text(resource),
        gender=gender if gender in _GENDERS else None,
        birth_date=birth_date if isinstance(birth_date, str) else None,
        identifiers=[
            PatientIdentifier(system=ident.system, value=ident.value)
            for ident in identifiers(resource)
        ],
    )
