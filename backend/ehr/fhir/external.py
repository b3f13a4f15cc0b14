"""FHIR servers that are not our HAPI: read-only GETs against a base URL someone else runs.

A CDS client may name its own FHIR server (``fhirServer``) and lend us an access token
(``fhirAuthorization``) to read the data a service needs (CDS Hooks 2.0.1 §Prefetch).
:class:`ExternalFhirServer` is the one client for such a server:

- GETs only, and only under the base URL it was made for: a path that leaves the base is refused
  (``FhirInvalidRequest``), and :meth:`~ExternalFhirServer.next_page` does not follow a paging
  link to another origin or path (it answers ``None``);
- the token goes as ``Authorization: Bearer``; redirects are not followed, proxy settings of the
  environment are ignored, each request has a timeout and at most ``max_bytes`` of an answer is
  read;
- failures are the errors of :mod:`ehr.fhir.errors`. A status other than 200 goes through its
  table (:func:`~ehr.fhir.errors.error_for_status`: 404 ``FhirResourceNotFound``, 410
  ``FhirResourceGone``, 401/403 ``FhirUpstreamRejected``, ...; ``extra["upstream_status"]`` holds
  the status); no answer through :func:`~ehr.fhir.errors.error_for_transport` (unreachable →
  ``FhirUnavailable``, too slow → ``FhirTimeout``); an answer larger than the limit →
  ``FhirResponseTooLarge``, one that is not a JSON object → ``FhirUpstreamError``.

What a failure means for the caller (a CDS call answers 412) is the caller's to say. Logs carry
error types only: never the URL, the query or the token.
"""

# The names follow ehr.core.errors (an HTTP meaning, not an "...Error" suffix).

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from ehr.fhir.bundles import next_link
from ehr.fhir.errors import (
    FhirInvalidRequest,
    FhirResponseTooLarge,
    FhirUpstreamError,
    error_for_status,
    error_for_transport,
)

__all__ = ["MAX_RESPONSE_BYTES", "ExternalFhirServer"]

logger = structlog.get_logger(__name__)

# Largest answer read from an external FHIR server.
MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024


class ExternalFhirServer:
    """Read-only client of one external FHIR server (base URL + optional bearer token)."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        *,
        timeout_seconds: float,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._base = base_url.rstrip("/") + "/"
        self._max_bytes = max_bytes
        headers = {"Accept": "application/fhir+json"}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    @property
    def base_url(self) -> str:
        """The base URL, with a trailing slash."""
        return self._base

    async def aclose(self) -> None:
        await self._http.aclose()

    def is_under_base(self, url: str) -> bool:
        """Whether ``url`` is on this server's origin and under its base path."""
        target = urlsplit(url)
        base = urlsplit(self._base)
        return (target.scheme, target.netloc) == (base.scheme, base.netloc) and (
            target.path.startswith(base.path)
        )

    async def get(
        self, path: str, params: Sequence[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        """GET ``path`` (relative to the base, e.g. ``Patient/1`` or ``Observation``) with
        ``params``: the resource or search page it answers (the errors: see the module doc)."""
        url = urljoin(self._base, path)
        if not self.is_under_base(url):
            raise FhirInvalidRequest("The path leaves the FHIR server's base URL")
        # Parameters re-encoded (e.g. `|` of token searches), as servers such as Tomcat require.
        return await self._fetch(url, params or None)

    async def next_page(self, bundle: Mapping[str, Any]) -> dict[str, Any] | None:
        """The page after ``bundle``; ``None`` when it has no ``next`` link or the link leaves
        this server's base."""
        url = next_link(bundle)
        if url is None:
            return None
        if not self.is_under_base(url):
            logger.warning("fhir.external.paging_link_refused")
            return None
        return await self._fetch(url)

    async def _fetch(
        self, url: str, params: Sequence[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        try:
            query = httpx.QueryParams(tuple(params)) if params else None
            async with self._http.stream("GET", url, params=query) as response:
                if response.status_code != 200:
                    raise error_for_status(response.status_code, b"")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > self._max_bytes:
                        raise FhirResponseTooLarge(
                            "The FHIR server sent more data than is read from it"
                        )
        except httpx.HTTPError as exc:
            logger.warning("fhir.external.request_failed", error=type(exc).__name__)
            raise error_for_transport(exc) from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise FhirUpstreamError(
                "The FHIR server answered with something that is not JSON"
            ) from exc
        if not isinstance(document, dict):
            raise FhirUpstreamError(
                "The FHIR server answered with something that is not a resource"
            )
        return document
