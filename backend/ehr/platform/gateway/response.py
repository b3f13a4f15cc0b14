"""The gateway's answers: HAPI's response streamed back with its address rewritten.

:func:`respond` streams an upstream answer (headers and body rewritten by
:mod:`ehr.platform.gateway.rewrite`; non-textual bodies such as a Binary's bytes untouched),
registers the search-page and export-job ids it carries as the caller's
(:mod:`ehr.platform.gateway.pages`) and, before the last bytes are released, runs the result
audit. HAPI's own failures (5xx) are not passed on: they are raised as the error
:func:`ehr.fhir.errors.passthrough_error` names. :func:`single_resource` answers a read the
policy turned into a compartment search with its one match.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import structlog
from fastapi.responses import Response, StreamingResponse
from redis.asyncio import Redis
from starlette.background import BackgroundTask

from ehr.fhir.errors import FhirResourceNotFound, passthrough_error
from ehr.fhir.passthrough import UpstreamResponse, forwardable_response_headers
from ehr.platform.audit.dependencies import AccessNote
from ehr.platform.gateway.intake import FHIR_JSON
from ehr.platform.gateway.interactions import ParsedInteraction
from ehr.platform.gateway.pages import EXPORT_KEY_PREFIX, remember_pages
from ehr.platform.gateway.rewrite import StreamRewriter, rewrite_text

__all__ = ["SMALL_ANSWER", "ResultAudit", "raise_upstream_failure", "respond", "single_resource"]

logger = structlog.get_logger(__name__)

# Small answers the gateway reads whole (a compartment-checked read, a capability statement).
SMALL_ANSWER: Final = 16 * 1024 * 1024
_REWRITTEN_HEADERS: Final = frozenset({"location", "content-location"})
_JOB_ID: Final = re.compile(r"[?&]_jobId=([A-Za-z0-9\-]{1,128})")

# Called with the rewriter and the status once the whole body went through (the result audit).
ResultAudit = Callable[[StreamRewriter, int], Awaitable[None]]


async def raise_upstream_failure(upstream: UpstreamResponse) -> None:
    """Close ``upstream`` and raise when its status is a failure of HAPI itself (5xx)."""
    error = passthrough_error(upstream.status_code)
    if error is not None:
        await upstream.aclose()
        logger.warning("fhir.gateway.upstream_error", upstream_status=upstream.status_code)
        raise error


def single_resource(
    resource: dict[str, Any] | None,
    interaction: ParsedInteraction,
    public: str,
    hapi_bases: tuple[str, str],
) -> Response:
    """The answer to a read: ``resource`` (rewritten) with its ETag, Last-Modified and
    Content-Location; 404 when there is none."""
    if resource is None:
        raise FhirResourceNotFound("The FHIR resource does not exist")
    body = rewrite_text(json.dumps(resource, ensure_ascii=False), hapi_bases, public)
    headers: dict[str, str] = {}
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if isinstance(version, str):
        headers["ETag"] = f'W/"{version}"'
    if isinstance(meta, dict) and isinstance(meta.get("lastUpdated"), str):
        headers["Last-Modified"] = meta["lastUpdated"]
    headers["Content-Location"] = (
        f"{public}/{interaction.resource_type}/{interaction.resource_id}"
        + (f"/_history/{version}" if isinstance(version, str) else "")
    )
    return Response(body.encode(), media_type=FHIR_JSON, headers=headers)


def _is_textual(media_type: str | None) -> bool:
    """FHIR JSON/XML, NDJSON and text are rewritten; other bodies (a Binary's own bytes: PDF,
    images) pass through untouched, so no byte of a document is ever changed."""
    if not media_type:
        return True
    media = media_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media.endswith(("+json", "/json", "+xml", "/xml", "ndjson"))
        or media == "application/x-ndjson"
    )


def _note_patients(note: AccessNote, rewriter: StreamRewriter) -> None:
    """The patients a complete answer named, in the interaction's own audit note."""
    ids = sorted(rewriter.patient_ids)
    if not ids:
        return
    note.add_details(patients=ids, truncated=rewriter.patients_truncated)
    if note.patient_id is None and len(ids) == 1:
        note.patient_id = ids[0]


async def respond(
    upstream: UpstreamResponse,
    hapi_bases: tuple[str, str],
    public: str,
    *,
    capture_pages: bool,
    redis: Redis,
    owner: str,
    page_ttl: int,
    buffer_bytes: int,
    export_kickoff: bool = False,
    note: AccessNote | None = None,
    on_streamed: ResultAudit | None = None,
) -> Response:
    """HAPI's answer with its address rewritten (headers and body).

    An answer of at most ``buffer_bytes`` is read whole and sent with ``Content-Length`` (no
    streaming task group per small answer); the patients it names go into ``note``, the
    interaction's one audit record, written before it is sent. A larger answer streams with
    flat memory; the patients it named are then recorded by ``on_streamed`` before its last
    bytes are released (a second record, for large answers only).
    """
    await raise_upstream_failure(upstream)
    status = upstream.status_code
    headers = [
        (
            name,
            rewrite_text(value, hapi_bases, public)
            if name.lower() in _REWRITTEN_HEADERS
            else value,
        )
        for name, value in forwardable_response_headers(upstream.headers)
        if name.lower() != "content-type"
    ]
    if export_kickoff and status == 202:
        poll = upstream.headers.get("content-location", "")
        jobs = [match.group(1) for match in _JOB_ID.finditer(poll)]
        await remember_pages(redis, owner, jobs, page_ttl, prefix=EXPORT_KEY_PREFIX, required=True)
    media_type = upstream.headers.get("content-type")
    wants_patients = status == 200 and (note is not None or on_streamed is not None)
    rewriter = (
        StreamRewriter(
            hapi_bases, public, capture_pages=capture_pages, capture_patients=wants_patients
        )
        if _is_textual(media_type)
        else None
    )
    known: set[str] = set()

    async def register_pages() -> None:
        if rewriter is not None and rewriter.page_ids - known:
            fresh = rewriter.page_ids - known
            await remember_pages(redis, owner, fresh, page_ttl)
            known.update(fresh)

    chunks = upstream.body()
    head: list[bytes] = []
    size = 0
    complete = False
    try:
        async for chunk in chunks:
            head.append(rewriter.feed(chunk) if rewriter is not None else chunk)
            size += len(chunk)
            if size > buffer_bytes:
                break
        else:
            complete = True
        if complete and rewriter is not None:
            head.append(rewriter.flush())
            await register_pages()
            if note is not None and wants_patients:
                _note_patients(note, rewriter)
    except BaseException:
        await upstream.aclose()
        raise
    if complete:
        await upstream.aclose()
        response = Response(b"".join(head), status_code=status, media_type=media_type)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    async def rest() -> AsyncIterator[bytes]:
        try:
            await register_pages()
            for part in head:
                if part:
                    yield part
            async for chunk in chunks:
                out = rewriter.feed(chunk) if rewriter is not None else chunk
                await register_pages()
                if out:
                    yield out
            if rewriter is None:
                return
            tail = rewriter.flush()
            await register_pages()
            if on_streamed is not None and wants_patients:
                await on_streamed(rewriter, status)
            if tail:
                yield tail
        finally:
            await upstream.aclose()

    streamed = StreamingResponse(
        rest(),
        status_code=status,
        media_type=media_type,
        background=BackgroundTask(upstream.aclose),
    )
    for name, value in headers:
        streamed.headers.append(name, value)
    return streamed
