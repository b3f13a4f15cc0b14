"""A tiny HTTP/1.1 keep-alive server on 127.0.0.1 standing in for HAPI at the socket level.

respx replaces the transport, so it cannot show what happens on real connections (keep-alive
reuse, pool limits, timeouts, dropped connections, gzip). This stub can. Paths under
``/fhir/DEFAULT/Patient/``: ``p-1`` (a patient), ``slow`` (answers after 2 s), ``drop`` (closes
without answering), ``gzip`` (gzip-encoded patient), ``cookie`` (sets a cookie); ``POST
/fhir/DEFAULT/Patient`` echoes the body it received.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHapiStub:
    patient: dict[str, Any]
    connections: int = 0
    open_connections: int = 0
    max_open_connections: int = 0
    requests: list[StubRequest] = field(default_factory=list)
    base_url: str = ""
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/fhir"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in header_lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(StubRequest(method, path, headers, body))
                if not await self._answer(method, path.split("?")[0], body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    async def _answer(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Write the answer; False to close the connection without one."""
        extra: list[str] = []
        status = "200 OK"
        payload = json.dumps(self.patient).encode()
        if path.endswith("/drop"):
            return False
        if path.endswith("/slow"):
            await asyncio.sleep(2)
        elif path.endswith("/gzip"):
            payload = gzip.compress(payload)
            extra.append("Content-Encoding: gzip")
        elif path.endswith("/cookie"):
            extra.append("Set-Cookie: session=tenant-a; Path=/")
        elif method == "POST":
            status, payload = "201 Created", body
        await asyncio.sleep(0.01)  # long enough for concurrent requests to overlap
        head = [f"HTTP/1.1 {status}", "Content-Type: application/fhir+json", *extra]
        head.append(f"Content-Length: {len(payload)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        return True
