"""The gateway's decision on one interaction: who owns the page it follows, what the policy allows,
and the audit note of the access.

:func:`decide` checks, in this order: that a ``_getpages`` id is the caller's (404 otherwise,
:mod:`ehr.platform.gateway.pages`), the SMART-scope / compartment policy
(:mod:`ehr.platform.gateway.enforcement`: 403/404, or the compartment-bound interaction HAPI
must execute), and that an ``$export-poll-status`` job is the caller's. :func:`note_access` then
writes the audit note of the interaction as the caller asked it.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from ehr.platform.audit.dependencies import AccessNote, AuditTrail
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.enforcement import Decision, enforce
from ehr.platform.gateway.intake import Intake
from ehr.platform.gateway.interactions import ParsedInteraction
from ehr.platform.gateway.pages import EXPORT_KEY_PREFIX, check_page

__all__ = ["decide", "note_access", "page_owner"]

_PATIENT_PARAMS = frozenset({"patient", "subject", "subject:Patient", "patient._id"})


def page_owner(principal: Principal) -> str:
    """Search pages and export jobs belong to the principal whose search/kick-off created them
    (tenant AND user/key): not even another user of the same tenant may follow them."""
    return f"{principal.tenant}:{principal.subject}"


async def decide(redis: Redis, principal: Principal, intake: Intake) -> tuple[Decision, str | None]:
    """The policy's decision on the interaction, and the ``_getpages`` id it follows (if any)."""
    owner = page_owner(principal)
    parsed = intake.interaction
    page_id = next((value for name, value in parsed.params if name == "_getpages"), None)
    if page_id is not None:
        await check_page(redis, owner, page_id)
    decision = enforce(principal, parsed, bundle=intake.bundle, resource=intake.resource)
    interaction = decision.interaction
    if interaction.operation == "$export-poll-status":
        job_id = next((value for name, value in interaction.params if name == "_jobId"), "")
        await check_page(redis, owner, job_id, prefix=EXPORT_KEY_PREFIX)
    return decision, page_id


def _patient_of(principal: Principal, interaction: ParsedInteraction) -> str | None:
    """The patient this interaction concerns, when known without reading data."""
    if principal.patient_id:
        return principal.patient_id
    if interaction.resource_type == "Patient" and interaction.resource_id:
        return interaction.resource_id
    for name, value in interaction.params:
        if name in _PATIENT_PARAMS:
            ref = value.removeprefix("Patient/")
            if ref and "/" not in ref and "," not in ref:
                return ref
    return None


def note_access(
    audit: AuditTrail,
    principal: Principal,
    parsed: ParsedInteraction,
    decision: Decision,
    page_id: str | None,
) -> AccessNote:
    """The audit note ``fhir:<kind>`` of the interaction (method, operation, parameter names);
    the answer's patients are added to it once known (:mod:`ehr.platform.gateway.response`)."""
    interaction = decision.interaction
    details: dict[str, Any] = {"method": interaction.method}
    if interaction.operation:
        details["operation"] = interaction.operation
    if interaction.conditional:
        details["conditional"] = True
    if page_id is not None:
        details["page"] = True
    if interaction.kind in {"search", "history"}:
        details["params"] = sorted({name for name, _ in interaction.params})
    # A read the policy turned into a compartment search is still audited as the read it was.
    audited = parsed if decision.read_as_search else interaction
    return audit.access(
        f"fhir:{audited.kind}",
        resource_type=audited.resource_type,
        resource_id=audited.resource_id,
        patient_id=_patient_of(principal, audited),
        details=details,
    )
