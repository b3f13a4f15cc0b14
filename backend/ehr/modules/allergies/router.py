"""The ``/api/patients/{patient_id}/allergies`` routes."""

from __future__ import annotations

from fastapi import APIRouter

from ehr.core.intake import IntakeRoute

__all__ = ["router"]

router = APIRouter(
    prefix="/api/patients/{patient_id}/allergies", tags=["allergies"], route_class=IntakeRoute
)
