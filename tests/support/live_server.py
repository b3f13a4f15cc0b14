"""The API on a real socket, and reading a realtime WebSocket, for live tests.

``live_server(app_for)``              ``async with``: the app ``app_for(base_url)`` served by
                                      uvicorn on a free port of 127.0.0.1 in this event loop;
                                      yields ``base_url`` (``http://127.0.0.1:PORT``, no slash)
``serve_app(app)``                    ``async with``: ``app`` served the same way; yields the port
``next_message(socket, wanted, seen)`` read JSON messages until ``wanted`` accepts one (at most
                                      ``PATIENCE_SECONDS``); what was read goes to ``seen``

The port is reserved (a socket bound to port 0 and listening, handed to uvicorn) before the app
is created, so an app whose settings must name its own address gets it, with no race for the
port::

    def app_for(base_url: str) -> FastAPI:
        return create_app(settings_with(settings, "gateway", public_base_url=base_url))

    async with live_server(app_for) as base_url:
        ...  # httpx, websockets, or a browser (support.browser) on base_url

The server runs as a task of the running event loop: the test's own awaits let it serve, so a
blocking client (Selenium, a subprocess) must run in a thread (``asyncio.to_thread``). The app's
lifespan runs (startup before the block, shutdown after it); a failed startup raises here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

__all__ = ["PATIENCE_SECONDS", "AppForBaseUrl", "live_server", "next_message", "serve_app"]

PATIENCE_SECONDS = 60.0
HOST = "127.0.0.1"
# How long the app's lifespan startup may take, and open connections may keep it at the end.
STARTUP_SECONDS = 60.0
GRACEFUL_SHUTDOWN_SECONDS = 5

# ``live_server``'s argument: the app to serve, given the base URL it is served on.
AppForBaseUrl = Callable[[str], FastAPI]


@contextlib.contextmanager
def _reserved_socket() -> Iterator[socket.socket]:
    """A TCP socket on a free port of 127.0.0.1, bound and listening, closed at the end."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield sock


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """uvicorn serving ``app`` on ``sock`` in this event loop, from startup to a clean shutdown."""
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(_serve(server, sock), name=f"uvicorn on {HOST}:{port}")
    try:
        await _started(server, task)
        yield
    finally:
        if server.started:
            server.should_exit = True
            await task
        elif not task.done():
            task.cancel()
            await asyncio.wait([task])


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn ends a failed lifespan startup with sys.exit(3), after logging why; a SystemExit
        # out of a task would stop the event loop (pytest's run) instead of failing the test.
        raise RuntimeError("the app's startup failed (see the log above)") from exc


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Return once ``server`` listens; raise when it ends first or takes too long."""
    where = task.get_name()
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not server.started and not task.done():
                # Back at once when the server task ends; uvicorn has no "started" event.
                await asyncio.wait([task], timeout=0.02)
    except TimeoutError:
        raise TimeoutError(f"{where}: not started after {STARTUP_SECONDS} s") from None
    if not server.started:
        task.result()  # the startup's error, if any
        raise RuntimeError(f"{where}: the server stopped while starting")


@contextlib.asynccontextmanager
async def live_server(app_for: AppForBaseUrl) -> AsyncIterator[str]:
    """``app_for(base_url)`` served on a free port of 127.0.0.1 in this event loop; yields the
    base URL (``http://127.0.0.1:PORT``) until the block ends, then shuts the app down."""
    with _reserved_socket() as sock:
        base_url = f"http://{HOST}:{sock.getsockname()[1]}"
        async with _serving(app_for(base_url), sock):
            yield base_url


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[int]:
    """``app`` served on a free port of 127.0.0.1 in this event loop; yields the port."""
    with _reserved_socket() as sock:
        async with _serving(app, sock):
            yield int(sock.getsockname()[1])


async def next_message(
    socket: ClientConnection,
    wanted: Callable[[dict[str, Any]], bool],
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    async with asyncio.timeout(PATIENCE_SECONDS):
        while True:
            message = json.loads(await socket.recv())
            if seen is not None:
                seen.append(message)
            if wanted(message):
                return message
