"""Synthetic demo data: five fictional patients with a small, coded clinical history.

Everything here is made up: the names are obviously synthetic, every resource carries the
identifier systems ``urn:ehr:demo:*`` and the tag ``urn:ehr:demo|synthetic``. Codes are real
(SNOMED CT conditions and allergies, LOINC observations with UCUM units, RxNorm medications).

Each patient and its history is posted as ONE FHIR transaction; every entry is a conditional
create on its demo identifier (``ifNoneExist``), so re-running the seed matches what exists and
creates nothing new. References between entries use ``urn:uuid:`` full URLs; when the Patient
already exists HAPI resolves them to the stored patient.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import structlog

from ehr.fhir import TenantFhirClient, create_entry, iter_entries, new_full_url, transaction_bundle

__all__ = [
    "DEMO_IDENTIFIER_PREFIX",
    "DEMO_MRN_SYSTEM",
    "DEMO_TAG",
    "SeedReport",
    "demo_patient_bundles",
    "seed_demo_data",
]

logger = structlog.get_logger(__name__)

DEMO_MRN_SYSTEM: Final = "urn:ehr:demo:mrn"
DEMO_IDENTIFIER_PREFIX: Final = "urn:ehr:demo:"
DEMO_TAG: Final = {"system": "urn:ehr:demo", "code": "synthetic", "display": "Synthetic demo data"}

SNOMED: Final = "http://snomed.info/sct"
LOINC: Final = "http://loinc.org"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM: Final = "http://unitsofmeasure.org"
_OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
_CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION: Final = (
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
)
_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass(frozen=True, slots=True)
class _Vital:
    loinc: str
    display: str
    value: float
    unit: str  # UCUM code (also used as the display unit)
    category: str = "vital-signs"


@dataclass(frozen=True, slots=True)
class _DemoPatient:
    mrn: str
    family: str
    given: tuple[str, ...]
    gender: str
    birth_date: str
    encounter_date: str
    conditions: tuple[tuple[str, str], ...]  # (SNOMED code, display)
    observations: tuple[_Vital, ...]
    medications: tuple[tuple[str, str], ...]  # (RxNorm code, display)
    allergies: tuple[tuple[str, str, str], ...]  # (SNOMED code, display, criticality)


_PATIENTS: Final[tuple[_DemoPatient, ...]] = (
    _DemoPatient(
        mrn="DEMO-0001",
        family="Synthetica",
        given=("Ada", "Demo"),
        gender="female",
        birth_date="1958-03-14",
        encounter_date="2024-02-06",
        conditions=(("38341003", "Hypertensive disorder, systemic arterial"),),
        observations=(
            _Vital("8480-6", "Systolic blood pressure", 148, "mm[Hg]"),
            _Vital("8462-4", "Diastolic blood pressure", 92, "mm[Hg]"),
            _Vital("8867-4", "Heart rate", 78, "/min"),
            _Vital("29463-7", "Body weight", 71.5, "kg"),
            _Vital(
                "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", 0.9, "mg/dL", "laboratory"
            ),
        ),
        medications=(("314076", "lisinopril 10 MG Oral Tablet"),),
        allergies=(("91936005", "Allergy to penicillin", "high"),),
    ),
    _DemoPatient(
        mrn="DEMO-0002",
        family="Fictus",
        given=("Ben", "Sample"),
        gender="male",
        birth_date="1971-11-02",
        encounter_date="2024-03-19",
        conditions=(
            ("44054006", "Diabetes mellitus type 2"),
            ("55822004", "Hyperlipidemia"),
        ),
        observations=(
            _Vital("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 7.8, "%", "laboratory"),
            _Vital(
                "2345-7", "Glucose [Mass/volume] in Serum or Plasma", 162, "mg/dL", "laboratory"
            ),
            _Vital(
                "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", 231, "mg/dL", "laboratory"
            ),
            _Vital("29463-7", "Body weight", 94.2, "kg"),
            _Vital("8302-2", "Body height", 178, "cm"),
        ),
        medications=(
            ("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"),
            ("312961", "simvastatin 20 MG Oral Tablet"),
        ),
        allergies=(("300916003", "Latex allergy", "low"),),
    ),
    _DemoPatient(
        mrn="DEMO-0003",
        family="Exemplar",
        given=("Cleo",),
        gender="female",
        birth_date="1994-07-21",
        encounter_date="2024-04-02",
        conditions=(("195967001", "Asthma"),),
        observations=(
            _Vital("8867-4", "Heart rate", 88, "/min"),
            _Vital("9279-1", "Respiratory rate", 18, "/min"),
            _Vital("8310-5", "Body temperature", 37.1, "Cel"),
            _Vital("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 97, "%"),
        ),
        medications=(("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),),
        allergies=(("91935009", "Allergy to peanuts", "high"),),
    ),
    _DemoPatient(
        mrn="DEMO-0004",
        family="Placeholder",
        given=("Dev", "Mock"),
        gender="male",
        birth_date="1949-01-30",
        encounter_date="2024-05-14",
        conditions=(
            ("38341003", "Hypertensive disorder, systemic arterial"),
            ("49436004", "Atrial fibrillation"),
        ),
        observations=(
            _Vital("8480-6", "Systolic blood pressure", 136, "mm[Hg]"),
            _Vital("8462-4", "Diastolic blood pressure", 84, "mm[Hg]"),
            _Vital("8867-4", "Heart rate", 104, "/min"),
            _Vital(
                "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", 1.3, "mg/dL", "laboratory"
            ),
        ),
        medications=(
            ("197361", "amlodipine 5 MG Oral Tablet"),
            ("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
        ),
        allergies=(),
    ),
    _DemoPatient(
        mrn="DEMO-0005",
        family="Mockwell",
        given=("Eve", "Testa"),
        gender="female",
        birth_date="1983-09-09",
        encounter_date="2024-06-25",
        conditions=(("35489007", "Depressive disorder"),),
        observations=(
            _Vital("29463-7", "Body weight", 63.0, "kg"),
            _Vital("8302-2", "Body height", 165, "cm"),
            _Vital("39156-5", "Body mass index (BMI) [Ratio]", 23.1, "kg/m2"),
        ),
        medications=(("313782", "acetaminophen 325 MG Oral Tablet"),),
        allergies=(("232347008", "Dander (animal) allergy", "low"),),
    ),
)


@dataclass(slots=True)
class SeedReport:
    """What a seed run did: per resource type, how many entries were created vs. already there."""

    tenant: str
    patients: int = 0
    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)

    @property
    def created_total(self) -> int:
        return sum(self.created.values())

    @property
    def existing_total(self) -> int:
        return sum(self.existing.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "patients": self.patients,
            "created": dict(sorted(self.created.items())),
            "existing": dict(sorted(self.existing.items())),
        }


def _identifier(kind: str, value: str) -> dict[str, str]:
    return {"system": f"{DEMO_IDENTIFIER_PREFIX}{kind}", "value": value}


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _entry(
    resource: dict[str, Any],
    identifier: dict[str, str],
    tags: Sequence[Mapping[str, str]],
    *,
    full_url: str | None = None,
) -> dict[str, Any]:
    resource = {
        **resource,
        "meta": {"tag": [dict(tag) for tag in tags]},
        "identifier": [identifier],
    }
    condition = {"identifier": f"{identifier['system']}|{identifier['value']}"}
    return create_entry(resource, full_url=full_url, if_none_exist=condition)


def _patient_bundle(demo: _DemoPatient, tags: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    patient_url = new_full_url()
    encounter_url = new_full_url()
    subject = {"reference": patient_url}
    moment = f"{demo.encounter_date}T09:30:00Z"
    entries = [
        _entry(
            {
                "resourceType": "Patient",
                "active": True,
                "name": [
                    {
                        "use": "official",
                        "family": demo.family,
                        "given": list(demo.given),
                        "text": f"{' '.join(demo.given)} {demo.family}",
                    }
                ],
                "gender": demo.gender,
                "birthDate": demo.birth_date,
            },
            _identifier("mrn", demo.mrn),
            tags,
            full_url=patient_url,
        ),
        _entry(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": _ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "type": [_coding(SNOMED, "185349003", "Encounter for check up")],
                "subject": subject,
                "period": {"start": moment, "end": f"{demo.encounter_date}T10:00:00Z"},
            },
            _identifier("encounter", f"{demo.mrn}-E1"),
            tags,
            full_url=encounter_url,
        ),
    ]
    for index, (code, display) in enumerate(demo.conditions, start=1):
        entries.append(
            _entry(
                {
                    "resourceType": "Condition",
                    "clinicalStatus": _coding(_CONDITION_CLINICAL, "active", "Active"),
                    "verificationStatus": _coding(
                        _CONDITION_VERIFICATION, "confirmed", "Confirmed"
                    ),
                    "category": [
                        _coding(
                            "http://terminology.hl7.org/CodeSystem/condition-category",
                            "problem-list-item",
                            "Problem List Item",
                        )
                    ],
                    "code": _coding(SNOMED, code, display),
                    "subject": subject,
                    "encounter": {"reference": encounter_url},
                    "recordedDate": moment,
                },
                _identifier("condition", f"{demo.mrn}-C{index}"),
                tags,
            )
        )
    for index, vital in enumerate(demo.observations, start=1):
        category_display = "Vital Signs" if vital.category == "vital-signs" else "Laboratory"
        entries.append(
            _entry(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [_coding(_OBS_CATEGORY, vital.category, category_display)],
                    "code": _coding(LOINC, vital.loinc, vital.display),
                    "subject": subject,
                    "encounter": {"reference": encounter_url},
                    "effectiveDateTime": moment,
                    "valueQuantity": {
                        "value": vital.value,
                        "unit": vital.unit,
                        "system": UCUM,
                        "code": vital.unit,
                    },
                },
                _identifier("observation", f"{demo.mrn}-O{index}"),
                tags,
            )
        )
    for index, (code, display) in enumerate(demo.medications, start=1):
        entries.append(
            _entry(
                {
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": _coding(RXNORM, code, display),
                    "subject": subject,
                    "encounter": {"reference": encounter_url},
                    "authoredOn": moment,
                    "dosageInstruction": [{"text": "As directed (synthetic demo)"}],
                },
                _identifier("medication-request", f"{demo.mrn}-M{index}"),
                tags,
            )
        )
    for index, (code, display, criticality) in enumerate(demo.allergies, start=1):
        entries.append(
            _entry(
                {
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": _coding(_ALLERGY_CLINICAL, "active", "Active"),
                    "verificationStatus": _coding(_ALLERGY_VERIFICATION, "confirmed", "Confirmed"),
                    "type": "allergy",
                    "criticality": criticality,
                    "code": _coding(SNOMED, code, display),
                    "patient": subject,
                    "recordedDate": moment,
                },
                _identifier("allergy", f"{demo.mrn}-A{index}"),
                tags,
            )
        )
    return transaction_bundle(entries)


def demo_patient_bundles(
    extra_tags: Iterable[Mapping[str, str]] = (),
) -> list[dict[str, Any]]:
    """One transaction Bundle per demo patient (``extra_tags`` are added to every resource)."""
    tags = [DEMO_TAG, *extra_tags]
    return [_patient_bundle(demo, tags) for demo in _PATIENTS]


async def seed_demo_data(
    fhir: TenantFhirClient, *, extra_tags: Iterable[Mapping[str, str]] = ()
) -> SeedReport:
    """Post the demo patients (one transaction each) into ``fhir``'s tenant; idempotent."""
    report = SeedReport(tenant=fhir.tenant)
    for bundle in demo_patient_bundles(extra_tags):
        result = await fhir.transaction(bundle)
        responses = iter_entries(result)
        for request_entry, response in zip(bundle["entry"], responses, strict=False):
            resource_type = str(request_entry["resource"]["resourceType"])
            if response.status == 201:
                report.created[resource_type] += 1
            else:
                report.existing[resource_type] += 1
        report.patients += 1
    logger.info(
        "seed.demo.completed",
        tenant=report.tenant,
        patients=report.patients,
        created=report.created_total,
        existing=report.existing_total,
    )
    return report
