"""``/api/audit``: search and export the caller's tenant's audit trail (``audit:view``).

Both routes are themselves audited (``audit:search`` / ``audit:export``): reading the audit trail
is an access to data about patients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ehr.core.dependencies import ResourcesDep, SessionDep, SettingsDep
from ehr.core.error_handlers import FHIR_JSON, problem_responses
from ehr.core.errors import RequestValidationFailed
from ehr.core.intake import IntakeRoute, IsoAwareDateTime
from ehr.platform.audit.dependencies import PhiAudit
from ehr.platform.audit.export import stream_bundle, stream_csv, stream_ndjson
from ehr.platform.audit.schemas import (
    ACTION_PATTERN,
    ACTOR_ID_PATTERN,
    CURSOR_PATTERN,
    PATIENT_ID_PATTERN,
    AuditFilters,
    AuditPage,
    AuditRecordOut,
    ExportFormat,
    decode_cursor,
    encode_cursor,
)
from ehr.platform.audit.service import search_records, stream_records
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["AUDIT_PATH", "router"]

AUDIT_PATH: Final = "/api/audit"

router = APIRouter(prefix=AUDIT_PATH, tags=["audit"], route_class=IntakeRoute)

AuditViewer = Annotated[Principal, RequirePermission(Permission.AUDIT_VIEW)]

_MEDIA_TYPES: Final = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.FHIR: FHIR_JSON,
}
_EXTENSIONS: Final = {
    ExportFormat.CSV: "csv",
    ExportFormat.NDJSON: "ndjson",
    ExportFormat.FHIR: "json",
}


def audit_filters(
    principal: AuditViewer,
    user: Annotated[
        str | None,
        Query(
            pattern=ACTOR_ID_PATTERN, max_length=64, description="Actor id (user or API key id)."
        ),
    ] = None,
    patient: Annotated[
        str | None, Query(pattern=PATIENT_ID_PATTERN, max_length=64, description="FHIR Patient id.")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            pattern=ACTION_PATTERN, max_length=64, description="Action code, e.g. `patient:read`."
        ),
    ] = None,
    since: Annotated[
        IsoAwareDateTime | None, Query(description="From this instant (inclusive, with offset).")
    ] = None,
    until: Annotated[
        IsoAwareDateTime | None, Query(description="Before this instant (exclusive, with offset).")
    ] = None,
) -> AuditFilters:
    """The filters, bound to the caller's own tenant (there is no tenant parameter)."""
    if since is not None and until is not None and since >= until:
        raise RequestValidationFailed("`since` must be before `until`.")
    return AuditFilters(
        tenant=principal.tenant,
        user=user,
        patient=patient,
        action=action,
        since=since,
        until=until,
    )


FiltersDep = Annotated[AuditFilters, Depends(audit_filters)]


@router.get(
    "/records",
    response_model=AuditPage,
    responses=problem_responses(401, 403, 422, 503),
)
async def search_audit_records(
    filters: FiltersDep,
    settings: SettingsDep,
    session: SessionDep,
    audit: PhiAudit,
    cursor: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, max_length=64, description="From a previous page."),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="Page size.")] = None,
) -> AuditPage:
    """The tenant's audit records matching the filters, newest first (by time, across the
    tenant's shard chains); pages follow the cursor."""
    size = limit if limit is not None else settings.audit.default_page_size
    if size > settings.audit.max_page_size:
        raise RequestValidationFailed(f"`limit` may be at most {settings.audit.max_page_size}.")
    after = decode_cursor(cursor) if cursor is not None else None
    rows, next_position = await search_records(session, filters, after=after, limit=size)
    audit.access("audit:search", patient_id=filters.patient, details={"filters": filters.echo()})
    return AuditPage(
        items=[AuditRecordOut.model_validate(row) for row in rows],
        limit=size,
        next_cursor=encode_cursor(next_position) if next_position is not None else None,
    )


@router.get(
    "/export",
    responses={
        200: {
            "description": "The records, oldest first, streamed.",
            "content": {media: {} for media in _MEDIA_TYPES.values()},
        },
        **problem_responses(401, 403, 422, 503),
    },
    response_class=StreamingResponse,
)
async def export_audit_records(
    filters: FiltersDep,
    resources: ResourcesDep,
    audit: PhiAudit,
    format: Annotated[
        ExportFormat, Query(description="csv, ndjson or fhir (Bundle of AuditEvent).")
    ] = ExportFormat.NDJSON,
) -> StreamingResponse:
    """Every matching record of the tenant (oldest first) as CSV, NDJSON or a FHIR Bundle."""
    audit.access(
        "audit:export",
        patient_id=filters.patient,
        details={"format": format.value, "filters": filters.echo()},
    )
    records = stream_records(resources.sessionmaker, filters)
    body: AsyncIterator[str]
    if format is ExportFormat.CSV:
        body = stream_csv(records)
    elif format is ExportFormat.NDJSON:
        body = stream_ndjson(records)
    else:
        body = stream_bundle(records)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = f"audit-{filters.tenant}-{stamp}.{_EXTENSIONS[format]}"
    return StreamingResponse(
        body,
        media_type=_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
