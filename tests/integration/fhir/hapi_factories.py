"""Builders for synthetic FHIR resources sent to the real HAPI (every one carries the run tag)."""

from __future__ import annotations

import uuid
from typing import Any

MRN_SYSTEM = "urn:ehr:test:mrn"


def new_mrn() -> str:
    """A fresh synthetic medical record number (identifier value)."""
    return f"MRN-{uuid.uuid4().hex[:12]}"


def _meta(tag: dict[str, str]) -> dict[str, Any]:
    return {"tag": [dict(tag)]}


def make_patient(tag: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """A synthetic Patient without an id (HAPI assigns one)."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": _meta(tag),
        "identifier": [{"system": MRN_SYSTEM, "value": new_mrn()}],
        "active": True,
        "name": [{"family": "Synthetic", "given": ["Test"]}],
        "gender": "unknown",
        "birthDate": "1970-01-01",
    }
    patient.update(overrides)
    return patient


def make_encounter(tag: dict[str, str], subject: str, **overrides: Any) -> dict[str, Any]:
    """A finished ambulatory Encounter for ``subject`` (a reference string)."""
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "meta": _meta(tag),
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
        },
        "subject": {"reference": subject},
    }
    encounter.update(overrides)
    return encounter


def make_observation(
    tag: dict[str, str], subject: str, encounter: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """A final heart-rate Observation for ``subject`` (optionally within ``encounter``)."""
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "meta": _meta(tag),
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    if encounter is not None:
        observation["encounter"] = {"reference": encounter}
    observation.update(overrides)
    return observation
