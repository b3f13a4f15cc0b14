"""The API on a real socket, and reading a realtime WebSocket, for live tests.

``serve_app(app)``                    ``async with``: ``app`` served by uvicorn on a free port of
                                      127.0.0.1 in this event loop; yields the port
``next_message(socket, wanted, seen)`` read JSON messages until ``wanted`` accepts one (at most
                                      ``PATIENCE_SECONDS``); what was read goes to ``seen``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from support.ports import free_port

__all__ = ["PATIENCE_SECONDS", "next_message", "serve_app"]

PATIENCE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


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
