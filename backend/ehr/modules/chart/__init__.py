"""The chart's aggregated views: a patient's summary (HAPI queries in parallel, partial failures
reported per section) and timeline (merged by clinical date, cursor-paginated) (ADR 0018).

The public surface (other modules and the entrypoints import only this):

``router``   ``/api/patients/{patient_id}/summary`` and ``/timeline``
"""

from ehr.modules.chart.router import router

__all__ = ["router"]
