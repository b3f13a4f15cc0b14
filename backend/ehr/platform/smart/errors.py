"""OAuth 2.0 errors (RFC 6749 §5.2): the token endpoint answers them as JSON
``{"error", "error_description"}``, not as problem+json, because OAuth clients read that form."""

from __future__ import annotations

__all__ = ["OAuthError"]


class OAuthError(Exception):
    def __init__(self, error: str, description: str, *, status_code: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
