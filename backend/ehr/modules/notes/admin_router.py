"""``/api/note-templates``: a tenant's administrators manage its own note templates
(``tenant:admin``). Shipped templates are code: they are listed to clinicians with the tenant's
(``GET /api/patients/{id}/notes/templates``) and cannot be replaced or deleted here.

Every write is a security event on the audit trail (``note_template:put`` /
``note_template:delete``, the key and whether it was created — no template text), written
before the request's transaction commits, like the medication-safety policy: if the audit
cannot be written the change is rolled back (503), never an unrecorded change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response, status

from ehr.core.db.models import NoteTemplate
from ehr.core.dependencies import ResourcesDep, SessionDep
from ehr.core.error_handlers import problem_responses
from ehr.core.intake import IntakeRoute
from ehr.modules.notes.errors import NoteTemplateKeyReservedError, NoteTemplateNotFoundError
from ehr.modules.notes.schemas import (
    NoteTemplateAdmin,
    NoteTemplateAdminList,
    NoteTemplateIn,
    NoteTemplateKey,
)
from ehr.modules.notes.template_store import (
    delete_template,
    get_template,
    list_templates,
    put_template,
)
from ehr.modules.notes.templates import TEMPLATES
from ehr.platform.audit.dependencies import record_security_event
from ehr.platform.auth.authorization import RequirePermission
from ehr.platform.auth.permissions import Permission
from ehr.platform.auth.principal import Principal

__all__ = ["admin_router"]

admin_router = APIRouter(prefix="/api/note-templates", tags=["admin"], route_class=IntakeRoute)

TenantAdmin = Annotated[Principal, RequirePermission(Permission.TENANT_ADMIN)]


def _actor(principal: Principal) -> str:
    return f"{principal.kind}:{principal.subject}"


def _shown(row: NoteTemplate) -> NoteTemplateAdmin:
    return NoteTemplateAdmin(
        key=row.key,
        title=row.title,
        type_code=row.type_code,
        type_display=row.type_display,
        sections=list(row.sections),
        requires_cosign=row.requires_cosign,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def _audit(
    resources: ResourcesDep,
    principal: Principal,
    request: Request,
    *,
    action: str,
    http_status: int,
    details: dict[str, object],
) -> None:
    await record_security_event(
        resources.sessionmaker,
        action=action,
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=http_status,
        resource_type="NoteTemplate",
        details=details,
    )


@admin_router.get(
    "", response_model=NoteTemplateAdminList, responses=problem_responses(401, 403, 503)
)
async def list_tenant_templates(
    principal: TenantAdmin, session: SessionDep
) -> NoteTemplateAdminList:
    """The tenant's own templates, by key (the shipped ones are not listed here)."""
    rows = await list_templates(session, principal.tenant_id)
    return NoteTemplateAdminList(items=[_shown(row) for row in rows])


@admin_router.get(
    "/{key}", response_model=NoteTemplateAdmin, responses=problem_responses(401, 403, 404, 503)
)
async def read_tenant_template(
    key: NoteTemplateKey, principal: TenantAdmin, session: SessionDep
) -> NoteTemplateAdmin:
    """One of the tenant's templates (404 `note_template_not_found` otherwise)."""
    row = await get_template(session, principal.tenant_id, key)
    if row is None:
        raise NoteTemplateNotFoundError("The tenant has no template with this key")
    return _shown(row)


@admin_router.put(
    "/{key}",
    response_model=NoteTemplateAdmin,
    responses={
        **problem_responses(401, 403, 409, 413, 422, 503),
        201: {"model": NoteTemplateAdmin, "description": "Created"},
    },
)
async def put_tenant_template(
    key: NoteTemplateKey,
    payload: NoteTemplateIn,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
    response: Response,
) -> NoteTemplateAdmin:
    """Create (201) or replace (200) the tenant's template under `key`.

    A shipped key (`progress`, `soap`, ...) → 409 `note_template_key_reserved`; a LOINC type
    outside the allowed note types, or repeated sections → 422 `note_template_invalid`.
    Notes already drafted from the template keep what they were drafted from.
    """
    row, created = await put_template(
        session, principal.tenant_id, key, payload, actor=_actor(principal)
    )
    shown = _shown(row)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    await _audit(
        resources,
        principal,
        request,
        action="note_template:put",
        http_status=code,
        details={"key": key, "created": created, "type_code": payload.type_code},
    )
    response.status_code = code
    return shown


@admin_router.delete(
    "/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 503),
)
async def delete_tenant_template(
    key: NoteTemplateKey,
    principal: TenantAdmin,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> Response:
    """Remove the tenant's template (notes drafted from it are unchanged). A shipped key → 409
    `note_template_key_reserved`; no such template → 404 `note_template_not_found`."""
    if key in TEMPLATES:
        raise NoteTemplateKeyReservedError(
            "Shipped templates cannot be deleted.", extra={"key": key}
        )
    if not await delete_template(session, principal.tenant_id, key):
        raise NoteTemplateNotFoundError("The tenant has no template with this key")
    await _audit(
        resources,
        principal,
        request,
        action="note_template:delete",
        http_status=status.HTTP_204_NO_CONTENT,
        details={"key": key},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
