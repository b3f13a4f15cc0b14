"""Versioned writes: ``If-Match`` required where a kind requires it, and checked against the
version just read before anything is sent (HAPI checks it again, so a concurrent writer still
loses with 412 — a lost update is impossible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr.fhir import FhirPreconditionFailed, bare_version, version_id
from ehr.modules.clinical_record.refusals import IfMatchRequired

__all__ = ["check_version", "require_if_match"]


def require_if_match(
    if_match: str | None, detail: str = "Send If-Match with the version you read (its ETag)."
) -> str:
    """``if_match`` itself, or 428 ``if_match_required`` when the caller sent none."""
    if if_match is None:
        raise IfMatchRequired(detail)
    return if_match


def check_version(
    current: Mapping[str, Any],
    if_match: str,
    *,
    detail: str,
    strict: bool = False,
) -> None:
    """412 ``fhir_precondition_failed`` (``extra.current_version``) unless ``if_match`` (an
    ETag ``W/"3"`` or the bare id) names ``current``'s version. The code is the one HAPI's own
    refusal of a stale version has, so a stale write is one code whichever side catches it.

    A resource without ``meta.versionId`` passes unless ``strict`` (then it matches nothing).
    """
    version = version_id(current)
    if version is None and not strict:
        return
    if bare_version(if_match) != (version or ""):
        raise FhirPreconditionFailed(detail, extra={"current_version": version or ""})
