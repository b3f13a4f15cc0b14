"""Media types a door takes (415 otherwise), and the request target's own checks."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final
from urllib.parse import unquote_to_bytes

from ehr.core.errors import BadRequestError, UnsupportedMediaType

__all__ = ["JSON_MEDIA_TYPES", "check_request_target", "media_type_of", "require_media_type"]

# The business API and CDS Hooks take JSON (RFC 8259 registers application/json; +json suffixes
# (RFC 6839) are the same syntax).
JSON_MEDIA_TYPES: Final = frozenset({"application/json"})


def media_type_of(content_type: str | None) -> str:
    """``type/subtype`` of a Content-Type header value, lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(
    content_type: str | None,
    allowed: Collection[str] = JSON_MEDIA_TYPES,
    *,
    allow_json_suffix: bool = True,
) -> str:
    """The body's media type, or 415 naming what the route takes.

    A missing Content-Type is refused too: the caller must say what it sends. A ``charset``
    parameter other than UTF-8 is refused (JSON exchanged between systems is UTF-8, RFC 8259 §8.1).
    """
    media = media_type_of(content_type)
    accepted = media in allowed or (allow_json_suffix and media.endswith("+json"))
    if not accepted:
        expected = " or ".join(sorted(allowed))
        shown = media or "no Content-Type"
        raise UnsupportedMediaType(
            f"This route takes {expected}, not {shown}", extra={"accepted": sorted(allowed)}
        )
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            raise UnsupportedMediaType("JSON bodies must be UTF-8")
    return media


def _decoded(component: bytes) -> bytes:
    return unquote_to_bytes(component.replace(b"+", b" "))


def check_request_target(raw_path: bytes, query_string: bytes) -> None:
    """400 when the path or query, percent-decoded, is not UTF-8 or holds NUL.

    Such values cannot be stored in PostgreSQL text or forwarded to HAPI; refusing them here keeps
    every route from meeting them (other control characters are each route's schema's concern).
    """
    for label, component in (("path", raw_path), ("query", query_string)):
        if not component:
            continue
        decoded = _decoded(component) if label == "query" else unquote_to_bytes(component)
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(
                f"The request {label} is not UTF-8 once percent-decoded"
            ) from None
        if "\x00" in text:
            raise BadRequestError(f"The request {label} contains a NUL character")
