"""The ``EHR_EVENTS__*`` settings: the ``events`` section of :class:`ehr.core.config.Settings`
(defined there with the others; re-exported here for the package's own modules)."""

from __future__ import annotations

from ehr.core.config import EventsSettings

__all__ = ["EventsSettings"]
