"""The fuzzing world's shapes (imported by name: ``from support.fuzz import ...``).

:class:`FuzzWorld` (what ``tests/integration/fuzz/conftest.py`` builds) and
:func:`operation_callers`: who can reach each operation of the app (public, a CDS client, or a
role whose token to send), read from each route's access marker like the route-permission test.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from ehr.core.openapi_document import access_markers
from ehr.platform.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from support.cds import CdsClientKey

__all__ = [
    "CDS_CLIENT",
    "PUBLIC",
    "TALLY",
    "TOKEN_TTL_SECONDS",
    "FuzzWorld",
    "operation_callers",
]

TOKEN_TTL_SECONDS = 3600  # a `make fuzz` run outlives the default 5-minute tokens
# Roles tried first when several hold a permission (the broadest clinical role, then admin).
ROLE_PREFERENCE = (Role.PHYSICIAN, Role.ADMIN, Role.PHARMACIST, Role.NURSE)
PUBLIC = "public"
CDS_CLIENT = "cds-client"
# A permission only API keys hold (``hl7:send``): the caller is an API key with it.
API_KEY_PREFIX = "api-key:"


@dataclass
class FuzzWorld:
    base_url: str
    tenant: str
    patient_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    burner_tokens: dict[str, str] = field(default_factory=dict)
    cds_issuer: str = ""
    cds_key: CdsClientKey | None = None
    # "METHOD /path/template" → PUBLIC, CDS_CLIENT or a role name
    callers: dict[str, str] = field(default_factory=dict)


# Answers seen by the fuzzer in this session, by status (printed in the terminal summary).
TALLY: Counter[int] = Counter()


def _role_for(permission: Permission) -> str:
    for role in ROLE_PREFERENCE:
        if permission in ROLE_PERMISSIONS[role]:
            return role.value
    for role, granted in ROLE_PERMISSIONS.items():
        if permission in granted:
            return role.value
    return f"{API_KEY_PREFIX}{permission.value}"  # no role: an interface engine's key


def operation_callers(app: FastAPI) -> dict[str, str]:
    """Who can reach each operation: PUBLIC, CDS_CLIENT, or the role whose token to send."""
    callers: dict[str, str] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        dependant = context.dependant
        assert isinstance(dependant, Dependant)
        markers = set(access_markers(dependant))
        permissions = [m for m in markers if isinstance(m, Permission)]
        if permissions:
            caller = _role_for(permissions[0])
        elif PUBLIC in markers:
            caller = PUBLIC
        elif context.path.startswith("/cds-services"):
            caller = CDS_CLIENT
        else:  # the FHIR gateway: SMART scopes decide; a physician's token reaches it
            caller = Role.PHYSICIAN.value
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", context.path)  # as OpenAPI writes it
        for method in context.methods or ():
            callers[f"{method} {path}"] = caller
        callers.setdefault(f"* {path}", caller)  # methods the route does not take (405)
    return callers
