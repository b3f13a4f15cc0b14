"""The worker's internal listener for HAPI's notifications (aiohttp, on the worker's port).

``PUT|POST|DELETE {notify_url path}/{tenant}/{Type}/{id}`` — what HAPI's REST-hook channel sends
for a subscription whose endpoint is ``{notify_url}/{tenant}``. Answers are OperationOutcomes:
200 taken; 400 malformed; 401 wrong secret, unknown tenant or replayed (nothing emitted); 413
too large; 503 PostgreSQL unavailable (HAPI retries; nothing was stored). The port is the
worker's, which no ingress routes; the secret is the second lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.errors import MalformedBody
from ehr.core.intake import parse_json
from ehr.platform.fhir_changes.metrics import NOTIFICATIONS
from ehr.platform.fhir_changes.notifications import NotificationError
from ehr.platform.fhir_changes.service import (
    NotificationRefused,
    NotificationReplayed,
    take_notification,
)
from ehr.platform.fhir_changes.subscriptions import HOOK_SECRET_HEADER

__all__ = ["add_notification_routes", "notification_route"]

logger = structlog.get_logger(__name__)

_FHIR_JSON: Final = "application/fhir+json"


def notification_route(settings: Settings) -> str:
    """The aiohttp route template of notifications under ``notify_url``'s path."""
    path = urlsplit(settings.fhir_changes.notify_url).path.rstrip("/")
    return f"{path}/{{tenant}}/{{resource_type}}/{{resource_id}}"


def _outcome(status: int, code: str, diagnostics: str) -> web.Response:
    severity = "information" if status < 400 else "error"
    document = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return web.Response(status=status, text=json.dumps(document), content_type=_FHIR_JSON)


async def _body(request: web.Request) -> Mapping[str, Any] | None:
    if request.method == "DELETE":
        return None
    raw = await request.read()  # more than client_max_size: HTTPRequestEntityTooLarge
    try:
        parsed = parse_json(raw)  # UTF-8, nesting depth, finite numbers
    except MalformedBody as exc:
        raise NotificationError(exc.detail or "the body is not JSON") from None
    if not isinstance(parsed, Mapping):
        raise NotificationError("the body is not a FHIR resource")
    return parsed


def add_notification_routes(
    app: web.Application, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Serve HAPI's notifications on ``app`` (its ``client_max_size`` should be
    ``settings.fhir_changes.max_body_bytes``)."""

    async def notified(request: web.Request) -> web.Response:
        info = request.match_info
        try:
            taken = await take_notification(
                sessions,
                settings,
                tenant=info["tenant"],
                resource_type=info["resource_type"],
                resource_id=info["resource_id"],
                method=request.method,
                secret=request.headers.get(HOOK_SECRET_HEADER),
                read_body=lambda: _body(request),
                if_match=request.headers.get("If-Match"),
            )
        except NotificationRefused:
            return _outcome(401, "security", "Not a notification this service accepts")
        except NotificationReplayed:
            return _outcome(401, "duplicate", "This change was already taken; nothing emitted")
        except NotificationError as exc:
            NOTIFICATIONS.labels(outcome="malformed").inc()
            return _outcome(400, "invalid", str(exc))
        except web.HTTPRequestEntityTooLarge:
            NOTIFICATIONS.labels(outcome="malformed").inc()
            limit = settings.fhir_changes.max_body_bytes
            return _outcome(413, "too-costly", f"A notification is at most {limit} bytes")
        except (SQLAlchemyError, OSError) as exc:
            logger.error("fhir_changes.notification.unstored", error=type(exc).__name__)
            return _outcome(503, "transient", "The change could not be stored; retry")
        return _outcome(200, "informational", f"Taken: {', '.join(taken.emitted)}")

    route = notification_route(settings)
    for method in ("PUT", "POST", "DELETE"):
        app.router.add_route(method, route, notified)
