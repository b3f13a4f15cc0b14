"""The SMART endpoints' bodies: the token answer, OAuth errors, launches and the registry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LaunchCreated",
    "LaunchRequest",
    "OAuthErrorBody",
    "SmartClientCreate",
    "SmartClientView",
    "TokenBody",
]


class TokenBody(BaseModel):
    access_token: str
    token_type: Literal["bearer", "Bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool | None = None
    smart_style_url: str | None = None


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str


class LaunchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64, description="The app to launch")
    patient: str = Field(
        max_length=64, pattern=r"^[A-Za-z0-9\-.]{1,64}$", description="FHIR Patient id"
    )
    encounter: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        description="FHIR Encounter id",
    )


class LaunchCreated(BaseModel):
    launch: str = Field(description="The launch parameter (single use)")
    iss: str = Field(description="Our FHIR base URL, the launch's iss")
    expires_in: int
    launch_url: str | None = Field(
        default=None, description="The app's launch URL with iss and launch, when registered"
    )


class SmartClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["backend_service", "public_app", "confidential_app"]
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(max_length=128)]] = Field(min_length=1, max_length=100)
    redirect_uris: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=10
    )
    launch_types: list[Literal["ehr", "standalone"]] = Field(
        default=["ehr", "standalone"], min_length=1, max_length=2
    )
    launch_uri: str | None = Field(default=None, max_length=2000)
    jwks: dict[str, Any] | None = Field(
        default=None,
        description="Public keys (Backend Services; confidential apps without a secret)",
    )


class SmartClientView(BaseModel):
    client_id: str
    name: str
    kind: str
    scopes: list[str]
    key_ids: list[str]
    disabled: bool
    redirect_uris: list[str]
    launch_types: list[str]
    launch_uri: str | None
    auth_method: str
    client_secret: str | None = Field(
        default=None, description="A confidential app's secret: in the registration answer only"
    )
