"""EHR launch: the frontend asks the API for a ``launch`` for the patient (and encounter) on
screen and one app; the app is opened at its launch URL with ``iss`` and ``launch``; the app
sends ``launch`` to ``/oauth2/authorize``, where it binds the authorization to that user, patient
and encounter. Only the SHA-256 of the launch is stored; it is single use and short-lived
(``smart.launch_ttl_seconds``)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.db.models import SmartLaunch
from ehr.core.errors import NotFoundError, RequestValidationFailed
from ehr.platform.smart.app_tokens import fhir_base
from ehr.platform.smart.authorizations import redirect_with, token_hash
from ehr.platform.smart.clients import APP_KINDS, find_client

__all__ = ["MintedLaunch", "mint_launch"]


@dataclass(frozen=True, slots=True)
class MintedLaunch:
    launch: str = field(repr=False)
    iss: str
    expires_at: datetime
    expires_in: int
    # The app's launch URL with iss and launch, when the app registered one.
    launch_url: str | None


async def mint_launch(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    client_id: str,
    patient: str,
    encounter: str | None,
) -> MintedLaunch:
    """A launch of ``client_id`` (an app of the tenant registered for EHR launch) for the user."""
    client = await find_client(session, client_id)
    if (
        client is None
        or client.tenant_id != tenant_id
        or client.kind not in APP_KINDS
        or client.disabled_at is not None
    ):
        raise NotFoundError(f"No enabled SMART app {client_id!r} in this tenant")
    if "ehr" not in client.launch_types:
        raise RequestValidationFailed("This app is not registered for EHR launch")
    launch = secrets.token_urlsafe(32)
    ttl = settings.smart.launch_ttl_seconds
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    session.add(
        SmartLaunch(
            token_hash=token_hash(launch),
            tenant_id=tenant_id,
            client_id=client.id,
            user_id=user_id,
            patient=patient,
            encounter=encounter,
            expires_at=expires,
        )
    )
    await session.flush()
    iss = fhir_base(settings)
    url = (
        redirect_with(client.launch_uri, {"iss": iss, "launch": launch})
        if client.launch_uri
        else None
    )
    return MintedLaunch(launch=launch, iss=iss, expires_at=expires, expires_in=ttl, launch_url=url)
