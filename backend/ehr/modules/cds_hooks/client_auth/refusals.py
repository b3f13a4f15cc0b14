"""Every refusal of a CDS client's token: :class:`CdsClientUnauthorized` (401) and its log line.

The reason code (``extra["reason"]``) says what was wrong; neither the detail nor the log
(``cds_hooks.client_auth.refused``) ever contains the token.
"""

from __future__ import annotations

import structlog

from ehr.core.errors import AuthenticationRequired

__all__ = ["CdsClientUnauthorized", "refuse"]

logger = structlog.get_logger(__name__)


class CdsClientUnauthorized(AuthenticationRequired):
    """401: the CDS client's JWT was missing or not acceptable (``reason`` says why)."""

    code = "cds_client_unauthorized"
    title = "CDS client not authenticated"

    def __init__(self, reason: str, detail: str) -> None:
        error = None if reason == "missing_credentials" else "invalid_token"
        challenge = 'Bearer realm="cds-hooks"'
        if error is not None:
            challenge += f', error="{error}"'
        super().__init__(detail, extra={"reason": reason}, headers={"WWW-Authenticate": challenge})
        self.reason = reason


def refuse(reason: str, detail: str, *, issuer: str | None = None) -> CdsClientUnauthorized:
    logger.info("cds_hooks.client_auth.refused", reason=reason, iss=issuer)
    return CdsClientUnauthorized(reason, detail)
