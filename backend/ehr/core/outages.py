"""What a caller gets while a backing service is down (docs/adr/0013-outages.md).

HAPI's failures are translated at the FHIR edge (:mod:`ehr.fhir.errors`: 503 ``fhir_unavailable``,
504 ``fhir_timeout``); Redis's are absorbed by its helpers' fallbacks (:mod:`ehr.core.redis_store`).
PostgreSQL cannot be done without — authentication, tenancy and the audit trail live there — so a
request that needs it fails closed, and :func:`unavailable_error` makes that a clean 503
``database_unavailable`` (``Retry-After``) instead of a 500: the error handler
(:mod:`ehr.core.error_handlers`) asks it about every exception that is not an
:class:`~ehr.core.errors.AppError`.

Recognised as "the database is unreachable": SQLAlchemy's pool timeout, ``OperationalError`` /
``InterfaceError`` and any DBAPI error that invalidated its connection; asyncpg's connection
errors; and ``OSError`` connection failures (refused, reset, DNS, timeouts) raised inside
asyncpg or SQLAlchemy — asyncpg lets them through unwrapped when it cannot connect. A Redis
connection error that escaped a helper becomes 503 ``dependency_unavailable``.
"""

from __future__ import annotations

import socket
from typing import Final

import structlog
from redis import exceptions as redis_exceptions
from sqlalchemy import exc as sa_exc

from ehr.core.errors import AppError, DependencyUnavailable

__all__ = ["DatabaseUnavailable", "unavailable_error"]

logger = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS: Final = "5"

# asyncpg's connection errors, by name (asyncpg ships no type information to import them by).
_ASYNCPG_CONNECTION_ERRORS: Final = frozenset(
    {
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ClientCannotConnectError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
    }
)
_NETWORK_ERRORS: Final = (ConnectionError, socket.gaierror, TimeoutError)
_DATABASE_MODULES: Final = ("asyncpg", "sqlalchemy")
_REDIS_MODULES: Final = ("redis",)


class DatabaseUnavailable(DependencyUnavailable):
    """PostgreSQL cannot be reached: the request fails closed (nothing served unauthenticated or
    unaudited); retry later."""

    code = "database_unavailable"
    title = "The database is unavailable"


def _raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    """Whether a frame of ``exc``'s traceback belongs to one of ``modules`` (package prefixes)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__")
        if isinstance(name, str) and name.split(".", 1)[0] in modules:
            return True
        tb = tb.tb_next
    return False


def _is_asyncpg_connection_error(exc: BaseException) -> bool:
    return any(
        cls.__module__.startswith("asyncpg") and cls.__name__ in _ASYNCPG_CONNECTION_ERRORS
        for cls in type(exc).__mro__
    )


def _classify(exc: BaseException) -> AppError | None:
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.OperationalError | sa_exc.InterfaceError):
        return _database()
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return _database()
    if _is_asyncpg_connection_error(exc):
        return _database()
    if isinstance(exc, redis_exceptions.ConnectionError | redis_exceptions.TimeoutError):
        return _redis()
    if isinstance(exc, _NETWORK_ERRORS):
        if _raised_in(exc, _DATABASE_MODULES):
            return _database()
        if _raised_in(exc, _REDIS_MODULES):
            return _redis()
    return None


def _database() -> AppError:
    return DatabaseUnavailable(
        "The database is unavailable; retry later", headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


def _redis() -> AppError:
    return DependencyUnavailable(
        "A backing service is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def unavailable_error(exc: BaseException) -> AppError | None:
    """The 503 to answer when ``exc`` means a backing service is unreachable, else None.

    An exception group counts when every exception in it does (the first one's error is used).
    """
    if isinstance(exc, AppError):
        return None
    if isinstance(exc, BaseExceptionGroup):
        errors = [unavailable_error(inner) for inner in exc.exceptions]
        if errors and all(error is not None for error in errors):
            return errors[0]
        return None
    error = _classify(exc)
    if error is not None:
        logger.warning("dependency.unavailable", code=error.code, error_type=type(exc).__name__)
    return error
