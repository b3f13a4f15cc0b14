"""The gateway's request intake: what a ``/fhir/...`` request carries besides its URL.

:func:`read_body` completes the parsed interaction with the parameters that do not come from
the query string (a conditional create's ``If-None-Exist`` criteria, a ``POST _search`` form) and
decides how the body travels on: read whole and parsed (a transaction or batch Bundle, and in
patient context create/update bodies, which the policy checks; small JSON bodies, so malformed
JSON is a 400 here rather than HAPI's) or streamed to HAPI untouched. Refusals: 415 for a body
that is not FHIR, 400 for malformed JSON or criteria.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import Request

from ehr.core.config import Settings
from ehr.core.errors import BadRequestError, UnsupportedMediaType
from ehr.core.intake import check_request_target, read_json
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.interactions import ParsedInteraction, takes_body

__all__ = ["FHIR_BODY_TYPES", "FHIR_JSON", "FORM", "Intake", "read_body"]

FHIR_JSON: Final = "application/fhir+json"
FORM: Final = "application/x-www-form-urlencoded"
# Bodies the gateway forwards (FHIR JSON/XML, JSON Patch, FHIRPath Patch as Parameters).
FHIR_BODY_TYPES: Final = frozenset(
    {
        "application/fhir+json",
        "application/json",
        "application/json-patch+json",
        "application/fhir+xml",
        "application/xml",
    }
)
_JSON_TYPES: Final = frozenset(
    {"application/fhir+json", "application/json", "application/json-patch+json"}
)
_PATCH_TYPES: Final = frozenset({"application/json-patch+json", *FHIR_BODY_TYPES})


@dataclass(frozen=True, slots=True)
class Intake:
    """A request's interaction with all its parameters, and its body as it goes on to HAPI."""

    interaction: ParsedInteraction
    # What is sent to HAPI: the bytes read, the request's own stream, or nothing.
    content: bytes | AsyncIterable[bytes] | None = None
    # The transaction/batch Bundle, or the create/update resource, when the body was parsed.
    bundle: Mapping[str, Any] | None = None
    resource: Mapping[str, Any] | None = None
    # A POST _search's form parameters (they go back into a form body, not the URL).
    form_params: list[tuple[str, str]] | None = None


def _media_type(request: Request) -> str:
    value = request.headers.get("content-type") or ""
    return value.split(";", 1)[0].strip().lower()


async def _stream_request(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def read_body(
    request: Request, parsed: ParsedInteraction, principal: Principal, settings: Settings
) -> Intake:
    """The interaction with its header/form parameters, and how its body is sent on."""
    if parsed.kind == "create" and parsed.conditional:
        # The criteria of a conditional create are its parameters: the policy checks (and in
        # patient context constrains) them like a search's, and they go back into the header.
        criteria = request.headers.get("if-none-exist", "").removeprefix("?")
        parsed = parsed.with_params(parse_qsl(criteria, keep_blank_values=True))
        if not parsed.params:
            raise BadRequestError("If-None-Exist needs search parameters")

    media = _media_type(request)
    if parsed.kind == "search" and parsed.method == "POST":
        if media != FORM:
            raise UnsupportedMediaType(f"POST _search takes {FORM}")
        raw = await request.body()
        check_request_target(b"", raw)  # the form is a query: UTF-8 once decoded, no NUL
        try:
            form_params = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequestError("The search form is not valid UTF-8") from None
        return Intake(parsed.with_params([*parsed.params, *form_params]), form_params=form_params)
    if parsed.method not in {"POST", "PUT", "PATCH"}:
        return Intake(parsed)

    if media not in FHIR_BODY_TYPES and (takes_body(parsed) or media):
        raise UnsupportedMediaType(
            "The request body must be a FHIR resource (application/fhir+json)"
        )
    if parsed.kind == "patch" and media not in _PATCH_TYPES:
        raise UnsupportedMediaType("A patch is JSON Patch or a FHIRPath Patch Parameters resource")
    length_header = request.headers.get("content-length")
    length = int(length_header) if length_header and length_header.isdigit() else None
    small = length is not None and length <= settings.gateway.validate_json_max_bytes
    # Patient context: the policy checks create/update bodies, so they are read (bounded by
    # api.max_body_bytes through the body-size middleware).
    must_read = parsed.kind == "transaction" or (
        principal.patient_id is not None and parsed.kind in {"create", "update"}
    )
    if not (must_read or (small and media in _JSON_TYPES)):
        return Intake(parsed, content=_stream_request(request))

    raw = await request.body()
    if media not in _JSON_TYPES:
        raise UnsupportedMediaType("This request body must be FHIR JSON")
    document = await read_json(raw, max_depth=settings.api.max_json_depth)
    if parsed.kind == "transaction":
        bundle_type = document.get("type") if isinstance(document, dict) else None
        if (
            not isinstance(document, dict)
            or document.get("resourceType") != "Bundle"
            or bundle_type not in {"transaction", "batch"}
        ):
            raise BadRequestError("POST to the base takes a transaction or batch Bundle")
        if bundle_type == "batch":
            parsed = replace(parsed, kind="batch")
        return Intake(parsed, content=raw, bundle=document)
    if parsed.kind in {"create", "update"} and isinstance(document, dict):
        return Intake(parsed, content=raw, resource=document)
    return Intake(parsed, content=raw)
