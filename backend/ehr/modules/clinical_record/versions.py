"""Versioned writes: ``If-Match`` required where a kind requires it, and checked against the
version just read before anything is sent (HAPI checks it again, so a concurrent writer still
loses with 412 — a lost update is impossible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr.core.errors import AppError
from ehr.fhir import FhirPreconditionFailed, bare_version, version_id
from ehr.modules.clinical_record.refusals import IfMatchRequired

__all__ = ["check_version", "require_if_match"]


def require_if_match(
    if_match: str | None,
    detail: str = "Send If-Match with the version you read (its ETag).",
    *,
    refusal: type[IfMatchRequired] = IfMatchRequired,
) -> str:
    """``if_match`` itself, or 428 (``refusal``: a kind whose stable code predates the shared
    one keeps it) when the caller sent none."""
    if if_match is None:
        raise refusal(detail)
    return if_match


def check_version(
    current: Mapping[str, Any],
    if_match: str,
    *,
    detail: str,
    refusal: type[AppError] = FhirPreconditionFailed,
    strict: bool = False,
) -> None:
    """412 (``refusal``, ``extra.current_version``) unless ``if_match`` (an ETag ``W/"3"`` or
    the bare id) names ``current``'s version.

    A resource without ``meta.versionId`` passes unless ``strict`` (then it matches nothing).
    """
    version = version_id(current)
    if version is None and not strict:
        return
    if bare_version(if_match) != (version or ""):
        raise refusal(detail, extra={"current_version": version or ""})
