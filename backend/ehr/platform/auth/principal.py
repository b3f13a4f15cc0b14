"""Who is calling: the authenticated principal every protected route receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from ehr.platform.auth.permissions import Permission, permissions_for

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user (access token) or service client (API key).

    The tenant comes from the verified credential, never from a header the caller chooses.
    """

    kind: Literal["user", "api_key", "smart_client"]
    # User id, API key id, or a SMART client's id.
    subject: uuid.UUID
    # Tenant slug (= HAPI partition name) and id.
    tenant: str
    tenant_id: uuid.UUID
    roles: frozenset[str]
    scopes: frozenset[str] = field(default_factory=frozenset)
    # Access token id (jti) for users; None for API keys.
    token_id: str | None = None
    username: str | None = None
    # FHIR Patient id for the portal role (compartment), else None.
    patient_id: str | None = None
    # For API keys: the permissions the key was granted (explicit, not from roles).
    key_permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def permissions(self) -> frozenset[str]:
        """Permissions this principal holds: from its roles, plus an API key's explicit grants."""
        return frozenset(str(p) for p in permissions_for(self.roles)) | self.key_permissions

    @property
    def is_system_client(self) -> bool:
        """A machine acting for itself (API key, SMART Backend Services client): ``system/``
        scopes, no user, no patient context."""
        return self.kind in ("api_key", "smart_client")

    def has(self, permission: Permission | str) -> bool:
        return str(permission) in self.permissions
