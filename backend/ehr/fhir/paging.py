"""Following a search's pages, bounded: the one paging helper.

:meth:`ehr.fhir.client.TenantFhirClient.search_all` reads a search on HAPI (at most
``max_pages`` pages) into a :class:`SearchResult`: its matches, the resources it ``_include``-d
(by ``Type/id``) and whether every page was read. :func:`follow_pages` is the page loop itself,
over any source of ``next`` pages (HAPI, or an external FHIR server)::

    found = await tenant_fhir.search_all(
        "MedicationRequest",
        [("subject", "Patient/1"), ("_include", "MedicationRequest:medication")],
        page_size=100,
        max_pages=3,
    )
    found.matches, found.included["Medication/7"], found.complete
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ehr.fhir.bundles import has_next, iter_entries
from ehr.fhir.datatypes import reference_of
from ehr.fhir.transport import QueryParams, QueryScalar

__all__ = ["NextPage", "SearchResult", "follow_pages", "search_result", "with_page_size"]

# Fetches the page after a Bundle (None: there is none, or it may not be followed).
NextPage = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a bounded search read: ``complete`` is False when pages were left unread."""

    matches: list[dict[str, Any]] = field(default_factory=list)
    # The other resources of the pages (``_include``-d, or of another type), by "Type/id".
    included: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True


async def follow_pages(
    first: dict[str, Any], next_page: NextPage | None, *, max_pages: int
) -> tuple[list[dict[str, Any]], bool]:
    """``first`` and the pages after it, at most ``max_pages`` in all, and whether that is all.

    Without ``next_page`` (nowhere to follow a link from) only ``first`` is read; when
    ``next_page`` answers ``None`` the pages end there.
    """
    pages = [first]
    while has_next(pages[-1]):
        if next_page is None or len(pages) >= max_pages:
            return pages, False
        page = await next_page(pages[-1])
        if page is None:
            break
        pages.append(page)
    return pages, True


def search_result(
    pages: Iterable[Mapping[str, Any]], resource_type: str, *, complete: bool
) -> SearchResult:
    """The matches of ``resource_type`` in ``pages`` and the other resources (by ``Type/id``)."""
    result = SearchResult(complete=complete)
    for page in pages:
        for entry in iter_entries(page):
            resource = entry.resource
            if resource is None:
                continue
            if resource.get("resourceType") == resource_type and entry.is_match:
                result.matches.append(resource)
            elif isinstance(resource.get("id"), str):
                result.included[reference_of(resource)] = resource
    return result


def with_page_size(params: QueryParams | None, page_size: int | None) -> QueryParams | None:
    """``params`` with ``_count=page_size`` appended (unchanged without a page size)."""
    if page_size is None:
        return params
    count = ("_count", str(page_size))
    if params is None:
        return [count]
    if isinstance(params, str):
        return f"{params}&_count={page_size}" if params else f"_count={page_size}"
    if isinstance(params, Mapping):
        pairs: list[tuple[str, QueryScalar]] = []
        for name, value in params.items():
            if isinstance(value, str | int | float | bool):
                pairs.append((name, value))
            else:
                pairs.extend((name, item) for item in value)
        return [*pairs, count]
    return [*params, count]
