"""The ``EHR_REALTIME__*`` settings: the ``realtime`` section of :class:`ehr.core.config.Settings`
(defined there with the others; re-exported here for the package's own modules)."""

from __future__ import annotations

from ehr.core.config import RealtimeSettings

__all__ = ["RealtimeSettings"]
