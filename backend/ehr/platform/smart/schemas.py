"""The token endpoint's answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["OAuthErrorBody", "TokenBody"]


class TokenBody(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    scope: str


class OAuthErrorBody(BaseModel):
    error: str
    error_description: str
