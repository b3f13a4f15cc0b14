"""Writing audit records: the ``PhiAudit`` dependency and :func:`record_security_event`.

``get_phi_audit`` (behind ``PhiAudit``) resolves the principal and the request facts, yields an
:class:`~ehr.platform.audit.trail.AuditTrail`, and — after the handler returns, before the
response is sent (``scope="function"``) — writes one record per noted access in its OWN
statement (one ``audit_append`` call in autocommit, committed when it returns; not the request's
session: a rollback of the business work does not erase the audit, and a
failed audit write is known before the response). If the handler raised after noting accesses,
the records say ``denied`` (401/403) or ``failure`` with the status, and the error goes on.
If the write fails the request fails with :class:`~ehr.core.errors.AuditUnavailable` (503): no
unrecorded PHI access.

Source IP: the ASGI client address. ``X-Forwarded-For`` is never read here; behind a proxy the
server resolves it for trusted proxies only (uvicorn ``--forwarded-allow-ips``, which ``ehr
serve`` enables with ``proxy_headers=True``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

import structlog
from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.dependencies import ResourcesDep
from ehr.core.errors import AppError, AuditUnavailable, RequestValidationFailed
from ehr.core.request_context import request_id_var
from ehr.platform.audit.appender import ChainContentionError, appender_for
from ehr.platform.audit.chain import AuditEntry
from ehr.platform.audit.trail import (
    BREAK_GLASS_PURPOSE,
    DEFAULT_PURPOSE_OF_USE,
    PURPOSE_OF_USE_CODES,
    SYSTEM_TENANT,
    AccessNote,
    ActorType,
    AuditTrail,
    Outcome,
)
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

__all__ = [
    "PURPOSE_OF_USE_HEADER",
    "get_phi_audit",
    "parse_purpose_of_use",
    "record_principal_event",
    "record_security_event",
    "trail_for",
    "write_trail",
    "written_after",
]

logger = structlog.get_logger(__name__)

PURPOSE_OF_USE_HEADER: Final = "X-Purpose-Of-Use"
# Column sizes of ehr_app.audit_log.
_MAX_USER_AGENT: Final = 512
_MAX_SOURCE_IP: Final = 64
_MAX_REQUEST_ID: Final = 128
_MAX_ID: Final = 64
_MAX_REASON: Final = 1000
# The audit write gives up (→ 503) rather than hold the request when the table is locked.
_LOCK_TIMEOUT_MS: Final = 3000
_STATEMENT_TIMEOUT_MS: Final = 5000


def parse_purpose_of_use(value: str | None) -> str:
    """The purpose of use stated in ``X-Purpose-Of-Use`` (default ``TREAT``); 422 if unknown."""
    if value is None or not value.strip():
        return DEFAULT_PURPOSE_OF_USE
    code = value.strip().upper()
    if code not in PURPOSE_OF_USE_CODES:
        raise RequestValidationFailed(
            f"{PURPOSE_OF_USE_HEADER} must be one of {', '.join(sorted(PURPOSE_OF_USE_CODES))}"
        )
    return code


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def _client_ip(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return _clip(request.client.host, _MAX_SOURCE_IP)


def _user_agent(request: Request | None) -> str | None:
    if request is None:
        return None
    return _clip(request.headers.get("user-agent"), _MAX_USER_AGENT)


def _outcome_of(status: int) -> Outcome:
    return "denied" if status in (401, 403) else "failure"


def _success_status(request: Request) -> int:
    status = getattr(request.scope.get("route"), "status_code", None)
    return status if isinstance(status, int) else 200


async def _append(
    sessionmaker: async_sessionmaker[AsyncSession], entries: Sequence[AuditEntry]
) -> None:
    """Append in one statement of its own, outside the request's transaction (group-committed
    with concurrent appends of the tenant: :mod:`ehr.platform.audit.appender`); any failure is
    :class:`AuditUnavailable`."""
    tenant = entries[0].tenant
    appender = appender_for(
        sessionmaker, lock_timeout_ms=_LOCK_TIMEOUT_MS, statement_timeout_ms=_STATEMENT_TIMEOUT_MS
    )
    try:
        await appender.append(entries)
    except (
        SQLAlchemyError,
        OSError,
        TimeoutError,
        ValueError,
        TypeError,
        ChainContentionError,
    ) as exc:
        # No statement text or parameters: they may hold ids we keep out of logs.
        logger.error(
            "audit.write.failed", tenant=tenant, records=len(entries), error=type(exc).__name__
        )
        raise AuditUnavailable(
            "The access could not be recorded in the audit trail; nothing was returned."
        ) from exc


def _entry(
    trail: AuditTrail, note: AccessNote, outcome: Outcome, http_status: int | None
) -> AuditEntry:
    details = dict(note.details) if note.details is not None else None
    flagged = bool(details.pop("break_glass", False)) if details is not None else False
    noted_reason = details.pop("break_glass_reason", None) if details is not None else None
    break_glass = trail.break_glass or note.break_glass or flagged is True
    reason = note.break_glass_reason or noted_reason or trail.break_glass_reason
    return AuditEntry(
        tenant=trail.tenant,
        actor_type=trail.actor_type,
        actor_id=_clip(trail.actor_id, _MAX_ID),
        actor_roles=trail.actor_roles,
        action=note.action,
        outcome=outcome,
        resource_type=_clip(note.resource_type, _MAX_ID),
        resource_id=_clip(note.resource_id, _MAX_ID),
        patient_id=_clip(note.patient_id, _MAX_ID),
        http_status=http_status,
        source_ip=trail.source_ip,
        user_agent=trail.user_agent,
        request_id=trail.request_id,
        purpose_of_use=BREAK_GLASS_PURPOSE if break_glass else trail.purpose_of_use,
        break_glass=break_glass,
        break_glass_reason=_clip(str(reason), _MAX_REASON) if break_glass and reason else None,
        details=details or None,
    )


def _entries(trail: AuditTrail, outcome: Outcome, http_status: int | None) -> list[AuditEntry]:
    return [_entry(trail, note, outcome, http_status) for note in trail.notes]


async def write_trail(
    sessionmaker: async_sessionmaker[AsyncSession],
    trail: AuditTrail,
    *,
    outcome: Outcome,
    http_status: int | None,
) -> None:
    """Write one record per note of ``trail`` (nothing when it has none)."""
    if trail.notes:
        await _append(sessionmaker, _entries(trail, outcome, http_status))


def trail_for(principal: Principal, request: Request) -> AuditTrail:
    """A trail carrying the principal and the request facts."""
    return AuditTrail(
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=tuple(sorted(principal.roles)),
        source_ip=_client_ip(request),
        user_agent=_user_agent(request),
        request_id=_clip(request_id_var.get(), _MAX_REQUEST_ID),
        purpose_of_use=parse_purpose_of_use(request.headers.get(PURPOSE_OF_USE_HEADER)),
    )


@asynccontextmanager
async def written_after(
    sessionmaker: async_sessionmaker[AsyncSession], trail: AuditTrail, request: Request
) -> AsyncIterator[AuditTrail]:
    """Yield ``trail``; write it when the block ends: ``success`` with the route's status, or
    ``denied``/``failure`` with the error's status when the block raises (the error goes on)."""
    try:
        yield trail
    except AppError as exc:
        await write_trail(
            sessionmaker, trail, outcome=_outcome_of(exc.status_code), http_status=exc.status_code
        )
        raise
    except Exception as exc:
        status = getattr(exc, "status_code", 500)
        status = status if isinstance(status, int) else 500
        await write_trail(sessionmaker, trail, outcome=_outcome_of(status), http_status=status)
        raise
    await write_trail(sessionmaker, trail, outcome="success", http_status=_success_status(request))


async def get_phi_audit(
    request: Request,
    principal: Annotated[Principal, Depends(get_current_principal)],
    resources: ResourcesDep,
) -> AsyncIterator[AuditTrail]:
    """Yield the request's trail; write it when the handler finishes (see the module doc)."""
    async with written_after(
        resources.sessionmaker, trail_for(principal, request), request
    ) as trail:
        yield trail


async def record_security_event(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    action: str,
    outcome: Outcome,
    tenant: str = SYSTEM_TENANT,
    actor_type: ActorType = "system",
    actor_id: str | None = None,
    actor_roles: Sequence[str] = (),
    request: Request | None = None,
    http_status: int | None = None,
    purpose_of_use: str | None = None,
    break_glass: bool = False,
    break_glass_reason: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    patient_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one security event (login success/failure, lockout, break-glass, key revoked...).

    ``action`` e.g. ``"auth:login"``, ``"auth:mfa"``, ``"break_glass:assert"``; ``tenant`` the
    tenant's slug, or ``"_system"`` when there is none (unknown tenant). Source IP, user agent and
    request id come from ``request`` (and the request-id context) when given. ``details``: ids
    and codes only — never a password, token or PHI. Raises :class:`AuditUnavailable` if the
    record cannot be written (callers decide whether the operation may proceed; break-glass may
    not).
    """
    entry = AuditEntry(
        tenant=tenant,
        actor_type=actor_type,
        actor_id=_clip(actor_id, _MAX_ID),
        actor_roles=tuple(actor_roles),
        action=action,
        outcome=outcome,
        resource_type=_clip(resource_type, _MAX_ID),
        resource_id=_clip(resource_id, _MAX_ID),
        patient_id=_clip(patient_id, _MAX_ID),
        http_status=http_status,
        source_ip=_client_ip(request),
        user_agent=_user_agent(request),
        request_id=_clip(request_id_var.get(), _MAX_REQUEST_ID),
        purpose_of_use=purpose_of_use,
        break_glass=break_glass,
        break_glass_reason=_clip(break_glass_reason, _MAX_REASON),
        details=details,
    )
    await _append(sessionmaker, [entry])


async def record_principal_event(
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    request: Request,
    *,
    action: str,
    resource_type: str,
    resource_id: str,
    http_status: int = 200,
    details: dict[str, Any] | None = None,
) -> None:
    """A successful administrative write by ``principal`` (``webhook:create``,
    ``hl7v2:sender_register``…) as a security event: who, in which tenant, on what."""
    await record_security_event(
        sessionmaker,
        action=action,
        outcome="success",
        tenant=principal.tenant,
        actor_type=principal.kind,
        actor_id=str(principal.subject),
        actor_roles=sorted(principal.roles),
        request=request,
        http_status=http_status,
        resource_type=resource_type,
        resource_id=resource_id,
        details=details,
    )
