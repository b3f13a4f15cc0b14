"""Streaming rewrite of HAPI's address to the gateway's public base, and paging-id capture.

:class:`StreamRewriter` replaces every occurrence of HAPI's base (``{hapi}/{tenant}`` or the bare
``{hapi}``) with ``{public}/fhir`` in a byte stream, chunk by chunk. It keeps a tail of at most
``len(longest needle)`` bytes across chunk boundaries, so a needle split anywhere between two
chunks is still found, and memory stays flat however large the body is. It also notes the
``_getpages`` ids it sees (search paging), so the gateway can bind them to the tenant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Final

__all__ = [
    "MAX_PATIENT_IDS",
    "PAGE_ID_PATTERN",
    "PATIENT_ID_PATTERN",
    "StreamRewriter",
    "rewrite_text",
]

# HAPI's search ids are UUIDs; allow any id-like token and require a delimiter after it.
PAGE_ID_PATTERN: Final = re.compile(rb"_getpages=([A-Za-z0-9\-]{1,128})(?=[&\"'\s<#]|\\u0026)")
# Patients an answer names: Patient entries (`fullUrl` …/Patient/<id>) and references to one.
PATIENT_ID_PATTERN: Final = re.compile(
    rb'"(?:fullUrl|reference)"\s*:\s*"(?:[^"]{0,300}/)?Patient/([A-Za-z0-9\-.]{1,64})["/]'
)
# Beyond this many distinct patients an answer's audit record says "truncated".
MAX_PATIENT_IDS: Final = 1000
_PAGE_TAIL: Final = 400
# The tenant base must end there (not run on into a longer tenant slug: `.../t1` vs `.../t10`).
_BOUNDARY: Final = rb"(?=[/?#\"'\s<\\]|\Z)"


@functools.lru_cache(maxsize=1024)
def _needle_pattern(needles: frozenset[str]) -> tuple[re.Pattern[bytes], int]:
    """The pattern of HAPI's bases and the tail to keep across chunks (built once per tenant:
    every answer of the gateway is rewritten)."""
    ordered = sorted({n.rstrip("/") for n in needles if n}, key=len, reverse=True)
    if not ordered:
        raise ValueError("at least one needle is needed")
    # Each needle must end at a URL boundary (one byte of look-ahead, hence the +1).
    pattern = re.compile(b"|".join(re.escape(n.encode()) + _BOUNDARY for n in ordered))
    return pattern, len(ordered[0].encode()) + 1


class StreamRewriter:
    """Rewrites HAPI's bases to ``replacement`` across chunk boundaries; see the module doc."""

    def __init__(
        self,
        needles: Iterable[str],
        replacement: str,
        *,
        capture_pages: bool = False,
        capture_patients: bool = False,
    ):
        self._pattern, self._keep = _needle_pattern(frozenset(needles))
        self._replacement = replacement.rstrip("/").encode()
        self._pending = b""
        self._capture = capture_pages
        self._scan_tail = b""
        self.page_ids: set[str] = set()
        self._capture_patients = capture_patients
        self.patient_ids: set[str] = set()
        self.patients_truncated = False

    def _scan(self, data: bytes) -> None:
        if not (self._capture or self._capture_patients) or not data:
            return
        window = self._scan_tail + data
        if self._capture:
            for match in PAGE_ID_PATTERN.finditer(window):
                self.page_ids.add(match.group(1).decode())
        if self._capture_patients:
            for match in PATIENT_ID_PATTERN.finditer(window):
                patient_id = match.group(1).decode()
                if patient_id in self.patient_ids:
                    continue
                if len(self.patient_ids) >= MAX_PATIENT_IDS:
                    self.patients_truncated = True
                    break
                self.patient_ids.add(patient_id)
        self._scan_tail = window[-_PAGE_TAIL:]

    def feed(self, chunk: bytes) -> bytes:
        """Rewrite what can be rewritten safely; the last few bytes wait for the next chunk."""
        self._scan(chunk)
        buffer = self._pending + chunk
        cut = len(buffer) - self._keep
        out: list[bytes] = []
        position = 0
        for match in self._pattern.finditer(buffer):
            # A match starting in the tail may be a prefix of a longer needle: wait for more.
            if match.start() >= cut:
                break
            out.append(buffer[position : match.start()])
            out.append(self._replacement)
            position = match.end()
        keep_from = max(position, cut)
        out.append(buffer[position:keep_from])
        self._pending = buffer[keep_from:]
        return b"".join(out)

    def flush(self) -> bytes:
        """The rest, at the end of the stream."""
        buffer, self._pending = self._pending, b""
        self._scan(b" ")  # lets an id at the very end be terminated
        return self._pattern.sub(lambda _m: self._replacement, buffer)


def rewrite_text(value: str, needles: Iterable[str], replacement: str) -> str:
    """The same rewrite for a whole string (Location headers, small bodies)."""
    rewriter = StreamRewriter(needles, replacement)
    return (rewriter.feed(value.encode()) + rewriter.flush()).decode()
