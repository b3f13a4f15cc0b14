"""The gateway's upstream call: the decided interaction sent to the caller's HAPI partition.

:func:`forward` caps the query (:func:`~ehr.platform.gateway.limits.cap_params`), builds the
forwarded headers (a conditional create's criteria back into ``If-None-Exist``; a ``POST
_search``'s parameters back into its form), opens the request over the pooled client
(:mod:`ehr.fhir.passthrough`) and hands the answer to :func:`~ehr.platform.gateway.response.respond`
with the interaction's audit note (the patients a search/history/``$everything`` answer named go
into it; a large streamed answer records them at its end). A read the
policy turned into a compartment search is answered here with its single match or 404.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from ehr.core.dependencies import AppResources
from ehr.fhir import FhirClient
from ehr.fhir.bundles import bundle_resources
from ehr.fhir.errors import FhirUpstreamError
from ehr.fhir.passthrough import FhirPassThrough, forwardable_request_headers
from ehr.fhir.transport import Interaction
from ehr.platform.audit.dependencies import AccessNote
from ehr.platform.audit.recorder import trail_for, write_trail
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.decision import page_owner
from ehr.platform.gateway.enforcement import Decision
from ehr.platform.gateway.intake import FHIR_JSON, FORM, Intake
from ehr.platform.gateway.interactions import ParsedInteraction
from ehr.platform.gateway.limits import cap_params
from ehr.platform.gateway.pages import require_registry
from ehr.platform.gateway.response import (
    SMALL_ANSWER,
    ResultAudit,
    raise_upstream_failure,
    respond,
    single_resource,
)
from ehr.platform.gateway.rewrite import StreamRewriter

__all__ = ["forward"]

_METRIC_INTERACTIONS: Final[dict[str, Interaction]] = {
    "read": "read",
    "vread": "vread",
    "search": "search",
    "create": "create",
    "update": "update",
    "patch": "patch",
    "delete": "delete",
    "history": "history",
    "transaction": "transaction",
    "batch": "batch",
    "capabilities": "metadata",
}
_RETURNS_DATA: Final = frozenset({"search", "history"})


def _result_audit(
    principal: Principal,
    request: Request,
    resources: AppResources,
    interaction: ParsedInteraction,
) -> ResultAudit:
    async def audit_result(rewriter: StreamRewriter, status: int) -> None:
        # A large (streamed) answer's patients, written before its last bytes are released: if
        # the record cannot be written the stream is cut (the client gets no complete answer).
        if status != 200 or not rewriter.patient_ids:
            return
        trail = trail_for(principal, request)
        ids = sorted(rewriter.patient_ids)
        trail.access(
            f"fhir:{interaction.kind}.result",
            resource_type=interaction.resource_type,
            resource_id=interaction.resource_id,
            patient_id=ids[0] if len(ids) == 1 else None,
            details={"patients": ids, "truncated": rewriter.patients_truncated},
        )
        await write_trail(resources.sessionmaker, trail, outcome="success", http_status=status)

    return audit_result


async def _compartment_search(
    passthrough: FhirPassThrough,
    tenant: str,
    interaction: ParsedInteraction,
    read: ParsedInteraction,
    upstream_timeout: float,
) -> dict[str, Any] | None:
    """The resource ``read`` asked for, if the compartment-constrained search finds it."""
    params = [*interaction.params]
    if not any(name == "_id" for name, _ in params):
        params.append(("_id", read.resource_id or ""))
    upstream = await passthrough.open(
        "GET",
        tenant,
        interaction.path,
        interaction="search",
        params=params,
        headers={"accept": FHIR_JSON, "cache-control": "no-cache"},
        timeout=upstream_timeout,
    )
    try:
        await raise_upstream_failure(upstream)
        if upstream.status_code != 200:
            return None
        bundle = json.loads(await upstream.read(SMALL_ANSWER))
    except ValueError as exc:
        raise FhirUpstreamError("The FHIR server answered with something that is not JSON") from exc
    finally:
        await upstream.aclose()
    return next(
        (
            resource
            for resource in bundle_resources(bundle, read.resource_type)
            if resource.get("id") == read.resource_id
        ),
        None,
    )


async def forward(
    request: Request,
    principal: Principal,
    resources: AppResources,
    fhir: FhirClient,
    intake: Intake,
    decision: Decision,
    *,
    page_id: str | None,
    public: str,
    note: AccessNote | None = None,
) -> Response:
    """Send the decided interaction to the caller's partition and pass the answer back; the
    patients a search/history/``$everything`` answer names go into ``note`` (its audit record)."""
    gw = resources.settings.gateway
    tenant = principal.tenant
    parsed = intake.interaction
    interaction = decision.interaction
    passthrough = FhirPassThrough(fhir)
    timeout = gw.upstream_timeout_seconds
    headers = forwardable_request_headers(list(request.headers.items()))

    if decision.read_as_search:
        # Patient context: a read became a compartment search; answer its single match or 404.
        found = await _compartment_search(passthrough, tenant, interaction, parsed, timeout)
        return single_resource(found, parsed, public, passthrough.hapi_bases(tenant))

    content = intake.content
    params = cap_params(interaction.kind, interaction.params, gw)
    if interaction.kind == "create":
        if interaction.conditional:
            headers["if-none-exist"] = urlencode(params, safe=":|,/")
        params = ()
    if interaction.kind == "search":
        headers["cache-control"] = "no-cache"
    if intake.form_params is not None:
        # POST _search: the (capped) parameters go in the form body, not the URL.
        content = urlencode(params).encode()
        headers["content-type"] = FORM
        params = ()
    returns_data = interaction.kind in _RETURNS_DATA or interaction.operation == "$everything"

    if interaction.operation == "$export":
        # Its job must be bound to the caller: no kick-off while the registry is down (ADR 0013).
        await require_registry(resources.redis)
    upstream = await passthrough.open(
        interaction.method,
        tenant,
        "" if page_id is not None else interaction.path,
        interaction=_METRIC_INTERACTIONS.get(interaction.kind, "operation"),
        params=params,
        headers=headers,
        content=content,
        timeout=timeout,
    )
    return await respond(
        upstream,
        passthrough.hapi_bases(tenant),
        public,
        capture_pages=interaction.kind in {"search", "history", "operation"},
        redis=resources.redis,
        owner=page_owner(principal),
        page_ttl=gw.page_ttl_seconds,
        buffer_bytes=gw.buffer_answer_bytes,
        export_kickoff=interaction.operation == "$export",
        note=note if returns_data else None,
        on_streamed=_result_audit(principal, request, resources, interaction)
        if returns_data
        else None,
    )
