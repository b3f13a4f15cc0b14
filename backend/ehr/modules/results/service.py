"""Recording and reading laboratory results through the tenant-bound FHIR client (ADR 0022).

Recording is ONE FHIR transaction: the Observations, the DiagnosticReport grouping them, the
acknowledgement Task when a result is critical, and — for a final report answering an order —
the order's move to ``completed`` (a versioned update: ``request.ifMatch`` on the version just
read, so an order revoked meanwhile makes the whole transaction fail with 409
``order_changed``; nothing is half written). The order must be this patient's (else 422
``order_not_found``, another patient's order is not told apart from a missing one) and
``active`` (else 409 ``order_not_active``: revoked, on hold, completed, entered-in-error or a
draft take no results).

Reads: one search per page (``_include`` the results, ``_revinclude`` the acknowledgement
Task). A portal user (role patient) sees a report only once it is *released*
(:func:`released`): status final, amended or corrected; issued at least the tenant's release
delay ago; and, when critical, acknowledged by a clinician first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import structlog

from ehr.fhir import (
    FhirConflict,
    FhirPreconditionFailed,
    FhirResourceGone,
    FhirResourceNotFound,
    TenantFhirClient,
    create_entry,
    iter_entries,
    new_full_url,
    reference_of,
    search_result,
    transaction_bundle,
    update_entry,
    version_id,
)
from ehr.modules.clinical_record import newest_first, recorder_reference
from ehr.modules.patients import compartment_of
from ehr.modules.results.codes import (
    ACKNOWLEDGE_CRITICAL,
    LOINC_SYSTEM,
    REPORT_CATEGORY_SYSTEM,
    TASK_CODE_SYSTEM,
    check_loinc,
)
from ehr.modules.results.errors import (
    AlreadyAcknowledged,
    EffectiveInFuture,
    IssuedBeforeEffective,
    LocationNotFound,
    NoCriticalResult,
    OrderChanged,
    OrderNotActive,
    OrderNotFound,
)
from ehr.modules.results.interpretation import judge
from ehr.modules.results.policy import TenantResultPolicy
from ehr.modules.results.resources import (
    acknowledgement_task,
    completed_task,
    diagnostic_report,
    observation,
)
from ehr.modules.results.schemas import ResultRecord, ResultReport
from ehr.modules.results.units import units_ready
from ehr.modules.results.views import ref_id, report_view, when
from ehr.platform.auth.principal import Principal

__all__ = [
    "RELEASED_STATUSES",
    "ReportPage",
    "ResultService",
    "is_acknowledgement",
    "released",
    "report_key",
]

logger = structlog.get_logger(__name__)

RELEASED_STATUSES: Final = frozenset({"final", "amended", "corrected"})
FUTURE_TOLERANCE: Final = dt.timedelta(minutes=5)
# Reports read beyond a page, so that reports sharing the cursor's instant are not lost.
_TIE_SLACK: Final = 20
ReportKey = tuple[int | str, ...]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def is_acknowledgement(resource: Mapping[str, Any]) -> bool:
    """Whether ``resource`` is one of our acknowledgement Tasks."""
    if resource.get("resourceType") != "Task":
        return False
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    return any(
        isinstance(c, Mapping)
        and c.get("system") == TASK_CODE_SYSTEM
        and c.get("code") == ACKNOWLEDGE_CRITICAL
        for c in codings or []
    )


def released(
    report: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    *,
    now: dt.datetime,
    delay: dt.timedelta,
) -> bool:
    """Whether a portal user may see ``report`` (module doc)."""
    if report.get("status") not in RELEASED_STATUSES:
        return False
    issued = when(report.get("issued"))
    if issued is None or issued > now - delay:
        return False
    return task is None or task.get("status") == "completed"


def report_key(report: Mapping[str, Any]) -> ReportKey:
    """A report's position in a list: newest effective first, then by id."""
    return (*newest_first(report.get("effectiveDateTime")), str(report.get("id", "")))


def _is_patients(resource: Mapping[str, Any], patient_id: str) -> bool:
    return ref_id(resource.get("subject"), "Patient") == patient_id


@dataclass(frozen=True, slots=True)
class ReportPage:
    """One page of a patient's reports and the position of its last one (None: last page)."""

    reports: list[ResultReport]
    resources: list[dict[str, Any]]
    last: ReportKey | None


class ResultService:
    """The results use cases for one tenant (the router has opened the patient's chart)."""

    def __init__(
        self, fhir: TenantFhirClient, *, principal: Principal, policy: TenantResultPolicy
    ) -> None:
        self._fhir = fhir
        self._principal = principal
        self._policy = policy
        self._portal = compartment_of(principal) is not None

    @property
    def policy(self) -> TenantResultPolicy:
        return self._policy

    # --- record -------------------------------------------------------------------------------

    async def record(self, patient_id: str, payload: ResultRecord) -> ResultReport:
        """Store the report, its results, a critical result's Task and the order's completion
        in one transaction (module doc); the stored report as the API shows it."""
        await units_ready()
        now = _now()
        issued = payload.issued or now
        check_loinc(payload.code, field="code")
        if payload.effective > now + FUTURE_TOLERANCE:
            raise EffectiveInFuture("The specimen cannot have been collected in the future.")
        if issued + FUTURE_TOLERANCE < payload.effective:
            raise IssuedBeforeEffective("A report is issued after its specimen is collected.")
        table = self._policy.table
        judged = []
        for index, result in enumerate(payload.observations):
            check_loinc(result.code, field=f"observations[{index}].code")
            judged.append(judge(result, table, field=f"observations[{index}]"))
        order = (
            await self._active_order(patient_id, payload.order_id)
            if payload.order_id is not None
            else None
        )
        if payload.location_id is not None:
            await self._check_location(payload.location_id)
        performer = recorder_reference(self._principal)
        urls = [new_full_url() for _ in payload.observations]
        entries = [
            create_entry(
                observation(
                    patient_id,
                    result,
                    verdict,
                    status=payload.status,
                    effective=payload.effective,
                    issued=issued,
                    order_id=payload.order_id,
                    performer=performer,
                ),
                full_url=url,
            )
            for url, result, verdict in zip(urls, payload.observations, judged, strict=True)
        ]
        report_url = new_full_url()
        entries.append(
            create_entry(
                diagnostic_report(
                    patient_id, payload, issued=issued, result_refs=urls, performer=performer
                ),
                full_url=report_url,
            )
        )
        critical = [url for url, verdict in zip(urls, judged, strict=True) if verdict.critical]
        if critical:
            entries.append(
                create_entry(
                    acknowledgement_task(
                        patient_id,
                        report_ref=report_url,
                        critical_refs=critical,
                        authored=now,
                        order_id=payload.order_id,
                        owner=_requester(order),
                        location_id=payload.location_id or _location(order),
                        requester=performer,
                    )
                )
            )
        completes = order is not None and payload.status == "final"
        if order is not None and completes:
            entries.append(
                update_entry({**order, "status": "completed"}, if_match=version_id(order))
            )
        try:
            response = await self._fhir.transaction(
                transaction_bundle(entries), return_resources=True
            )
        except (FhirConflict, FhirPreconditionFailed) as exc:
            if not completes:
                raise
            raise OrderChanged(
                "The order changed while the results were recorded; read it and retry.",
                extra={"order_id": payload.order_id},
            ) from exc
        stored = [entry.resource for entry in iter_entries(response) if entry.resource]
        report = next(r for r in stored if r.get("resourceType") == "DiagnosticReport")
        task = next((r for r in stored if is_acknowledgement(r)), None)
        logger.info(
            "results.record.completed",
            tenant=self._fhir.tenant,
            resource_type="DiagnosticReport",
            resource_id=report.get("id"),
            observations=len(urls),
            critical=len(critical),
            order_completed=completes,
        )
        return self._view(report, patient_id, _by_reference(stored), task, now)

    async def _active_order(self, patient_id: str, order_id: str) -> dict[str, Any]:
        try:
            order = await self._fhir.read("ServiceRequest", order_id)
        except (FhirResourceNotFound, FhirResourceGone):
            raise OrderNotFound(
                "No such order for this patient.", extra={"order_id": order_id}
            ) from None
        if not _is_patients(order, patient_id):
            raise OrderNotFound("No such order for this patient.", extra={"order_id": order_id})
        status = order.get("status")
        if status != "active":
            raise OrderNotActive(
                f"The order is {status}; only an active order takes results.",
                extra={"order_id": order_id, "order_status": status},
            )
        return order

    async def _check_location(self, location_id: str) -> None:
        try:
            await self._fhir.read("Location", location_id)
        except (FhirResourceNotFound, FhirResourceGone):
            raise LocationNotFound(
                "No such unit (Location) in this tenant.", extra={"location_id": location_id}
            ) from None

    # --- read ---------------------------------------------------------------------------------

    async def get(self, patient_id: str, report_id: str) -> tuple[dict[str, Any], ResultReport]:
        """The report ``report_id`` of the patient (404 if it is another patient's, or not yet
        released to a portal user) and its view."""
        bundle = await self._fhir.search(
            "DiagnosticReport",
            [
                ("_id", report_id),
                ("_include", "DiagnosticReport:result"),
                ("_revinclude", "Task:focus"),
            ],
            single_page=True,
        )
        found = search_result([bundle], "DiagnosticReport", complete=True)
        report = next((r for r in found.matches if _is_patients(r, patient_id)), None)
        if report is None:
            raise FhirResourceNotFound("The FHIR resource does not exist")
        task = _task_of(report, found.included.values())
        now = _now()
        if self._portal and not released(report, task, now=now, delay=self._policy.release_delay):
            raise FhirResourceNotFound("The FHIR resource does not exist")
        return report, self._view(report, patient_id, found.included, task, now)

    async def page(
        self,
        patient_id: str,
        *,
        code: str | None,
        since: dt.date | None,
        until: dt.date | None,
        status: Sequence[str],
        limit: int,
        after: ReportKey | None,
        after_instant: str | None,
        visible: Callable[[Mapping[str, Any]], bool],
    ) -> ReportPage:
        """One page of the patient's reports, newest first, after the cursor's position."""
        params: list[tuple[str, str]] = [
            ("subject", f"Patient/{patient_id}"),
            ("category", f"{REPORT_CATEGORY_SYSTEM}|LAB"),
            ("_sort", "-date"),
            ("_count", str(limit + 1 + _TIE_SLACK)),
            ("_include", "DiagnosticReport:result"),
            ("_revinclude", "Task:focus"),
        ]
        if code is not None:
            params.append(("code", f"{LOINC_SYSTEM}|{code}"))
        if since is not None:
            params.append(("date", f"ge{since.isoformat()}"))
        if until is not None:
            params.append(("date", f"le{until.isoformat()}"))
        if after_instant is not None:
            params.append(("date", f"le{after_instant}"))
        statuses = set(status)
        if self._portal:
            # A portal user asking for unreleased statuses (preliminary) gets none of them.
            statuses = (statuses & RELEASED_STATUSES) if statuses else set(RELEASED_STATUSES)
            if not statuses:
                return ReportPage(reports=[], resources=[], last=None)
        if statuses:
            params.append(("status", ",".join(sorted(statuses))))
        else:
            params.append(("status:not", "entered-in-error"))
        bundle = await self._fhir.search("DiagnosticReport", params, single_page=True)
        found = search_result([bundle], "DiagnosticReport", complete=True)
        now = _now()
        rows = []
        for report in found.matches:
            if not _is_patients(report, patient_id) or not visible(report):
                continue
            task = _task_of(report, found.included.values())
            if self._portal and not released(
                report, task, now=now, delay=self._policy.release_delay
            ):
                continue
            if after is not None and report_key(report) <= after:
                continue
            rows.append((report, task))
        rows.sort(key=lambda row: report_key(row[0]))
        shown = rows[:limit]
        more = len(rows) > limit
        return ReportPage(
            reports=[self._view(r, patient_id, found.included, t, now) for r, t in shown],
            resources=[r for r, _ in shown],
            last=report_key(shown[-1][0]) if shown and more else None,
        )

    # --- acknowledge --------------------------------------------------------------------------

    async def acknowledge(
        self, patient_id: str, report_id: str, *, comment: str | None, if_match: str | None
    ) -> ResultReport:
        """Complete the report's acknowledgement Task (who, when, comment), versioned: the
        caller's ``If-Match`` (the Task version it saw) or the version just read. A second
        acknowledgement — or one racing another — is 409 ``already_acknowledged``."""
        report, _ = await self.get(patient_id, report_id)
        found = await self._fhir.search_all(
            "Task",
            [
                ("focus", f"DiagnosticReport/{report_id}"),
                ("code", f"{TASK_CODE_SYSTEM}|{ACKNOWLEDGE_CRITICAL}"),
            ],
            max_pages=1,
        )
        task = next((t for t in found.matches if is_acknowledgement(t)), None)
        if task is None:
            raise NoCriticalResult("This report has no critical result to acknowledge.")
        if task.get("status") == "completed":
            raise AlreadyAcknowledged(
                "This critical result was acknowledged already.",
                extra={"task_id": task.get("id")},
            )
        version = if_match if if_match is not None else version_id(task)
        now = _now()
        done = completed_task(
            task, who=recorder_reference(self._principal), when=now, comment=comment
        )
        try:
            stored = await self._fhir.update(done, if_match=version)
        except FhirPreconditionFailed as exc:
            if if_match is not None:
                raise
            raise AlreadyAcknowledged(
                "This critical result was acknowledged meanwhile.",
                extra={"task_id": task.get("id")},
            ) from exc
        logger.info(
            "results.acknowledge.completed",
            tenant=self._fhir.tenant,
            resource_type="Task",
            resource_id=stored.get("id"),
            waited_seconds=int((now - (when(task.get("authoredOn")) or now)).total_seconds()),
        )
        del report
        _, view = await self.get(patient_id, report_id)
        return view

    # --- helpers ------------------------------------------------------------------------------

    def _view(
        self,
        report: Mapping[str, Any],
        patient_id: str,
        included: Mapping[str, Mapping[str, Any]],
        task: Mapping[str, Any] | None,
        now: dt.datetime,
    ) -> ResultReport:
        return report_view(
            report, patient_id, included, task, now=now, escalation=self._policy.escalation
        )


def _task_of(
    report: Mapping[str, Any], included: Sequence[Mapping[str, Any]] | Any
) -> Mapping[str, Any] | None:
    """The report's acknowledgement Task among ``included`` (the newest, if several)."""
    tasks = [
        t
        for t in included
        if is_acknowledgement(t) and ref_id(t.get("focus"), "DiagnosticReport") == report.get("id")
    ]
    if not tasks:
        return None
    return max(tasks, key=lambda t: str(t.get("authoredOn") or ""))


def _by_reference(resources: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {reference_of(r): r for r in resources if isinstance(r.get("id"), str)}


def _requester(order: Mapping[str, Any] | None) -> dict[str, Any] | None:
    requester = order.get("requester") if order is not None else None
    return dict(requester) if isinstance(requester, Mapping) else None


def _location(order: Mapping[str, Any] | None) -> str | None:
    locations = order.get("locationReference") if order is not None else None
    if isinstance(locations, list) and locations:
        return ref_id(locations[0], "Location")
    return None
