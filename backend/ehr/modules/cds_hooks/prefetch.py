"""Prefetch (CDS Hooks 2.0.1 §Providing FHIR Resources to a CDS Service).

Each service declares templates (``key → FHIR query``) in discovery. For a call, every key is
resolved in this order:

1. the client sent it in ``prefetch``: a resource or a searchset Bundle is used as is (a Bundle's
   ``next`` pages are followed when there is a source to follow them from, else the data is
   marked incomplete); ``null`` means "no data" (an empty result, never fetched again); an
   ``OperationOutcome`` means the client could not get it: it is fetched like a missing key;
2. missing keys are fetched, concurrently, from the call's data source:
   - ``fhirServer`` with ``fhirAuthorization``'s bearer token — only a server registered for the
     client (exact base URL; we never fetch from an address a caller chose);
   - no ``fhirServer`` and a first-party client: HAPI, in the client's tenant;
   - otherwise there is no source and the call is answered **412** naming the missing keys.
   A source that fails (unreachable, timeout, 401/403/5xx, not FHIR JSON) → **412** for a
   client's server; HAPI unavailable → 503 (the service's own dependency). A read answered 404
   (or 410) is "no data".

Tokens: ``{{context.X}}`` (first-level primitive context fields) and ``{{userPractitionerId}}``,
``{{userPractitionerRoleId}}``, ``{{userPatientId}}``, ``{{userRelatedPersonId}}`` (from
``context.userId``). A template whose token cannot be filled is not evaluated: its key counts as
unobtainable only if the client did not send it either.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, quote

from ehr.core.errors import AppError, DependencyUnavailable, PreconditionFailed
from ehr.fhir import (
    ExternalFhirServer,
    FhirResourceGone,
    FhirResourceNotFound,
    FhirResponseTooLarge,
    FhirUpstreamError,
    TenantFhirClient,
    bundle_resources,
    follow_pages,
)

__all__ = [
    "MAX_PAGES",
    "FhirSource",
    "HapiSource",
    "Prefetched",
    "RemoteFhirSource",
    "fill_template",
    "gather",
    "user_tokens",
]

# Pages followed per key (a prefetched Bundle's or a fetched search's).
MAX_PAGES: Final = 5

_TOKEN: Final = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*\}\}")
_USER_TOKENS: Final = {
    "Practitioner": "userPractitionerId",
    "PractitionerRole": "userPractitionerRoleId",
    "Patient": "userPatientId",
    "RelatedPerson": "userRelatedPersonId",
}
_RESOURCE_TYPE: Final = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class TemplateNotFillable(ValueError):  # noqa: N818 - a condition handled inside this module
    """A template names a token the call does not provide."""


def user_tokens(context: Mapping[str, Any]) -> dict[str, str]:
    """``userPractitionerId`` & co from ``context.userId`` (e.g. ``Practitioner/123``)."""
    user = context.get("userId")
    if not isinstance(user, str) or "/" not in user:
        return {}
    resource_type, _, ident = user.partition("/")
    token = _USER_TOKENS.get(resource_type)
    return {token: ident} if token and ident else {}


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """``template`` with its tokens replaced (URL-escaped); raises :class:`TemplateNotFillable`."""
    users = user_tokens(context)

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("context."):
            value = context.get(name.removeprefix("context."))
        else:
            value = users.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TemplateNotFillable(name)
        return quote(str(value), safe="-._~:,|")

    return _TOKEN.sub(value_of, template)


def _split_query(query: str) -> tuple[str, str | None, list[tuple[str, str]]]:
    """``Type/id`` → (Type, id, []); ``Type?a=b`` → (Type, None, [(a, b)])."""
    path, _, params = query.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts or not _RESOURCE_TYPE.match(parts[0]) or len(parts) > 2:
        raise ValueError(f"not a relative FHIR query: {path!r}")
    ident = parts[1] if len(parts) == 2 else None
    if ident is not None and not _ID.match(ident):
        raise ValueError("not a FHIR id")
    return parts[0], ident, parse_qsl(params, keep_blank_values=True)


class FhirSource(Protocol):
    """Where missing prefetch data is read from."""

    name: str

    async def get(self, query: str) -> dict[str, Any] | None:
        """The resource or first search page for ``query`` (relative); None = no such resource."""
        ...

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None: ...


class HapiSource:
    """HAPI, in the client's tenant (first-party clients without ``fhirServer``)."""

    name = "hapi"

    def __init__(self, fhir: TenantFhirClient) -> None:
        self._fhir = fhir

    async def get(self, query: str) -> dict[str, Any] | None:
        resource_type, ident, params = _split_query(query)
        if ident is not None:
            try:
                return await self._fhir.read(resource_type, ident)
            except (FhirResourceNotFound, FhirResourceGone):
                return None
        return await self._fhir.search(resource_type, params)

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        return await self._fhir.next_page(bundle)


class RemoteFhirSource:
    """The client's own FHIR server (``fhirServer``), with its ``fhirAuthorization`` token.

    Only registered base URLs reach here; the HTTP side (paging links stay under that base, size
    and time limits) is :class:`ehr.fhir.ExternalFhirServer`. Every failure of the server is a
    412: the data this service needs could not be obtained.
    """

    name = "fhir_server"

    def __init__(self, base_url: str, access_token: str | None, *, timeout_seconds: float) -> None:
        self._server = ExternalFhirServer(base_url, access_token, timeout_seconds=timeout_seconds)

    async def aclose(self) -> None:
        await self._server.aclose()

    async def get(self, query: str) -> dict[str, Any] | None:
        resource_type, ident, params = _split_query(query)  # relative FHIR queries only
        path = resource_type if ident is None else f"{resource_type}/{ident}"
        return await _answer(self._server.get(path, params or None))

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        return await _answer(self._server.next_page(bundle))


async def _answer(read: Awaitable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The client's server's answer; 404/410 = no data, any other failure → 412."""
    try:
        return await read
    except (FhirResourceNotFound, FhirResourceGone):
        return None
    except AppError as exc:
        status = exc.extra.get("upstream_status")
        if isinstance(status, int):
            raise PreconditionFailed(
                f"The CDS client's FHIR server answered {status}; "
                "the data this service needs could not be obtained"
            ) from None
        if isinstance(exc, FhirResponseTooLarge):
            raise PreconditionFailed(
                "The CDS client's FHIR server sent more data than this service reads"
            ) from None
        if isinstance(exc, DependencyUnavailable):
            raise PreconditionFailed(
                "The CDS client's FHIR server could not be reached; "
                "the data this service needs could not be obtained"
            ) from exc
        if isinstance(exc, FhirUpstreamError):
            raise PreconditionFailed(
                "The CDS client's FHIR server did not answer with FHIR JSON"
            ) from exc
        raise


@dataclass(slots=True)
class Prefetched:
    """Resolved prefetch data: key → resources (empty list = no data)."""

    values: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Keys the client sent (used as given) and keys we fetched.
    sent: set[str] = field(default_factory=set)
    fetched: set[str] = field(default_factory=set)
    complete: bool = True

    def resources(self, key: str, resource_type: str | None = None) -> list[dict[str, Any]]:
        found = self.values.get(key, [])
        if resource_type is None:
            return found
        return [r for r in found if r.get("resourceType") == resource_type]

    def first(self, key: str, resource_type: str) -> dict[str, Any] | None:
        found = self.resources(key, resource_type)
        return found[0] if found else None


async def _pages(
    first: dict[str, Any] | None, source: FhirSource | None
) -> tuple[list[dict[str, Any]], bool]:
    """All resources of ``first`` and its next pages (at most :data:`MAX_PAGES`)."""
    if first is None:
        return [], True
    if first.get("resourceType") != "Bundle":
        return bundle_resources(first), True
    pages, complete = await follow_pages(
        first, source.next_page if source is not None else None, max_pages=MAX_PAGES
    )
    return [resource for page in pages for resource in bundle_resources(page)], complete


def _is_operation_outcome(value: object) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


async def gather(
    templates: Mapping[str, str],
    context: Mapping[str, Any],
    sent: Mapping[str, Any] | None,
    source: FhirSource | None,
    *,
    hint: str | None = None,
) -> Prefetched:
    """Resolve every key of ``templates`` (see the module doc); 412 when one cannot be had
    (``hint`` says why there is no source, in the 412's detail)."""
    result = Prefetched()
    to_fetch: dict[str, str] = {}
    unobtainable: list[str] = []
    for key, template in templates.items():
        value = sent.get(key, ...) if sent is not None else ...
        if value is None:
            result.values[key] = []
            result.sent.add(key)
            continue
        if value is not ... and isinstance(value, Mapping) and not _is_operation_outcome(value):
            resources, complete = await _pages(dict(value), source)
            result.values[key] = resources
            result.sent.add(key)
            result.complete &= complete
            continue
        try:
            to_fetch[key] = fill_template(template, context)
        except TemplateNotFillable:
            unobtainable.append(key)
    if to_fetch and source is None:
        unobtainable.extend(to_fetch)
    if unobtainable:
        raise PreconditionFailed(
            "Prefetch data this service needs was not sent and cannot be fetched: "
            + ", ".join(sorted(unobtainable))
            + (f" ({hint})" if hint else ""),
            extra={"missing_prefetch": sorted(unobtainable)},
        )
    if not to_fetch or source is None:
        return result

    async def fetch(key: str, query: str) -> tuple[str, list[dict[str, Any]], bool]:
        try:
            first = await source.get(query)
        except ValueError as exc:
            raise PreconditionFailed(f"Prefetch template {key!r} is not a FHIR query") from exc
        resources, complete = await _pages(first, source)
        return key, resources, complete

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(fetch(k, q)) for k, q in to_fetch.items()]
    except ExceptionGroup as failed:
        raise _first_error(failed) from None
    for task in tasks:
        key, resources, complete = task.result()
        result.values[key] = resources
        result.fetched.add(key)
        result.complete &= complete
    return result


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first
