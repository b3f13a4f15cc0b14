"""``/api/patients``: search, read and create patients (thin: parse, call, return)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from ehr.error_handlers import problem_responses
from ehr.modules.patients.dependencies import PatientServiceDep
from ehr.modules.patients.schemas import FHIR_ID_PATTERN, PatientCreate, PatientPage, PatientSummary
from ehr.modules.patients.service import PATIENTS_PATH, PatientSearch

__all__ = ["router"]

router = APIRouter(prefix=PATIENTS_PATH, tags=["patients"])

# FHIR date search: optional prefix, then YYYY, YYYY-MM or YYYY-MM-DD.
_BIRTHDATE_PATTERN = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?\d{4}(-\d{2}(-\d{2})?)?$"
# Printable ASCII without control characters (token search: "system|value" or "value").
_IDENTIFIER_PATTERN = r"^[\x21-\x7e][\x20-\x7e]*$"

PatientId = Annotated[
    str, Path(pattern=FHIR_ID_PATTERN, description="The patient's FHIR id.", examples=["123"])
]


@router.get("", response_model=PatientPage, responses=problem_responses(400, 422, 502, 503, 504))
async def search_patients(
    service: PatientServiceDep,
    name: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Any part of a name.")
    ] = None,
    identifier: Annotated[
        str | None,
        Query(
            max_length=300,
            pattern=_IDENTIFIER_PATTERN,
            description="`system|value` or `value`.",
            examples=["urn:ehr:demo:mrn|DEMO-0001"],
        ),
    ] = None,
    birthdate: Annotated[
        str | None,
        Query(pattern=_BIRTHDATE_PATTERN, description="FHIR date search, e.g. `ge1980-01-01`."),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=100, description="Page size.")] = 20,
    page_token: Annotated[
        str | None,
        Query(
            max_length=4096,
            pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
            description="From a previous page's `next`; the other parameters are then ignored.",
        ),
    ] = None,
) -> PatientPage:
    """Search patients by name, identifier and birth date; pages follow `next`."""
    if page_token is not None:
        return await service.next_page(page_token)
    criteria = PatientSearch(name=name, identifier=identifier, birthdate=birthdate, count=count)
    return await service.search(criteria)


@router.get(
    "/{patient_id}",
    response_model=PatientSummary,
    responses=problem_responses(404, 410, 422, 502, 503, 504),
)
async def read_patient(patient_id: PatientId, service: PatientServiceDep) -> PatientSummary:
    """One patient's summary."""
    return await service.get(patient_id)


@router.post(
    "",
    response_model=PatientSummary,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(400, 409, 412, 413, 422, 502, 503, 504),
)
async def create_patient(
    payload: PatientCreate, service: PatientServiceDep, response: Response
) -> PatientSummary:
    """Create a patient. Idempotent on `identifier`: a retry returns the same patient."""
    summary = await service.create(payload)
    response.headers["Location"] = f"{PATIENTS_PATH}/{summary.id}"
    return summary
