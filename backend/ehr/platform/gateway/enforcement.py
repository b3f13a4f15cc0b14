"""Calling the SMART-scope / compartment policy (``ehr.platform.gateway.policy``) for one
interaction.

The policy module is the policy engineer's; this adapter is the gateway's only contact with it:
``authorize`` → ``constrain`` (→ ``authorize_bundle`` for transaction/batch). The module is looked
up by name when first needed, so the gateway also builds while the policy is being written —
and, fail-closed, refuses every interaction (403) when no policy is installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Final, Protocol, cast

from ehr.core.errors import PermissionDenied
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.interactions import ParsedInteraction

__all__ = ["POLICY_MODULE", "Decision", "PolicyModule", "enforce", "load_policy"]

POLICY_MODULE: Final = "ehr.platform.gateway.policy"


class PolicyModule(Protocol):
    """What the gateway uses of ``ehr.platform.gateway.policy``."""

    FhirInteraction: Any

    def authorize(self, principal: Principal, interaction: Any) -> None: ...

    def constrain(self, principal: Principal, interaction: Any) -> Any: ...

    def authorize_bundle(self, principal: Principal, bundle: Mapping[str, Any]) -> None: ...


def load_policy() -> PolicyModule:
    """The installed policy module; 403 (fail closed) when there is none."""
    try:
        module: ModuleType = importlib.import_module(POLICY_MODULE)
    except ImportError as exc:
        raise PermissionDenied("No FHIR access policy is installed") from exc
    return cast(PolicyModule, module)


@dataclass(frozen=True, slots=True)
class Decision:
    """What HAPI must execute, as the policy allowed it (possibly compartment-constrained)."""

    interaction: ParsedInteraction
    # A read the policy turned into a compartment search: answer its single match or 404.
    read_as_search: bool


def enforce(
    principal: Principal,
    parsed: ParsedInteraction,
    *,
    bundle: Mapping[str, Any] | None = None,
    resource: Mapping[str, Any] | None = None,
) -> Decision:
    """authorize → constrain (→ check_body / authorize_bundle); raises 403/404 as decided.

    ``resource`` is a create/update body the gateway parsed (small bodies; always in patient
    context), checked by the policy's ``check_body`` when it has one.
    """
    policy = load_policy()
    interaction = policy.FhirInteraction(
        kind=parsed.kind,
        method=parsed.method,
        resource_type=parsed.resource_type,
        resource_id=parsed.resource_id,
        operation=parsed.operation,
        params=parsed.params,
        conditional=parsed.conditional,
    )
    policy.authorize(principal, interaction)
    constrained = policy.constrain(principal, interaction)
    if parsed.kind in {"transaction", "batch"}:
        if bundle is None:
            raise PermissionDenied("A transaction or batch needs its Bundle")
        policy.authorize_bundle(principal, bundle)
    check_body = getattr(policy, "check_body", None)
    if resource is not None and parsed.kind in {"create", "update"} and callable(check_body):
        check_body(principal, constrained, resource)
    result = replace(
        parsed,
        kind=constrained.kind,
        method=str(constrained.method),
        resource_type=constrained.resource_type,
        resource_id=constrained.resource_id,
        operation=constrained.operation,
        params=tuple((str(k), str(v)) for k, v in constrained.params),
        conditional=bool(constrained.conditional),
    )
    return Decision(
        interaction=result,
        read_as_search=parsed.kind == "read" and result.kind == "search",
    )
