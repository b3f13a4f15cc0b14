"""``Idempotency-Key`` on business POSTs: a retried request is answered once.

A route takes :data:`IdempotencyDep` and runs its work through :meth:`Idempotency.once`:

- no key: the work runs (the header is optional; clients that retry should send one);
- a new key: the work runs and its answer (status, the API's own response document, ETag and
  Location) is stored for :data:`KEY_TTL`;
- the same key, the same principal and the same request (method, path, If-Match and the
  canonical JSON of the body: :func:`request_fingerprint`): the stored answer is replayed, with
  ``Idempotent-Replayed: true`` — nothing is written a second time;
- the same key with a different request: 422 ``idempotency_key_reused``;
- the same key while the first request is still running: 409 ``idempotency_request_in_flight``
  (retry later: it will then be replayed).

Keys are per principal: the stored key is ``<principal kind>:<subject>:<key>``, so two users can
never see each other's answers. A request that fails (any exception, e.g. a 409 refusal) releases
its claim, so a corrected retry may use the same key; only successes are replayed. When the
answer of a success cannot be stored (the database failed meanwhile) it is still answered, and
the claim stays in flight until it expires: a retry is refused, never done twice.
"""

# ruff: noqa: N818

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Final

import structlog
from fastapi import Depends, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from ehr.core.dependencies import ResourcesDep
from ehr.core.errors import ConflictError, RequestValidationFailed
from ehr.platform.auth.dependencies import CurrentPrincipal
from ehr.platform.auth.principal import Principal
from ehr.platform.idempotency.store import IdempotencyStore, SqlIdempotencyStore, StoredAnswer

__all__ = [
    "IDEMPOTENCY_HEADER",
    "KEY_TTL",
    "REPLAYED_HEADER",
    "Idempotency",
    "IdempotencyDep",
    "IdempotencyKeyHeader",
    "IdempotencyKeyReused",
    "IdempotencyRequestInFlight",
    "get_idempotency",
    "request_fingerprint",
]

logger = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
KEY_TTL: Final = dt.timedelta(hours=24)
# The response headers an answer is replayed with.
_KEPT_HEADERS: Final = ("etag", "location")

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=8,
        max_length=200,
        pattern=r"^[A-Za-z0-9_\-.:]+$",
        description="A unique key per intended action (a UUID): a retry with the same key and "
        "body is answered with the first answer, never done twice.",
    ),
]


class IdempotencyKeyReused(RequestValidationFailed):
    """The key was used for a different request."""

    code = "idempotency_key_reused"
    title = "Idempotency key used for another request"


class IdempotencyRequestInFlight(ConflictError):
    """A request with the same key is still being processed."""

    code = "idempotency_request_in_flight"
    title = "A request with this idempotency key is in progress"


def request_fingerprint(method: str, path: str, if_match: str | None, body: object) -> str:
    """Hex SHA-256 of what makes two requests "the same": method, path, If-Match, and the body
    as canonical JSON (keys sorted, no insignificant whitespace)."""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "if_match": if_match, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _body_of(payload: BaseModel | Mapping[str, Any] | None) -> object:
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json")
    return jsonable_encoder(payload)


class Idempotency:
    """One request's idempotency: its key (or none) and the store."""

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        principal: Principal,
        key: str | None,
        method: str,
        path: str,
        if_match: str | None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._store = store
        self._tenant = principal.tenant
        self._key = f"{principal.kind}:{principal.subject}:{key}" if key is not None else None
        self._method = method
        self._path = path
        self._if_match = if_match
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    @property
    def key(self) -> str | None:
        """The stored key (principal-scoped), None without a header."""
        return self._key

    async def once(
        self,
        payload: BaseModel | Mapping[str, Any] | None,
        work: Callable[[], Awaitable[Any]],
        *,
        response: Response,
        status_code: int,
    ) -> Any:
        """The answer of ``work`` — run now, or replayed from the first request with this key
        (a :class:`JSONResponse`). ``response`` is the route's response (its ETag and Location
        are stored with the answer); ``status_code`` the status the route answers on success."""
        if self._key is None:
            return await work()
        fingerprint = request_fingerprint(
            self._method, self._path, self._if_match, _body_of(payload)
        )
        claim = await self._store.claim(
            self._tenant, self._key, fingerprint, now=self._clock(), ttl=KEY_TTL
        )
        if not claim.owned:
            if claim.fingerprint is not None and claim.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used for a different request; use a new key."
                )
            if claim.answer is None:
                raise IdempotencyRequestInFlight(
                    "A request with this Idempotency-Key is still in progress; retry later.",
                    headers={"Retry-After": "1"},
                )
            return JSONResponse(
                claim.answer.body,
                status_code=claim.answer.status,
                headers={**claim.answer.headers, REPLAYED_HEADER: "true"},
            )
        try:
            result = await work()
        except BaseException:
            await self._store.release(self._tenant, self._key)
            raise
        headers = {
            name: value for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS
        }
        try:
            await self._store.complete(
                self._tenant,
                self._key,
                StoredAnswer(status=status_code, body=jsonable_encoder(result), headers=headers),
            )
        except (SQLAlchemyError, OSError) as exc:
            # The work is done: answer it. The claim stays in flight until it expires, so a
            # retry is refused (409), never done twice.
            logger.warning("idempotency.answer_not_stored", error=type(exc).__name__)
        return result


async def get_idempotency(
    request: Request,
    principal: CurrentPrincipal,
    resources: ResourcesDep,
    key: IdempotencyKeyHeader = None,
) -> Idempotency:
    return Idempotency(
        SqlIdempotencyStore(resources.sessionmaker),
        principal=principal,
        key=key,
        method=request.method,
        path=request.url.path,
        if_match=request.headers.get("if-match"),
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
