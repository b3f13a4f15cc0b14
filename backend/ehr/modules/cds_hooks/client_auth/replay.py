"""Replay protection: a token's ``jti`` is used once per issuer (step 7).

Redis ``SET NX EX`` until the token expires (plus the clock skew); Redis unreachable → 503 (fail
closed). Keys are ``ehr:cds:jti:{sha256(iss)[:32]}:{sha256(jti)}``: bounded and opaque.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ehr.core.config import CdsHooksSettings
from ehr.core.errors import DependencyUnavailable
from ehr.modules.cds_hooks.client_auth.refusals import refuse
from ehr.modules.cds_hooks.client_auth.tokens import VerifiedClaims

__all__ = ["JTI_KEY_PREFIX", "record_jti", "replay_key"]

logger = structlog.get_logger(__name__)

JTI_KEY_PREFIX: Final = "ehr:cds:jti:"


def replay_key(issuer: str, jti: str) -> str:
    """The Redis key remembering ``jti`` of ``issuer`` (both hashed: bounded, opaque)."""
    iss_hash = hashlib.sha256(issuer.encode()).hexdigest()[:32]
    jti_hash = hashlib.sha256(jti.encode()).hexdigest()
    return f"{JTI_KEY_PREFIX}{iss_hash}:{jti_hash}"


async def record_jti(
    redis: Redis, claims: VerifiedClaims, *, settings: CdsHooksSettings, now: float
) -> None:
    """Remember the token's ``jti`` until it expires; a second use is refused (fail closed)."""
    ttl = max(1, math.ceil(claims.expires_at - now + settings.clock_skew_seconds))
    try:
        first = await redis.set(replay_key(claims.issuer, claims.jti), b"1", nx=True, ex=ttl)
    except (RedisError, OSError) as exc:
        logger.warning("cds_hooks.client_auth.replay_check_failed", error=type(exc).__name__)
        raise DependencyUnavailable("The token replay check is unavailable; retry later") from None
    if not first:
        raise refuse("replayed", "The JWT's 'jti' has already been used", issuer=claims.issuer)
