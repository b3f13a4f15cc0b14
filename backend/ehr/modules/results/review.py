"""The results rules for results that arrive from outside the results API (HL7 v2 ORU): the
tenant's critical-value table applied to FHIR Observations, and the acknowledgement Task of a
critical result (ADR 0022) — so a critical lab value reaches the clinician's worklist however
it was sent.

    review = await review_observations(session, tenant_id, observations)  # fullUrl -> resource
    review.critical                 # the fullUrls of the critical ones (the lab's or the table's)
    task = acknowledgement_for(patient_ref, report_ref, review.critical, authored=now)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ehr.fhir.datatypes import codings
from ehr.modules.results.codes import (
    CRITICAL_INTERPRETATIONS,
    INTERPRETATION_SYSTEM,
    LOINC_SYSTEM,
)
from ehr.modules.results.critical import critical_flag
from ehr.modules.results.policy import load_result_policy
from ehr.modules.results.resources import acknowledgement_task
from ehr.modules.results.units import UnitNotAllowed, units_ready

__all__ = ["ObservationReview", "acknowledgement_for", "review_observations"]

_V2_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v2-0078"
_UCUM = "http://unitsofmeasure.org"


@dataclass
class ObservationReview:
    """``critical``: fullUrls of critical Observations; ``flagged``: those the tenant's table
    found critical that the sender had not flagged (their interpretation is set to HH/LL)."""

    critical: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)


def _sender_critical(observation: Mapping[str, Any]) -> bool:
    for concept in observation.get("interpretation") or ():
        for coding in codings(concept):
            if coding.system in {INTERPRETATION_SYSTEM, _V2_INTERPRETATION} and (
                coding.code in CRITICAL_INTERPRETATIONS
            ):
                return True
    return False


def _loinc(observation: Mapping[str, Any]) -> str | None:
    for coding in codings(observation.get("code")):
        if coding.system == LOINC_SYSTEM and coding.code:
            return coding.code
    return None


async def review_observations(
    session: AsyncSession, tenant_id: uuid.UUID, observations: Mapping[str, dict[str, Any]]
) -> ObservationReview:
    """Judge ``observations`` (fullUrl → Observation, changed in place) by the tenant's
    critical-value table: a numeric LOINC result beyond its limit gets interpretation HH/LL
    (the lab's own flags are kept and count too). Units the table cannot compare are left as
    the sender judged them."""
    await units_ready()
    table = (await load_result_policy(session, tenant_id)).table
    review = ObservationReview()
    for url, observation in observations.items():
        if observation.get("status") not in {"preliminary", "final", "amended", "corrected"}:
            continue
        if _sender_critical(observation):
            review.critical.append(url)
            continue
        code, quantity = _loinc(observation), observation.get("valueQuantity")
        limit = table.limit_of(code) if code else None
        if limit is None or not isinstance(quantity, Mapping):
            continue
        value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
        if not isinstance(value, int | float) or not isinstance(unit, str):
            continue
        if quantity.get("system") not in {None, _UCUM}:
            continue
        try:
            flag = critical_flag(float(value), unit, limit)
        except UnitNotAllowed:
            continue
        if flag is None:
            continue
        observation["interpretation"] = [
            {"coding": [{"system": INTERPRETATION_SYSTEM, "code": flag}]},
            *[
                concept
                for concept in observation.get("interpretation") or ()
                if not any(c.system == INTERPRETATION_SYSTEM for c in codings(concept))
            ],
        ]
        review.critical.append(url)
        review.flagged.append(url)
    return review


def acknowledgement_for(
    patient_ref: str,
    report_ref: str,
    critical_refs: Sequence[str],
    *,
    authored: dt.datetime,
    requester: dict[str, Any],
) -> dict[str, Any]:
    """The acknowledgement Task of a critical report, for references that may be a
    transaction's placeholders (``urn:uuid:…``) as well as ``Patient/123``."""
    task = acknowledgement_task(
        "placeholder",
        report_ref=report_ref,
        critical_refs=critical_refs,
        authored=authored,
        order_id=None,
        owner=None,
        location_id=None,
        requester=requester,
    )
    task["for"] = {"reference": patient_ref}
    return task
