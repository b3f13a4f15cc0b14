"""Intake: what every door refuses before any work starts (bodies, media types, request targets).

Public surface: :func:`parse_json` / :func:`read_json` (strict JSON: UTF-8, nesting depth, finite
numbers, Unicode scalar values without NUL), :func:`require_media_type` (415),
:class:`IntakeRoute` (the route class of every router), :class:`RequestTargetMiddleware`,
:func:`is_clean_text` / :func:`clean_text` for values that must be storable as they are.
"""

from ehr.core.intake.limits import (
    DEFAULT_MAX_JSON_DEPTH,
    OFFLOAD_JSON_BYTES,
    check_text,
    clean_text,
    is_clean_text,
    json_pointer,
    parse_json,
)
from ehr.core.intake.media import (
    JSON_MEDIA_TYPES,
    check_request_target,
    media_type_of,
    require_media_type,
)
from ehr.core.intake.routes import IntakeRoute, RequestTargetMiddleware, max_json_depth, read_json
from ehr.core.intake.types import IsoAwareDateTime, IsoDate, IsoDateTime

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "JSON_MEDIA_TYPES",
    "OFFLOAD_JSON_BYTES",
    "IntakeRoute",
    "IsoAwareDateTime",
    "IsoDate",
    "IsoDateTime",
    "RequestTargetMiddleware",
    "check_request_target",
    "check_text",
    "clean_text",
    "is_clean_text",
    "json_pointer",
    "max_json_depth",
    "media_type_of",
    "parse_json",
    "read_json",
    "require_media_type",
]
