"""The MLLP listener: ``ehr hl7 listen`` (ADR 0033).

An asyncio TCP server (TLS when ``EHR_HL7__TLS_CERT_FILE`` is set; mutual TLS with
``EHR_HL7__TLS_CLIENT_CA_FILE``). Many connections at once (``EHR_HL7__MAX_CONNECTIONS``; one
more is closed at once), each processed in order: a frame is read, stored, acknowledged, then
the next frame is read — the sender's next message never overtakes the one before. A frame
that is too large or truncated is answered AR and the connection stays usable; a connection
silent for ``EHR_HL7__IDLE_TIMEOUT_SECONDS`` is closed. ``/health`` and ``/metrics`` are on
``EHR_HL7__HEALTH_PORT``.

SIGTERM: stop accepting, let every connection finish the message it is on (its ACK is sent),
then exit. ``kill -9`` mid-stream loses nothing that was acknowledged: the ACK is written only
after the message is committed to the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.modules.hl7v2 import metrics
from ehr.modules.hl7v2.mllp import FrameReader, frame_bytes
from ehr.modules.hl7v2.parsing import (
    APPLICATION_INTERNAL_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    MessageRejected,
)
from ehr.modules.hl7v2.service import receive_payload, unreadable_ack

__all__ = ["Listener", "serve_listener", "tls_context"]

logger = structlog.get_logger(__name__)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain MLLP."""
    hl7 = settings.hl7
    if not hl7.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(hl7.tls_cert_file, hl7.tls_key_file or None)
    if hl7.tls_client_ca_file:
        context.load_verify_locations(hl7.tls_client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass
class Listener:
    """A running MLLP server (``start`` → ``port``; ``close`` drains the connections)."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    host: str | None = None
    port: int | None = None
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _closing: bool = False

    async def start(self) -> int:
        hl7 = self.settings.hl7
        self._server = await asyncio.start_server(
            self._accept,
            self.host if self.host is not None else hl7.mllp_host,
            self.port if self.port is not None else hl7.mllp_port,
            ssl=tls_context(self.settings),
            reuse_address=True,
        )
        sockets = self._server.sockets
        self.port = int(sockets[0].getsockname()[1])
        logger.info("hl7v2.listener.started", port=self.port, tls=hl7.tls_cert_file is not None)
        return self.port

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop accepting; wait up to ``grace_seconds`` for connections to finish their
        current message, then cut them."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= self.settings.hl7.max_connections or self._closing:
            logger.warning("hl7v2.listener.refused_connection", open=len(self._connections))
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
            return
        assert task is not None  # noqa: S101 - asyncio runs the callback in a task
        self._connections.add(task)
        metrics.CONNECTIONS.inc()
        try:
            await self._serve(reader, writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            logger.info("hl7v2.listener.connection_lost", error=type(exc).__name__)
        finally:
            self._connections.discard(task)
            metrics.CONNECTIONS.dec()
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def _answer(self, payload: bytes) -> str | None:
        return await _answer_payload(self.sessions, self.settings, payload)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hl7 = self.settings.hl7
        frames = FrameReader(
            reader, max_bytes=hl7.max_message_bytes, idle_timeout=hl7.idle_timeout_seconds
        )
        while not self._closing:
            frame = await frames.next()
            if frame is None:
                break
            if frame.too_large or frame.truncated:
                reason = "too_large" if frame.too_large else "truncated"
                metrics.FRAMES_REFUSED.labels(reason).inc()
                metrics.ACKS.labels("AR", "false").inc()
                logger.info("hl7v2.listener.frame_refused", reason=reason, size=frame.size)
                text = frame.payload.decode("latin-1")
                explanation = (
                    f"The message is larger than {hl7.max_message_bytes} bytes"
                    if frame.too_large
                    else "The frame ended before its end block (0x1C 0x0D)"
                )
                refusal = MessageRejected(
                    explanation,
                    code=APPLICATION_INTERNAL_ERROR if frame.too_large else SEGMENT_SEQUENCE_ERROR,
                )
                ack: str | None = unreadable_ack(self.settings, text, refusal)
            else:
                # Finish this message even when a shutdown starts meanwhile: the sender gets
                # its ACK for what was stored.
                ack = await asyncio.shield(self._answer(frame.payload))
            if ack is not None:
                writer.write(frame_bytes(ack))
                await writer.drain()
        if frames.garbage_bytes:
            logger.info("hl7v2.listener.garbage_skipped", bytes=frames.garbage_bytes)
        if frames.idle:
            logger.info("hl7v2.listener.idle_closed")


async def _answer_payload(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, payload: bytes
) -> str | None:
    try:
        answer = await receive_payload(sessions, settings, payload, channel="mllp")
    except Exception:  # a fault of ours must not cost the sender its connection
        logger.exception("hl7v2.listener.receive_failed")
        refusal = MessageRejected(
            "The message could not be processed; resend it", code=APPLICATION_INTERNAL_ERROR
        )
        return unreadable_ack(settings, payload.decode("latin-1"), refusal)
    return answer.ack


async def _health_site(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], host: str, port: int
) -> web.AppRunner:
    async def health(_: web.Request) -> web.Response:
        try:
            async with sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means the inbox cannot take messages
            return web.json_response({"status": "unavailable"}, status=503)
        return web.json_response({"status": "ok"})

    async def metrics_view(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def serve_listener(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
    install_signals: bool = True,
) -> None:
    """Run the listener (and its health port) until ``stop`` is set or SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.db)
    sessions = create_sessionmaker(engine)
    listener = Listener(settings, sessions, host=host, port=port)
    runner: web.AppRunner | None = None
    try:
        await listener.start()
        if settings.hl7.health_port:
            runner = await _health_site(
                settings, sessions, host or settings.hl7.mllp_host, settings.hl7.health_port
            )
        await stop.wait()
    finally:
        await listener.close()
        if runner is not None:
            await runner.cleanup()
        await engine.dispose()
        logger.info("hl7v2.listener.stopped")
