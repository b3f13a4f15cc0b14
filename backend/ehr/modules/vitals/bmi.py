"""The BMI derived from a weight and a height (FHIR ``derivedFrom`` naming both): made with a
new set of vitals (the height may be the patient's last within a year), recomputed when the
weight or height it was derived from is corrected, and found again to follow an
entered-in-error (the service writes each change in the same transaction as its cause).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from ehr.fhir import (
    FhirResourceGone,
    FhirResourceNotFound,
    TenantFhirClient,
    bundle_resources,
    create_entry,
    reference_parts,
    update_entry,
)
from ehr.modules.vitals.catalogue import BMI, BODY_HEIGHT, BODY_WEIGHT, LOINC_SYSTEM
from ehr.modules.vitals.observations import (
    apply_values,
    loinc_code,
    observation,
    quantity_of,
    search_params,
)
from ehr.modules.vitals.rules import Measured, ValueOutOfRange, derive_bmi

__all__ = ["PRIOR_HEIGHT_MAX_AGE", "DerivedBmis"]

# A height measured longer ago than this is not used to derive a BMI.
PRIOR_HEIGHT_MAX_AGE: Final = dt.timedelta(days=365)


class DerivedBmis:
    """The derived BMIs of one tenant's patients."""

    def __init__(self, fhir: TenantFhirClient) -> None:
        self._fhir = fhir

    async def for_new_set(
        self,
        patient_id: str,
        by_code: Mapping[str, tuple[str, Measured]],
        effective: dt.datetime,
        encounter_id: str | None,
    ) -> dict[str, Any] | None:
        """The create entry of the BMI of this set's weight and height (or the last height)."""
        if BMI.code in by_code or BODY_WEIGHT.code not in by_code:
            return None
        weight_url, weight = by_code[BODY_WEIGHT.code]
        if BODY_HEIGHT.code in by_code:
            height_url, height = by_code[BODY_HEIGHT.code]
            height_cm = height.value
        else:
            prior = await self.prior_height(patient_id, effective)
            if prior is None:
                return None
            height_url, height_cm = prior
        bmi = (
            derive_bmi(weight.value, height_cm)
            if weight.value is not None and height_cm is not None
            else None
        )
        if bmi is None:
            return None
        resource = observation(
            patient_id,
            Measured(BMI, BMI.code, value=bmi),
            effective=effective,
            encounter_id=encounter_id,
            derived_from=(weight_url, height_url),
        )
        return create_entry(resource)

    async def prior_height(
        self, patient_id: str, effective: dt.datetime
    ) -> tuple[str, float] | None:
        """The patient's last height within :data:`PRIOR_HEIGHT_MAX_AGE` before ``effective``."""
        since = (effective - PRIOR_HEIGHT_MAX_AGE).date().isoformat()
        bundle = await self._fhir.search(
            "Observation",
            [
                *search_params(patient_id),
                ("code", f"{LOINC_SYSTEM}|{BODY_HEIGHT.code}"),
                ("date", f"ge{since}"),
                ("date", f"le{effective.isoformat()}"),
                ("_sort", "-date"),
                ("_count", "1"),
            ],
        )
        for resource in bundle_resources(bundle, "Observation"):
            value, unit = quantity_of(resource.get("valueQuantity"))
            if value is not None and unit == BODY_HEIGHT.unit and resource.get("id"):
                return f"Observation/{resource['id']}", value
        return None

    async def derived_from(self, patient_id: str, vital_id: str) -> list[dict[str, Any]]:
        """The valid Observations (BMIs) derived from ``vital_id``."""
        bundle = await self._fhir.search(
            "Observation",
            [
                *search_params(patient_id),
                ("derived-from", f"Observation/{vital_id}"),
                ("_count", "20"),
            ],
        )
        return bundle_resources(bundle, "Observation")

    async def recomputed(
        self, patient_id: str, vital_id: str, corrected: Measured
    ) -> list[dict[str, Any]]:
        """Update entries of the BMIs derived from a corrected weight or height.

        A correction that makes a derived BMI impossible is refused (``value_out_of_range``).
        """
        if corrected.vital not in (BODY_WEIGHT, BODY_HEIGHT) or corrected.value is None:
            return []
        entries: list[dict[str, Any]] = []
        for bmi in await self.derived_from(patient_id, vital_id):
            if loinc_code(bmi) != BMI.code:
                continue
            others = [
                parts.resource_id
                for parts in (reference_parts(r) for r in bmi.get("derivedFrom") or [])
                if parts is not None
                and parts.resource_type == "Observation"
                and parts.resource_id != vital_id
            ]
            if len(others) != 1:
                continue
            try:
                other = await self._fhir.read("Observation", others[0])
            except (FhirResourceNotFound, FhirResourceGone):
                continue
            other_value, _ = quantity_of(other.get("valueQuantity"))
            if other_value is None:
                continue
            weight, height = (
                (corrected.value, other_value)
                if corrected.vital is BODY_WEIGHT
                else (other_value, corrected.value)
            )
            value = derive_bmi(weight, height)
            if value is None:
                raise ValueOutOfRange(
                    "The corrected value would make the BMI derived from it impossible",
                    extra={"loinc": corrected.vital.code},
                )
            updated = dict(bmi)
            apply_values(updated, Measured(BMI, BMI.code, value=value))
            updated["status"] = "amended"
            entries.append(update_entry(updated, if_match=(bmi.get("meta") or {}).get("versionId")))
        return entries
