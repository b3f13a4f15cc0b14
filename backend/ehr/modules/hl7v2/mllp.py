"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): ``0x0B`` message ``0x1C 0x0D``.

    frames = FrameReader(reader, max_bytes=8 << 20, idle_timeout=300)
    while (frame := await frames.next()) is not None:      # None: the peer closed, or idle
        if frame.too_large: ...                            # refused: bytes dropped to its end
        writer.write(frame_bytes(ack_text))

What arrives between frames (garbage, keep-alive newlines) is skipped and counted. A start
block inside an unfinished frame means the sender gave up on the first one: it comes back
``truncated`` (answered with an AR by the listener) and the new frame is read normally. A frame
larger than ``max_bytes`` is not kept in memory: its first bytes are (for the ACK's MSH), the
rest is read and dropped until its end block, so the connection stays usable. A connection
closed inside a frame yields nothing for that frame: it was never acknowledged, so it is the
sender's to resend.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

__all__ = ["END_BLOCK", "START_BLOCK", "Frame", "FrameReader", "frame_bytes"]

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c\x0d"
# How much of a refused oversized frame is kept: enough for its MSH segment.
_HEAD_BYTES: Final = 4096
_READ_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed message. ``payload``: its bytes (only the head when ``too_large``);
    ``truncated``: a new start block came before the end block; ``size``: bytes received."""

    payload: bytes
    size: int
    too_large: bool = False
    truncated: bool = False


def frame_bytes(message: str) -> bytes:
    """``message`` (ER7, segments ended by ``\\r``) as an MLLP frame, UTF-8 encoded."""
    return START_BLOCK + message.encode("utf-8") + END_BLOCK


class FrameReader:
    """Reads MLLP frames from a stream, one at a time (a connection's messages are processed
    in order: the next frame is read after the previous one is answered)."""

    def __init__(
        self, reader: asyncio.StreamReader, *, max_bytes: int, idle_timeout: float
    ) -> None:
        self._reader = reader
        self._max_bytes = max_bytes
        self._idle_timeout = idle_timeout
        self._buffer = bytearray()
        self.garbage_bytes = 0
        self.idle = False

    async def _fill(self) -> bool:
        """Read more bytes; False on end of stream or after the idle timeout."""
        try:
            chunk = await asyncio.wait_for(self._reader.read(_READ_CHUNK), self._idle_timeout)
        except TimeoutError:
            self.idle = True
            return False
        if not chunk:
            return False
        self._buffer.extend(chunk)
        return True

    async def next(self) -> Frame | None:
        """The next frame, or None when the stream ends (or is idle) before one is complete."""
        # Skip anything before the start block.
        while True:
            start = self._buffer.find(START_BLOCK)
            if start >= 0:
                self.garbage_bytes += start
                del self._buffer[: start + 1]
                break
            self.garbage_bytes += len(self._buffer)
            self._buffer.clear()
            if not await self._fill():
                return None
        searched = 0
        while True:
            end = self._buffer.find(END_BLOCK, max(0, searched - 1))
            restart = self._buffer.find(
                START_BLOCK, searched, end if end >= 0 else len(self._buffer)
            )
            if restart >= 0:
                payload = bytes(self._buffer[:restart])
                del self._buffer[:restart]  # the new frame's start block stays
                return Frame(payload=payload, size=len(payload), truncated=True)
            if end >= 0:
                if end > self._max_bytes:  # it arrived whole, but is still too large
                    head = bytes(self._buffer[: min(end, _HEAD_BYTES)])
                    del self._buffer[: end + len(END_BLOCK)]
                    return Frame(payload=head, size=end, too_large=True)
                payload = bytes(self._buffer[:end])
                del self._buffer[: end + len(END_BLOCK)]
                return Frame(payload=payload, size=len(payload))
            if len(self._buffer) > self._max_bytes:
                return await self._drop_oversized()
            searched = len(self._buffer)
            if not await self._fill():
                return None

    async def _drop_oversized(self) -> Frame | None:
        head = bytes(self._buffer[:_HEAD_BYTES])
        size = len(self._buffer)
        # Keep the last byte: it may be the 0x1C of an end block split across reads.
        tail = self._buffer[-1:]
        self._buffer = bytearray(tail)
        size -= len(tail)
        while True:
            end = self._buffer.find(END_BLOCK)
            if end >= 0:
                size += end
                del self._buffer[: end + len(END_BLOCK)]
                return Frame(payload=head, size=size, too_large=True)
            size += max(0, len(self._buffer) - 1)
            self._buffer = bytearray(self._buffer[-1:])
            if not await self._fill():
                return None
