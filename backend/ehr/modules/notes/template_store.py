"""A tenant's own note templates (table ``note_templates``) next to the shipped ones.

The rules: a tenant's key is never a shipped key (409 ``note_template_key_reserved``: a tenant
adds templates, it does not silently change what ``soap`` means for its clinicians); the LOINC
type is one of :data:`~ehr.modules.notes.templates.NOTE_TYPES` (422 ``note_template_invalid``;
the display is LOINC's, set here); sections are 1 to 40 distinct headings of ≤ 120 characters
(the schema bounds them, the table's checks too). A note created from a template keeps the
template's type, sections and co-signature rule as they were that day: later edits or a
delete of the template never touch existing notes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import NoteTemplate
from ehr.modules.notes.errors import (
    NoteTemplateInvalid,
    NoteTemplateKeyReservedError,
    NoteTemplateUnknown,
)
from ehr.modules.notes.schemas import NoteTemplateIn
from ehr.modules.notes.templates import NOTE_TYPES, TEMPLATES, NoteTemplateDef

__all__ = [
    "check_template",
    "definition_of",
    "delete_template",
    "get_template",
    "list_templates",
    "put_template",
    "resolve_template",
    "templates_for",
]


def check_template(key: str, payload: NoteTemplateIn) -> str:
    """The LOINC display of the template's type; raise if the key or the template is refused."""
    if key in TEMPLATES:
        raise NoteTemplateKeyReservedError(
            "This key is a shipped template's; choose another key.", extra={"key": key}
        )
    display = NOTE_TYPES.get(payload.type_code)
    if display is None:
        raise NoteTemplateInvalid(
            "The LOINC code is not one of the allowed note types.",
            extra={"reason": "type_not_allowed", "allowed": sorted(NOTE_TYPES)},
        )
    if len({s.casefold() for s in payload.sections}) != len(payload.sections):
        raise NoteTemplateInvalid(
            "The sections must be distinct.", extra={"reason": "sections_repeat"}
        )
    return display


def definition_of(row: NoteTemplate) -> NoteTemplateDef:
    """The stored template as the definition a note is drafted from."""
    return NoteTemplateDef(
        kind=row.key,
        title=row.title,
        loinc_code=row.type_code,
        loinc_display=row.type_display,
        sections=tuple(row.sections),
        requires_cosign=row.requires_cosign,
        shipped=False,
    )


async def list_templates(session: AsyncSession, tenant_id: uuid.UUID) -> Sequence[NoteTemplate]:
    """The tenant's own templates, by key."""
    rows = await session.scalars(
        select(NoteTemplate).where(NoteTemplate.tenant_id == tenant_id).order_by(NoteTemplate.key)
    )
    return rows.all()


async def get_template(
    session: AsyncSession, tenant_id: uuid.UUID, key: str
) -> NoteTemplate | None:
    """The tenant's template under ``key`` (None: it has none)."""
    return await session.scalar(
        select(NoteTemplate).where(NoteTemplate.tenant_id == tenant_id, NoteTemplate.key == key)
    )


async def put_template(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    key: str,
    payload: NoteTemplateIn,
    *,
    actor: str,
) -> tuple[NoteTemplate, bool]:
    """Create or replace the tenant's template (one upsert: two admins at once → the last
    write wins, never a duplicate); returns it and whether it was created."""
    display = check_template(key, payload)
    existed = await get_template(session, tenant_id, key) is not None
    now = dt.datetime.now(dt.UTC)
    values = {
        "title": payload.title,
        "type_code": payload.type_code,
        "type_display": display,
        "sections": list(payload.sections),
        "requires_cosign": payload.requires_cosign,
        "updated_by": actor,
        "updated_at": now,
    }
    statement = (
        insert(NoteTemplate)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, key=key, created_by=actor, **values)
        .on_conflict_do_update(index_elements=["tenant_id", "key"], set_=values)
        .returning(NoteTemplate)
        .execution_options(populate_existing=True)
    )
    row = (await session.scalars(statement)).one()
    return row, not existed


async def delete_template(session: AsyncSession, tenant_id: uuid.UUID, key: str) -> bool:
    """Remove the tenant's template (existing notes keep what they were drafted from)."""
    result = await session.execute(
        delete(NoteTemplate)
        .where(NoteTemplate.tenant_id == tenant_id, NoteTemplate.key == key)
        .returning(NoteTemplate.id)
    )
    return result.first() is not None


async def templates_for(session: AsyncSession, tenant_id: uuid.UUID) -> list[NoteTemplateDef]:
    """What the tenant's clinicians may start a note from: the shipped templates, then its own."""
    own = [definition_of(row) for row in await list_templates(session, tenant_id)]
    return [*TEMPLATES.values(), *own]


async def resolve_template(
    session: AsyncSession, tenant_id: uuid.UUID, key: str
) -> NoteTemplateDef:
    """The template a note of ``kind`` = ``key`` is drafted from; 422 if there is none."""
    shipped = TEMPLATES.get(key)
    if shipped is not None:
        return shipped
    row = await get_template(session, tenant_id, key)
    if row is None:
        raise NoteTemplateUnknown(
            "No shipped or tenant template has this key.", extra={"kind": key}
        )
    return definition_of(row)
