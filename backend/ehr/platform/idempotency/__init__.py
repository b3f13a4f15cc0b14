"""Idempotency of business POSTs (the ``Idempotency-Key`` header; table ``idempotency_keys``).

``IdempotencyDep``            the request's :class:`Idempotency`; a route runs its work through
                              ``await idempotency.once(payload, work, response=, status_code=)``
``IdempotencyKeyReused``      422 ``idempotency_key_reused`` (same key, another request)
``IdempotencyRequestInFlight`` 409 ``idempotency_request_in_flight`` (same key, still running)
``IDEMPOTENCY_HEADER``, ``REPLAYED_HEADER``, ``KEY_TTL``, ``request_fingerprint``
``IdempotencyStore``, ``SqlIdempotencyStore``, ``StoredAnswer``, ``Claim``  the store behind it
"""

from ehr.platform.idempotency.keys import (
    IDEMPOTENCY_HEADER,
    KEY_TTL,
    REPLAYED_HEADER,
    Idempotency,
    IdempotencyDep,
    IdempotencyKeyHeader,
    IdempotencyKeyReused,
    IdempotencyRequestInFlight,
    get_idempotency,
    request_fingerprint,
)
from ehr.platform.idempotency.store import (
    Claim,
    IdempotencyStore,
    SqlIdempotencyStore,
    StoredAnswer,
)

__all__ = [
    "IDEMPOTENCY_HEADER",
    "KEY_TTL",
    "REPLAYED_HEADER",
    "Claim",
    "Idempotency",
    "IdempotencyDep",
    "IdempotencyKeyHeader",
    "IdempotencyKeyReused",
    "IdempotencyRequestInFlight",
    "IdempotencyStore",
    "SqlIdempotencyStore",
    "StoredAnswer",
    "get_idempotency",
    "request_fingerprint",
]
