"""Expensive-query protection: ``_count`` / ``_history`` / ``_total`` caps.

Caps rewrite the query rather than refuse it (a client asking for 10 000 rows gets pages of
``max_count``, which FHIR allows: the server may return fewer than asked). The per-client rate
limit lives in :mod:`ehr.platform.auth.rate_limit` (counted in the authentication's own Redis
round trip, :func:`ehr.platform.auth.dependencies.authenticate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ehr.core.config import GatewaySettings
from ehr.core.errors import BadRequestError

__all__ = ["cap_params"]


def _count_value(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise BadRequestError("_count must be a non-negative integer") from None
    if count < 0:
        raise BadRequestError("_count must be a non-negative integer")
    return count


def cap_params(
    kind: str, params: Sequence[tuple[str, str]], settings: GatewaySettings
) -> tuple[tuple[str, str], ...]:
    """``params`` with ``_count`` capped (and defaulted), ``_total=accurate`` downgraded.

    Searches: ``_count`` ≤ ``max_count`` (``default_count`` when absent). History: ``_count`` ≤
    ``max_history_count``, always set. Paging requests (``_getpages``) keep HAPI's own offsets but
    their ``_count`` is capped the same way. ``_total=accurate`` becomes ``estimate`` unless
    ``allow_total_accurate``.
    """
    if kind not in {"search", "history"}:
        return tuple(params)
    limit = settings.max_history_count if kind == "history" else settings.max_count
    out: list[tuple[str, str]] = []
    seen_count = False
    for name, value in params:
        if name == "_count":
            if seen_count:
                continue  # one _count only: the first (capped) wins
            seen_count = True
            out.append((name, str(min(_count_value(value), limit))))
        elif name == "_total" and value == "accurate" and not settings.allow_total_accurate:
            out.append((name, "estimate"))
        else:
            out.append((name, value))
    is_paging = any(name == "_getpages" for name, _ in params)
    if not seen_count and not is_paging:
        default = settings.max_history_count if kind == "history" else settings.default_count
        out.append(("_count", str(min(default, limit))))
    return tuple(out)
