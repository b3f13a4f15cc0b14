"""The gateway's FHIR policy: SMART scopes x interactions, compartment constraints, bundles."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest

from ehr.core.errors import AppError, BadRequestError, NotFoundError, PermissionDenied
from ehr.platform.auth.permissions import Role, scopes_for
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway.compartment import COMPARTMENT
from ehr.platform.gateway.policy import (
    FhirInteraction,
    authorize,
    authorize_bundle,
    check_body,
    constrain,
    is_operation_allowed,
    parse_request,
)
from ehr.platform.gateway.scopes import Scope, parse_scope

ME = "pat-a"
OTHER = "pat-b"


def user(*scopes: str, patient_id: str | None = None) -> Principal:
    return Principal(
        kind="user",
        subject=uuid.uuid4(),
        tenant="t",
        tenant_id=uuid.uuid4(),
        roles=frozenset(),
        scopes=frozenset(scopes),
        patient_id=patient_id,
    )


def key(*scopes: str) -> Principal:
    return Principal(
        kind="api_key",
        subject=uuid.uuid4(),
        tenant="t",
        tenant_id=uuid.uuid4(),
        roles=frozenset(),
        scopes=frozenset(scopes),
    )


def portal(*scopes: str) -> Principal:
    return user(*scopes, patient_id=ME)


def req(method: str, path: str, query: str = "") -> FhirInteraction:
    params = tuple(tuple(p.split("=", 1)) for p in query.split("&") if p)
    return parse_request(method, path, params)  # type: ignore[arg-type]


def allowed(principal: Principal, interaction: FhirInteraction) -> bool:
    try:
        authorize(principal, interaction)
    except PermissionDenied:
        return False
    return True


# --- scope parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.rs", Scope("patient", "Observation", frozenset("rs"))),
        ("user/*.cruds", Scope("user", "*", frozenset("cruds"))),
        ("system/Patient.r", Scope("system", "Patient", frozenset("r"))),
        ("user/Patient.cud", Scope("user", "Patient", frozenset("cud"))),
        ("patient/*.read", Scope("patient", "*", frozenset("rs"))),
        ("user/Observation.write", Scope("user", "Observation", frozenset("cud"))),
        ("system/*.*", Scope("system", "*", frozenset("cruds"))),
        ("user/Observation.sr", None),  # v2 letters out of order
        ("user/Observation.rr", None),
        ("user/Observation.", None),
        ("user/Observation.x", None),
        ("patient/Observation.rs?category=laboratory", None),  # granular: not enforced
        ("openid", None),
        ("fhirUser", None),
        ("launch/patient", None),
        ("admin/Patient.rs", None),
        ("user/patient.rs", None),
    ],
)
def test_parse_scope(text: str, expected: Scope | None) -> None:
    assert parse_scope(text) == expected


# --- scopes x interactions --------------------------------------------------------------------

INTERACTIONS: dict[str, FhirInteraction] = {
    "read": req("GET", "Observation/o1"),
    "vread": req("GET", "Observation/o1/_history/2"),
    "search": req("GET", "Observation", "code=x"),
    "create": req("POST", "Observation"),
    "update": req("PUT", "Observation/o1"),
    "patch": req("PATCH", "Observation/o1"),
    "delete": req("DELETE", "Observation/o1"),
    "history": req("GET", "Observation/o1/_history"),
    "type-history": req("GET", "Observation/_history"),
    "cond-update": req("PUT", "Observation", "identifier=a|b"),
    "cond-delete": req("DELETE", "Observation", "identifier=a|b"),
    "post-search": req("POST", "Observation/_search"),
}

# (principal, interactions allowed); every other key of INTERACTIONS must be refused.
SCOPE_TABLE: list[tuple[str, Principal, set[str]]] = [
    (
        "v2 rs",
        user("user/Observation.rs"),
        {"read", "vread", "search", "history", "type-history", "post-search"},
    ),
    ("v2 r", user("user/Observation.r"), {"read", "vread"}),
    ("v2 s", user("user/Observation.s"), {"search", "post-search"}),
    ("v2 c", user("user/Observation.c"), {"create"}),
    ("v2 u", user("user/Observation.u"), {"update", "patch"}),
    ("v2 d", user("user/Observation.d"), {"delete"}),
    (
        "v2 us",
        user("user/Observation.us"),
        {"update", "patch", "cond-update", "search", "post-search"},
    ),
    ("v2 ds", user("user/Observation.ds"), {"delete", "cond-delete", "search", "post-search"}),
    (
        "v2 split r + s",
        user("user/Observation.r", "user/Observation.s"),
        {"read", "vread", "search", "history", "type-history", "post-search"},
    ),
    ("v2 cruds", user("user/Observation.cruds"), set(INTERACTIONS)),
    ("wildcard", user("user/*.cruds"), set(INTERACTIONS)),
    (
        "v1 read",
        user("user/Observation.read"),
        {"read", "vread", "search", "history", "type-history", "post-search"},
    ),
    ("v1 write", user("user/Observation.write"), {"create", "update", "patch", "delete"}),
    ("v1 *", user("user/*.*"), set(INTERACTIONS)),
    ("other type", user("user/Patient.cruds"), set()),
    ("no scopes", user("openid", "fhirUser"), set()),
    ("granular ignored", user("user/Observation.rs?category=laboratory"), set()),
    ("user/ scope on an API key", key("user/Observation.cruds"), set()),
    ("patient/ scope without patient context", user("patient/Observation.cruds"), set()),
    ("system/ scope on a user", user("system/Observation.cruds"), set()),
    ("system/ on an API key", key("system/Observation.cruds"), set(INTERACTIONS)),
    ("user/ scope in patient context", user("user/*.cruds", patient_id=ME), set()),
]


@pytest.mark.parametrize(
    ("label", "principal", "expected"), SCOPE_TABLE, ids=[r[0] for r in SCOPE_TABLE]
)
def test_scopes_by_interaction(label: str, principal: Principal, expected: set[str]) -> None:
    del label
    got = {name for name, i in INTERACTIONS.items() if allowed(principal, i)}
    assert got == expected


def test_capabilities_always_allowed() -> None:
    assert allowed(user(), req("GET", "metadata"))
    assert allowed(key(), req("GET", "metadata"))
    assert allowed(portal(), req("GET", "metadata"))


def test_system_level_search_and_history_need_a_wildcard() -> None:
    everything = req("GET", "", "_type=Observation,Patient")
    assert allowed(user("user/*.rs"), everything)
    assert allowed(user("user/Observation.s", "user/Patient.s"), everything)
    assert not allowed(user("user/Observation.s"), everything)
    assert not allowed(user("user/Observation.rs"), req("GET", "_history"))
    assert allowed(user("user/*.rs"), req("GET", "_history"))


def test_page_fetch_needs_some_search_scope() -> None:
    page = req("GET", "", "_getpages=abc&_getpagesoffset=20&_count=20&_bundletype=searchset")
    assert allowed(user("user/Observation.s"), page)
    assert allowed(portal("patient/Observation.rs"), page)
    assert not allowed(user("user/Observation.r"), page)
    assert constrain(portal("patient/Observation.rs"), page) == page
    # _getpages anywhere else: refused (the gateway binds page ids on top-level fetches only).
    assert not allowed(user("user/*.rs"), req("GET", "", "_getpages=abc&code=x"))
    assert not allowed(user("user/*.rs"), req("GET", "Observation", "_getpages=abc"))
    with pytest.raises(PermissionDenied):
        authorize_bundle(user("user/*.rs"), _bundle(_entry("GET", "?_getpages=abc")))


def test_matches_the_role_table() -> None:
    physician = user(*scopes_for([Role.PHYSICIAN]))
    assert allowed(physician, req("GET", "Observation/x"))
    assert allowed(physician, req("POST", "Observation"))
    assert not allowed(physician, req("DELETE", "Observation/x"))
    admin = user(*scopes_for([Role.ADMIN]))
    assert not allowed(admin, req("GET", "Observation/x"))
    billing = user(*scopes_for([Role.BILLING]))
    assert allowed(billing, req("GET", "Coverage", "status=active"))
    assert not allowed(billing, req("GET", "Observation/x"))


# --- operations -------------------------------------------------------------------------------

ADMIN_OPS = [
    ("POST", "$partition-management-create-partition"),
    ("POST", "$partition-management-delete-partition"),
    ("POST", "$expunge"),
    ("POST", "Patient/p1/$expunge"),
    ("POST", "$reindex"),
    ("POST", "CodeSystem/$upload-external-code-system"),
    ("POST", "$delete-expunge"),
    ("POST", "Subscription/s1/$trigger-subscription"),
    ("POST", "Patient/p1/$meta-delete"),
    ("POST", "Patient/$merge"),
    ("POST", "$mcp"),
    ("POST", "$made-up"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_OPS)
def test_admin_and_unknown_operations_refused_for_everyone(method: str, path: str) -> None:
    for principal in (user("user/*.cruds"), key("system/*.cruds"), portal("patient/*.cruds")):
        with pytest.raises(PermissionDenied):
            authorize(principal, req(method, path))


@pytest.mark.parametrize(
    ("principal", "method", "path", "ok"),
    [
        (user("user/*.rs"), "GET", "Patient/p1/$everything", True),
        (user("user/Patient.rs"), "GET", "Patient/p1/$everything", False),
        (portal("patient/*.rs"), "GET", f"Patient/{ME}/$everything", False),
        (user("user/*.rs"), "GET", "Observation/o1/$everything", False),
        (user("user/Observation.c"), "POST", "Observation/$validate", True),
        (user("user/Patient.r"), "POST", "Observation/$validate", False),
        (user("user/Observation.r"), "POST", "Observation/o1/$validate", True),
        (portal("patient/Observation.rs"), "POST", "Observation/o1/$validate", False),
        (portal("patient/Observation.rs"), "POST", "Observation/$validate", True),
        (user("user/Patient.r"), "GET", "ValueSet/$expand", True),
        (user("user/Patient.c"), "GET", "ValueSet/$expand", False),
        (portal("patient/Observation.rs"), "GET", "CodeSystem/$lookup", True),
        (user("user/Patient.r"), "GET", "ConceptMap/$translate", True),
        (user("user/Patient.r"), "GET", "ValueSet/vs/$validate-code", True),
        (user("user/Patient.r"), "GET", "Patient/$expand", False),
        (user("user/Patient.rs"), "GET", "Patient/$meta", True),
        (user("user/Patient.r"), "GET", "Patient/p1/$meta", True),
        (portal("patient/Patient.rs"), "GET", f"Patient/{ME}/$meta", False),
        (key("system/*.rs"), "GET", "$export", True),
        (key("system/*.rs"), "GET", "Patient/$export", True),
        (key("system/*.rs"), "GET", "Group/g1/$export", True),
        (key("system/*.rs"), "GET", "$export-poll-status", True),
        (key("system/Patient.rs"), "GET", "$export", False),
        (user("user/*.cruds"), "GET", "$export", False),
    ],
)
def test_allowed_operations(principal: Principal, method: str, path: str, ok: bool) -> None:
    assert allowed(principal, req(method, path)) is ok


def test_is_operation_allowed() -> None:
    assert is_operation_allowed(user("user/*.rs"), "$everything", "Patient")
    assert is_operation_allowed(user("user/*.rs"), "everything", "Patient")
    assert not is_operation_allowed(user("user/*.cruds"), "$expunge", None)
    assert not is_operation_allowed(key("system/*.cruds"), "$reindex", None)
    assert is_operation_allowed(user("user/ValueSet.r"), "$expand", "ValueSet")


# --- patient context: constrain ---------------------------------------------------------------

READER = portal(
    "patient/Patient.rs",
    "patient/Observation.rs",
    "patient/Condition.rs",
    "patient/Coverage.rs",
    "patient/Appointment.rs",
    "patient/Medication.rs",
)


@pytest.mark.parametrize("resource_type", sorted(set(COMPARTMENT) - {"Patient"}))
def test_every_compartment_search_gets_the_patient_param(resource_type: str) -> None:
    principal = portal(f"patient/{resource_type}.rs")
    out = constrain(principal, req("GET", resource_type, "_count=5"))
    rule = COMPARTMENT[resource_type]
    assert out.params == (("_count", "5"), (rule.param, f"Patient/{ME}"))
    assert constrain(principal, out) == out  # idempotent


@pytest.mark.parametrize(
    ("resource_type", "param"),
    [
        ("Observation", "patient"),
        ("Condition", "patient"),
        ("Coverage", "beneficiary"),
        ("Appointment", "patient"),
    ],
)
def test_read_becomes_a_compartment_search(resource_type: str, param: str) -> None:
    out = constrain(READER, req("GET", f"{resource_type}/x1", "_elements=id"))
    assert out.kind == "search"
    assert out.resource_id is None
    assert out.params == (("_id", "x1"), (param, f"Patient/{ME}"), ("_elements", "id"))


def test_patient_itself() -> None:
    assert constrain(READER, req("GET", f"Patient/{ME}")) == req("GET", f"Patient/{ME}")
    with pytest.raises(NotFoundError):
        constrain(READER, req("GET", f"Patient/{OTHER}"))
    with pytest.raises(NotFoundError):
        authorize(READER, req("GET", f"Patient/{OTHER}"))
    assert constrain(READER, req("GET", "Patient", "name=x")).params == (
        ("name", "x"),
        ("_id", ME),
    )
    assert constrain(READER, req("GET", "Patient", f"_id={ME}")).params == (("_id", ME),)
    for query in (f"_id={OTHER}", f"_id={ME},{OTHER}"):
        with pytest.raises(PermissionDenied):
            authorize(READER, req("GET", "Patient", query))
    assert allowed(READER, req("GET", f"Patient/{ME}/_history"))
    assert allowed(READER, req("GET", f"Patient/{ME}/_history/1"))
    assert not allowed(READER, req("GET", "Patient/_history"))


@pytest.mark.parametrize(
    "query",
    [
        f"patient={OTHER}",
        f"patient=Patient/{OTHER}",
        f"subject=Patient/{OTHER}",
        f"subject=Patient/{ME},Patient/{OTHER}",
        "subject:missing=true",
        f"subject:Patient=Patient/{OTHER}",
        "subject:identifier=urn:mrn|1",
    ],
)
def test_conflicting_compartment_params_refused(query: str) -> None:
    with pytest.raises(PermissionDenied):
        authorize(READER, req("GET", "Observation", query))
    with pytest.raises(PermissionDenied):
        constrain(READER, req("GET", "Observation", query))


def test_own_compartment_params_accepted() -> None:
    for query in (f"patient={ME}", f"patient=Patient/{ME}", f"subject=Patient/{ME}"):
        out = constrain(READER, req("GET", "Observation", query))
        assert ("patient", f"Patient/{ME}") in out.params


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Observation", "subject.name=Smith"),
        ("Observation", "subject:Patient.name=Smith"),
        ("Observation", "patient.identifier=urn:mrn|1"),
        ("Patient", "_has:Observation:patient:code=1234"),
        ("Practitioner", "_has:Observation:performer:patient=Patient/" + OTHER),
        ("Observation", "_filter=subject eq Patient/" + OTHER),
        ("Observation", "_query=x"),
        ("Observation", "_contained=true"),
        ("Observation", "_list=l1"),
        ("Observation", "_include=*"),
        ("Observation", "_include=Observation:performer"),
        ("Observation", "_include=Observation:has-member"),
        ("Observation", "_include:iterate=Observation:subject"),
        ("Observation", "_include=Observation:subject:Group"),
        ("Observation", "_include=Condition:subject"),
        ("Patient", "_include=Patient:link"),
        ("Patient", "_include=Patient:general-practitioner"),
        ("Observation", "_revinclude=Observation:has-member"),
        ("Patient", "_revinclude=Provenance:target"),
        ("Patient", "_revinclude=Observation:performer"),
        ("Patient", "_revinclude=DiagnosticReport:subject"),  # no scope for DiagnosticReport
        ("Patient", "_revinclude=*"),
        ("Patient", "_revinclude:iterate=Observation:subject"),
        ("Medication", "_revinclude=MedicationRequest:medication"),
    ],
)
def test_patient_context_refusals(path: str, query: str) -> None:
    with pytest.raises(PermissionDenied):
        authorize(READER, req("GET", path, query))
    with pytest.raises(PermissionDenied):
        constrain(READER, req("GET", path, query))


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Observation", "_include=Observation:subject"),
        ("Observation", "_include=Observation:patient"),
        ("Observation", "_include=Observation:subject:Patient"),
        ("Patient", "_revinclude=Observation:subject"),
        ("Patient", "_revinclude=Observation:patient"),
        ("Patient", "_revinclude=Condition:patient"),
        ("Coverage", "_include=Coverage:beneficiary"),
        ("Observation", "code=1234&_sort=-date&_count=10&_summary=true"),
    ],
)
def test_patient_context_includes_inside_the_compartment(path: str, query: str) -> None:
    authorize(READER, req("GET", path, query))
    out = constrain(READER, req("GET", path, query))
    assert (
        out.params[-1] == ("_id", ME) if path == "Patient" else out.params[-1][1] == f"Patient/{ME}"
    )


def test_patient_context_types_and_kinds() -> None:
    # Shared reference types: read-only, unchanged.
    medication = req("GET", "Medication/m1")
    assert constrain(READER, medication) == medication
    assert not allowed(portal("patient/Medication.cruds"), req("POST", "Medication"))
    # Types outside the compartment and the shared list: unreachable even with a wildcard.
    wild = portal("patient/*.cruds")
    for path in ("Group/g1", "Person", "RelatedPerson/r1", "AuditEvent", "Provenance", "Binary/b1"):
        assert not allowed(wild, req("GET", path))
    # System level, vread/history of compartment types, patch: refused.
    assert not allowed(wild, req("GET", "", "_type=Observation"))
    assert not allowed(wild, req("GET", "Observation/o1/_history/1"))
    assert not allowed(wild, req("GET", "Observation/o1/_history"))
    assert not allowed(wild, req("GET", "Observation/_history"))
    assert not allowed(wild, req("PATCH", "Observation/o1"))
    assert not allowed(wild, req("POST", "Patient"))
    assert not allowed(wild, req("DELETE", f"Patient/{ME}"))
    with pytest.raises(PermissionDenied):
        authorize(wild, req("PUT", f"Patient/{OTHER}"))


def test_patient_context_writes_are_pinned() -> None:
    writer = portal("patient/Observation.cruds")
    update = constrain(writer, req("PUT", "Observation/o1"))
    assert update.conditional
    assert update.resource_id is None
    assert update.params == (("_id", "o1"), ("patient", f"Patient/{ME}"))
    delete = constrain(writer, req("DELETE", "Observation/o1"))
    assert delete.params == (("_id", "o1"), ("patient", f"Patient/{ME}"))
    conditional = constrain(writer, req("DELETE", "Observation", "code=1"))
    assert conditional.params == (("code", "1"), ("patient", f"Patient/{ME}"))
    create = req("POST", "Observation")
    assert constrain(writer, create) == create
    conditional_create = FhirInteraction(
        "create", "POST", "Observation", None, None, (("identifier", "a|1"),), True
    )
    with pytest.raises(PermissionDenied, match="criteria"):
        authorize(writer, conditional_create)
    pinned = replace(
        conditional_create, params=(("identifier", "a|1"), ("patient", f"Patient/{ME}"))
    )
    authorize(writer, pinned)
    assert constrain(writer, pinned) == pinned
    # The gateway's header-only form (no criteria in params) is refused, never forwarded.
    with pytest.raises(PermissionDenied):
        authorize(writer, replace(conditional_create, params=()))


def test_user_and_system_contexts_unchanged() -> None:
    for principal in (user("user/*.cruds"), key("system/*.cruds")):
        for interaction in INTERACTIONS.values():
            assert constrain(principal, interaction) is interaction


# --- bodies -----------------------------------------------------------------------------------


def _obs(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": subject},
        **extra,
    }


def test_check_body() -> None:
    writer = portal(
        "patient/Observation.cruds", "patient/Patient.cruds", "patient/Appointment.cruds"
    )
    create = req("POST", "Observation")
    check_body(writer, create, _obs(f"Patient/{ME}"))
    for body in (
        _obs(f"Patient/{OTHER}"),
        _obs("Group/g1"),
        _obs(f"https://elsewhere/fhir/Patient/{ME}"),
        _obs(f"Patient/{ME}", performer=[{"reference": f"Patient/{OTHER}"}]),
        {"resourceType": "Observation", "status": "final"},
    ):
        with pytest.raises(PermissionDenied):
            check_body(writer, create, body)
    with pytest.raises(BadRequestError):
        check_body(writer, create, {"resourceType": "Patient", "id": ME})
    with pytest.raises(BadRequestError):
        check_body(writer, req("PUT", "Observation/o1"), {**_obs(f"Patient/{ME}"), "id": "o2"})
    check_body(writer, req("PUT", f"Patient/{ME}"), {"resourceType": "Patient", "id": ME})
    appointment = req("POST", "Appointment")
    check_body(
        writer,
        appointment,
        {
            "resourceType": "Appointment",
            "participant": [
                {"actor": {"reference": "Practitioner/d"}},
                {"actor": {"reference": f"Patient/{ME}"}},
            ],
        },
    )
    with pytest.raises(PermissionDenied):
        check_body(
            writer,
            appointment,
            {
                "resourceType": "Appointment",
                "participant": [
                    {"actor": {"reference": f"Patient/{ME}"}},
                    {"actor": {"reference": f"Patient/{OTHER}"}},
                ],
            },
        )
    # User context: only type/id consistency.
    check_body(user("user/*.cruds"), create, _obs(f"Patient/{OTHER}"))


# --- bundles ----------------------------------------------------------------------------------


def _bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _entry(
    method: str, url: str, resource: dict[str, Any] | None = None, **request: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        entry["resource"] = resource
    return entry


def test_bundle_user_context() -> None:
    nurse = user(*scopes_for([Role.NURSE]))
    authorize_bundle(
        nurse,
        _bundle(_entry("POST", "Observation", _obs("Patient/p")), _entry("GET", "Patient?name=x")),
    )
    with pytest.raises(PermissionDenied, match="entry 1"):
        authorize_bundle(
            nurse, _bundle(_entry("GET", "Patient/p"), _entry("DELETE", "Observation/o1"))
        )
    with pytest.raises(PermissionDenied):
        authorize_bundle(nurse, _bundle(_entry("POST", "$reindex"), kind="batch"))
    with pytest.raises(PermissionDenied):
        authorize_bundle(
            nurse, _bundle(_entry("GET", "https://hapi.internal/fhir/other/Patient/p"))
        )
    with pytest.raises(BadRequestError):
        authorize_bundle(
            nurse, _bundle(_entry("PUT", "Observation/o1", {**_obs("Patient/p"), "id": "o2"}))
        )
    with pytest.raises(BadRequestError):
        authorize_bundle(nurse, {"resourceType": "Bundle", "type": "collection"})
    with pytest.raises(BadRequestError):
        authorize_bundle(nurse, _bundle({"resource": _obs("Patient/p")}))


@pytest.mark.parametrize(
    "entry",
    [
        _entry("GET", "Observation/o-of-b"),
        _entry("GET", "Observation?code=1"),
        _entry("GET", f"Observation?patient=Patient/{OTHER}"),
        _entry("GET", f"Observation?patient=Patient/{ME}&subject.name=x"),
        _entry("GET", f"Observation?patient=Patient/{ME}&_include=Observation:performer"),
        _entry("GET", f"Patient?_id={ME}&_revinclude=Provenance:target"),
        _entry("GET", f"Patient/{OTHER}"),
        _entry("GET", "Observation/o1/_history/1"),
        _entry("POST", "Observation", _obs(f"Patient/{OTHER}")),
        _entry("PUT", "Observation/o1", {**_obs(f"Patient/{ME}"), "id": "o1"}),
        _entry("DELETE", "Observation/o1"),
        _entry("POST", "Observation", _obs(f"Patient/{ME}"), ifNoneExist="identifier=a|1"),
        _entry("GET", "Group/g1"),
    ],
)
def test_bundle_patient_context_refusals(entry: dict[str, Any]) -> None:
    writer = portal("patient/Observation.cruds", "patient/Patient.rs", "patient/Group.rs")
    with pytest.raises(AppError) as refused:
        authorize_bundle(writer, _bundle(_entry("GET", f"Patient/{ME}"), entry))
    assert refused.value.status_code in (403, 404)
    assert "entry 1" in refused.value.detail


def test_bundle_patient_context_accepted() -> None:
    writer = portal("patient/Observation.cruds", "patient/Patient.rs")
    authorize_bundle(
        writer,
        _bundle(
            _entry("GET", f"Patient/{ME}"),
            _entry("GET", f"Observation?patient=Patient/{ME}&code=1"),
            _entry("GET", f"Observation?_id=o1&patient=Patient/{ME}"),
            _entry("POST", "Observation", _obs(f"Patient/{ME}")),
            _entry("PUT", f"Observation?_id=o1&patient=Patient/{ME}", _obs(f"Patient/{ME}")),
            _entry("DELETE", f"Observation?_id=o2&patient=Patient/{ME}"),
            _entry(
                "POST",
                "Observation",
                _obs(f"Patient/{ME}"),
                ifNoneExist=f"identifier=a|1&patient=Patient/{ME}",
            ),
            kind="batch",
        ),
    )


# --- parse_request ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kind", "rtype", "rid", "op", "conditional"),
    [
        ("GET", "metadata", "capabilities", None, None, None, False),
        ("POST", "", "transaction", None, None, None, False),
        ("GET", "Patient", "search", "Patient", None, None, False),
        ("POST", "Patient/_search", "search", "Patient", None, None, False),
        ("POST", "Patient", "create", "Patient", None, None, False),
        ("GET", "Patient/p1", "read", "Patient", "p1", None, False),
        ("PUT", "Patient/p1", "update", "Patient", "p1", None, False),
        ("PATCH", "Patient/p1", "patch", "Patient", "p1", None, False),
        ("DELETE", "Patient/p1", "delete", "Patient", "p1", None, False),
        ("GET", "Patient/p1/_history", "history", "Patient", "p1", None, False),
        ("GET", "Patient/p1/_history/3", "vread", "Patient", "p1", None, False),
        ("GET", "Patient/_history", "history", "Patient", None, None, False),
        ("GET", "_history", "history", None, None, None, False),
        ("GET", "Patient/p1/$everything", "operation", "Patient", "p1", "$everything", False),
        ("POST", "$export", "operation", None, None, "$export", False),
    ],
)
def test_parse_request(
    method: str,
    path: str,
    kind: str,
    rtype: str | None,
    rid: str | None,
    op: str | None,
    conditional: bool,
) -> None:
    got = parse_request(method, path)
    assert (got.kind, got.resource_type, got.resource_id, got.operation, got.conditional) == (
        kind,
        rtype,
        rid,
        op,
        conditional,
    )
    assert parse_request("PUT", "Patient", (("identifier", "a|1"),)).conditional


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "Patient"),
        ("GET", "patient/p1"),
        ("GET", "Patient/p1/x/y/z"),
        ("GET", "Patient/p$1"),
    ],
)
def test_parse_request_refuses(method: str, path: str) -> None:
    with pytest.raises(BadRequestError):
        parse_request(method, path)


# --- user/system context: includes, chains and _has need scopes on what they reach ------------


@pytest.mark.parametrize(
    ("scopes", "query", "ok"),
    [
        (("user/Patient.rs",), "_revinclude=Observation:patient", False),
        (("user/Patient.rs", "user/Observation.rs"), "_revinclude=Observation:patient", True),
        (("user/Patient.rs",), "_has:Observation:patient:code=1234", False),
        (("user/Patient.rs", "user/Observation.s"), "_has:Observation:patient:code=1234", True),
        (
            ("user/Patient.rs", "user/Observation.s"),
            "_has:Observation:patient:_has:AuditEvent:entity:agent=x",
            False,
        ),
        (("user/Patient.rs",), "general-practitioner:Practitioner.name=x", False),
        (
            ("user/Patient.rs", "user/Practitioner.s"),
            "general-practitioner:Practitioner.name=x",
            True,
        ),
        (("user/Patient.rs", "user/Organization.r"), "_include=Patient:organization", True),
        (("user/Patient.rs",), "_include=Patient:organization", False),
        (
            ("user/Patient.rs", "user/Practitioner.rs"),
            "_include=Patient:general-practitioner",
            False,
        ),
        (
            ("user/Patient.rs", "user/Practitioner.rs"),
            "_include=Patient:general-practitioner:Practitioner",
            True,
        ),
        (
            ("user/Patient.rs", "user/Organization.r"),
            "_include:iterate=Patient:organization",
            False,
        ),
        (("user/*.rs",), "_include=*&_revinclude=*&link.name=x", True),
    ],
)
def test_user_context_reach(scopes: tuple[str, ...], query: str, ok: bool) -> None:
    assert allowed(user(*scopes), req("GET", "Patient", query)) is ok
    assert (
        allowed(key(*(s.replace("user/", "system/") for s in scopes)), req("GET", "Patient", query))
        is ok
    )


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/Subscription", ""),
        ("GET", "/Subscription/abc", ""),
        ("POST", "/Subscription", ""),
        ("PUT", "/Subscription/abc", ""),
        ("DELETE", "/Subscription/abc", ""),
        ("GET", "/", "_type=Patient,Subscription"),
    ],
)
def test_subscriptions_belong_to_the_platform_even_for_a_wildcard_scope(
    method: str, path: str, query: str
) -> None:
    everything = key("system/*.cruds")
    with pytest.raises(PermissionDenied):
        authorize(everything, req(method, path, query))


def test_platform_tags_are_refused_on_client_bodies() -> None:
    writer = user("user/Observation.cruds")
    body = {**_obs("Patient/x"), "meta": {"tag": [{"system": "urn:ehr:platform", "code": "x"}]}}
    with pytest.raises(PermissionDenied):
        check_body(writer, req("POST", "/Observation"), body)
    other = {**_obs("Patient/x"), "meta": {"tag": [{"system": "urn:other", "code": "x"}]}}
    check_body(writer, req("POST", "/Observation"), other)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body, "request": {"method": "POST", "url": "Observation"}}],
    }
    with pytest.raises(PermissionDenied):
        authorize_bundle(writer, bundle)
