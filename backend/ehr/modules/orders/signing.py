"""Signing in one call: the checks (medication safety through ``flows``, duplicate orders), the
block/override decision, and the sign's one transaction; the override counters (ADR 0020)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog
from prometheus_client import Counter

from ehr.modules.medication_safety import MedicationChecks
from ehr.modules.orders.errors import OrderSignBlocked
from ehr.modules.orders.findings import decide, duplicate_findings
from ehr.modules.orders.flows import medication_safety_findings, read_medication_record
from ehr.modules.orders.policy import duplicate_window
from ehr.modules.orders.schemas import Finding, OrderPolicy, Override
from ehr.modules.orders.service import OrderService, SignWrite
from ehr.modules.orders.views import kind_of

__all__ = ["SIGN_BLOCKED", "SIGN_OVERRIDES", "SignOutcome", "sign_findings", "sign_order"]

logger = structlog.get_logger(__name__)

SIGN_OVERRIDES: Final = Counter(
    "ehr_order_sign_overrides",  # exposed as ehr_order_sign_overrides_total
    "Interruptive findings overridden at order signing, by rule.",
    ["rule"],
)
SIGN_BLOCKED: Final = Counter(
    "ehr_order_sign_blocked",
    "Order signs refused for interruptive findings without an override, by rule.",
    ["rule"],
)


@dataclass(frozen=True, slots=True)
class SignOutcome:
    """A signed order, what the checks found, and what recorded the sign."""

    write: SignWrite
    findings: tuple[Finding, ...]
    overridden_rules: tuple[str, ...]


async def sign_findings(
    service: OrderService,
    checks: MedicationChecks,
    policy: OrderPolicy,
    patient: Mapping[str, Any],
    order: dict[str, Any],
    *,
    now: dt.datetime,
) -> list[Finding]:
    """Every finding for ``order``: medication safety on the current record (a medication
    order), or a duplicate of a placed order within the tenant's window (a service request)."""
    kind = kind_of(order)
    if order.get("resourceType") == "MedicationRequest":
        record = await read_medication_record(service.fhir, patient)
        return await medication_safety_findings(checks, record, order, now=now)
    window = duplicate_window(policy, kind or "")
    if window is None:
        return []
    code_field = "performerType" if kind == "referral" else "code"
    patient_id = str(patient["id"])
    existing = await service.recent_orders(
        patient_id, order, code_field=code_field, since=now - window
    )
    return duplicate_findings(
        order,
        existing,
        code_field=code_field,
        window=window,
        display=policy.duplicate_display,
        now=now,
    )


async def sign_order(
    service: OrderService,
    checks: MedicationChecks,
    policy: OrderPolicy,
    patient: Mapping[str, Any],
    current: dict[str, Any],
    *,
    if_match: str | None,
    override: Override | None,
) -> SignOutcome:
    """Check, decide and sign (refusals: 428/412/409 lifecycle, 409 ``order-sign-blocked``)."""
    version = service.signable(current, if_match)
    now = dt.datetime.now(dt.UTC)
    findings = await sign_findings(service, checks, policy, patient, current, now=now)
    try:
        decision = decide(findings, override)
    except OrderSignBlocked as blocked:
        for rule in blocked.extra.get("blocking_rules", []):
            SIGN_BLOCKED.labels(rule=rule).inc()
        logger.info(
            "orders.sign.blocked",
            resource_id=current.get("id"),
            rules=blocked.extra.get("blocking_rules"),
            tenant=service.fhir.tenant,
        )
        raise
    write = await service.commit_sign(
        current, version, decision, override, patient_id=str(patient["id"]), now=now
    )
    rules = tuple(sorted({f.rule for f in decision.overridden}))
    for finding in decision.overridden:
        SIGN_OVERRIDES.labels(rule=finding.rule).inc()
    return SignOutcome(write=write, findings=decision.findings, overridden_rules=rules)
