"""In-process clients of an app: its lifespan running, httpx over ASGI (no socket, no server).

async with serve(create_app(settings)) as client:           # as tests/conftest.py's ``api``
    await client.get("/health")
async with serve(app, peer=("10.1.2.3", 40000)) as client:  # a client IP of the test's own
    ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

__all__ = ["BASE_URL", "ApiFactory", "client_of", "serve", "started"]

BASE_URL = "http://testserver"
# The unit conftest's ``make_api``: ``await make_api(app)`` is a client on ``app`` (started).
ApiFactory = Callable[[FastAPI], Awaitable[httpx.AsyncClient]]
# httpx's own default peer address of an ASGI request.
DEFAULT_PEER = ("127.0.0.1", 123)


def client_of(
    app: FastAPI,
    *,
    peer: tuple[str, int] = DEFAULT_PEER,
    raise_app_exceptions: bool = True,
) -> httpx.AsyncClient:
    """A client calling ``app`` (already started) from ``peer``."""
    transport = httpx.ASGITransport(app=app, client=peer, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    """``app`` with its lifespan running (the app to hand to :func:`client_of`)."""
    async with LifespanManager(app) as manager:
        yield manager.app  # type: ignore[misc]


@asynccontextmanager
async def serve(
    app: FastAPI,
    *,
    peer: tuple[str, int] = DEFAULT_PEER,
    raise_app_exceptions: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``app`` with its lifespan running; both end with the block."""
    async with (
        started(app) as running,
        client_of(running, peer=peer, raise_app_exceptions=raise_app_exceptions) as client,
    ):
        yield client
