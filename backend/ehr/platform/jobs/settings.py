"""The worker's and the job queue's settings: ``Settings.jobs`` (``EHR_JOBS__*``), one section
of the service's one settings object (:class:`ehr.core.config.JobsSettings`)."""

from __future__ import annotations

from ehr.core.config import JobsSettings

__all__ = ["JobsSettings"]
