"""Event-type patterns of an endpoint: ``order.signed`` (exact), ``result.*`` (the type and
everything under it: ``result.critical``, ``result.recorded``), ``*`` (every event)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["EVENT_TYPE_PATTERN", "matches"]

EVENT_TYPE_PATTERN: Final = r"^(\*|[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,3}(\.\*)?)$"
_PATTERN: Final = re.compile(EVENT_TYPE_PATTERN)


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """True when one of ``patterns`` selects ``event_type``."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def valid(pattern: str) -> bool:
    return bool(_PATTERN.fullmatch(pattern))
