"""Request and response bodies of the authentication and API-key routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ApiKeyCreateRequest",
    "ApiKeyCreated",
    "ApiKeyRotateRequest",
    "ApiKeySummary",
    "Jwks",
    "LoginRequest",
    "MeResponse",
    "MfaChallengeResponse",
    "MfaConfirmRequest",
    "MfaConfirmResponse",
    "MfaEnrolResponse",
    "MfaLoginRequest",
    "RefreshRequest",
    "TokenResponse",
]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False)


class LoginRequest(BaseModel):
    model_config = _STRICT

    tenant: str = Field(min_length=1, max_length=63, description="Tenant slug.")
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class MfaLoginRequest(BaseModel):
    model_config = _STRICT

    mfa_token: str = Field(min_length=1, max_length=4096, description="From the login answer.")
    code: str | None = Field(default=None, min_length=6, max_length=10, description="TOTP code.")
    recovery_code: str | None = Field(default=None, min_length=8, max_length=32)


class RefreshRequest(BaseModel):
    model_config = _STRICT

    refresh_token: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="Access-token lifetime in seconds.")
    refresh_token: str
    scope: str = Field(description="Space-separated SMART-style scopes.")


class MfaChallengeResponse(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="One-use challenge for POST /api/auth/login/mfa (5 min).")


class MfaEnrolResponse(BaseModel):
    secret: str = Field(description="Base32 TOTP secret (for manual entry).")
    otpauth_uri: str
    qr_png_base64: str = Field(description="The otpauth URI as a QR code PNG, base64.")


class MfaConfirmRequest(BaseModel):
    model_config = _STRICT

    code: str = Field(min_length=6, max_length=10)


class MfaConfirmResponse(BaseModel):
    mfa_enabled: Literal[True] = True
    recovery_codes: list[str] = Field(description="One-time codes; shown only now.")


class MeResponse(BaseModel):
    kind: Literal["user", "api_key"]
    subject: uuid.UUID
    tenant: str
    tenant_id: uuid.UUID
    username: str | None
    roles: list[str]
    permissions: list[str]
    scopes: list[str]
    patient_id: str | None
    mfa_enabled: bool | None = None


class Jwks(BaseModel):
    keys: list[dict[str, str]]


# A role, permission or SMART scope name (e.g. "physician", "patient:read", "user/*.rs").
_Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ApiKeyCreateRequest(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    roles: list[_Name] = Field(default_factory=list, max_length=16)
    permissions: list[_Name] = Field(default_factory=list, max_length=64)
    scopes: list[_Name] = Field(default_factory=list, max_length=64)
    ttl_days: int = Field(default=90, ge=1)


class ApiKeyRotateRequest(BaseModel):
    model_config = _STRICT

    grace_seconds: int = Field(
        default=0, ge=0, le=7 * 24 * 3600, description="How long the old key keeps working."
    )


class ApiKeySummary(BaseModel):
    """An API key without its secret (only the hash is stored anyway)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    roles: list[str]
    scopes: list[str]
    created_at: datetime
    created_by: str | None
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    rotated_from_id: uuid.UUID | None


class ApiKeyCreated(ApiKeySummary):
    key: str = Field(description="The API key. Shown ONCE: store it now.")
