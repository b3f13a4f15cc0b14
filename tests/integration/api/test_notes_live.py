"""/api/patients/{id}/notes against the real HAPI: draft → sign → amend → addendum; two
physicians signing at once (exactly one signs); co-signature; a signed note is immutable; the
roles (a nurse writes drafts but cannot sign; front desk sees nothing; a patient sees only its
own signed notes).

The caller is injected with ``dependency_overrides``: ``caller.be(role)`` switches it, and the
``X-Live-As`` header picks one of the named physicians (for the concurrent sign); real tokens
and tenants are exercised by the acceptance matrix.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select
from support.database import Sessions
from support.tenants import MakeTenant

from ehr.core.config import Settings
from ehr.core.db.models import AuditRecord, NoteTemplate
from ehr.core.error_handlers import PROBLEM_JSON
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.platform.auth.dependencies import get_current_principal
from ehr.platform.auth.principal import Principal

pytestmark = pytest.mark.integration

TagForCleanup = Callable[[str, str], Awaitable[None]]
AS = "X-Live-As"


class Caller:
    """The principal the app sees; tests switch its role, or name one per request."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.principal = self.make("physician")
        self.named: dict[str, Principal] = {}

    def make(
        self,
        role: str,
        patient_id: str | None = None,
        name: str | None = None,
        tenant_id: uuid.UUID | None = None,
    ) -> Principal:
        return Principal(
            kind="user",
            subject=uuid.uuid4(),
            tenant=self.tenant,
            tenant_id=tenant_id or uuid.uuid4(),
            roles=frozenset({role}),
            username=name or f"live.{role}",
            patient_id=patient_id,
        )

    def be(self, role: str, patient_id: str | None = None) -> None:
        self.principal = self.make(role, patient_id)

    def physician(self, name: str) -> dict[str, str]:
        """Headers that make the request come from the physician ``name``."""
        self.named.setdefault(name, self.make("physician", name=name))
        return {AS: name}


@pytest.fixture(scope="module")
def caller(app: FastAPI, settings: Settings) -> Iterator[Caller]:
    holder = Caller(settings.fhir.default_tenant)

    async def current(request: Request) -> Principal:
        named = request.headers.get(AS)
        return holder.named[named] if named else holder.principal

    app.dependency_overrides[get_current_principal] = current
    try:
        yield holder
    finally:
        app.dependency_overrides.pop(get_current_principal, None)


@pytest.fixture(autouse=True)
def as_physician(caller: Caller) -> None:
    caller.be("physician")


@pytest.fixture(scope="module")
async def created_notes(live_fhir: FhirClient) -> AsyncIterator[list[str]]:
    """Notes this module created, deleted newest first at its end: an amendment or addendum
    refers to its note, and a note to its encounter, so HAPI's referential integrity wants
    them gone before the session's tag clean-up (which does not know DocumentReference)."""
    ids: list[str] = []
    yield ids
    tenant = live_fhir.for_tenant(live_fhir.default_tenant)
    for note_id in reversed(ids):
        # The signature acts' Provenance refers to the note: it goes first.
        for record in await _provenance_of(tenant, note_id):
            await tenant.delete("Provenance", str(record["id"]))
        await tenant.delete("DocumentReference", note_id)


async def _provenance_of(fhir: TenantFhirClient, note_id: str) -> list[dict[str, Any]]:
    bundle = await fhir.search("Provenance", [("target", f"DocumentReference/{note_id}")])
    return [e["resource"] for e in bundle.get("entry") or []]


@pytest.fixture
def tag_for_cleanup(tag_for_cleanup: TagForCleanup, created_notes: list[str]) -> TagForCleanup:
    """The shared tagger, also remembering notes for :func:`created_notes`."""

    async def tag(resource_type: str, resource_id: str) -> None:
        await tag_for_cleanup(resource_type, resource_id)
        if resource_type == "DocumentReference":
            created_notes.append(resource_id)

    return tag


async def _patient(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    created = await live_tenant_fhir.create(
        {
            "resourceType": "Patient",
            "meta": {"tag": [test_tag]},
            "name": [{"family": f"Zznote{test_tag['code'].replace('-', '')}"}],
        }
    )
    return str(created["id"])


@pytest.fixture
async def patient_id(live_tenant_fhir: TenantFhirClient, test_tag: dict[str, str]) -> str:
    return await _patient(live_tenant_fhir, test_tag)


async def _audited_actions(db: Sessions, resource_id: str) -> set[str]:
    """The PHI audit actions recorded for one resource (written before the answer is sent)."""
    async with db() as session:
        rows = await session.scalars(
            select(AuditRecord.action).where(AuditRecord.resource_id == resource_id)
        )
        return set(rows)


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    return str(response.json()["code"])


async def _draft(
    api: httpx.AsyncClient,
    tag: TagForCleanup,
    patient_id: str,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    response = await api.post(
        f"/api/patients/{patient_id}/notes", json={"kind": "soap", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    note: dict[str, Any] = response.json()
    await tag("DocumentReference", note["id"])
    return note


async def test_draft_sign_amend_addendum(
    api: httpx.AsyncClient,
    db: Sessions,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    encounter = await api.post(f"/api/patients/{patient_id}/encounters", json={"class_code": "AMB"})
    await tag_for_cleanup("Encounter", encounter.json()["id"])
    note = await _draft(api, tag_for_cleanup, patient_id, encounter_id=encounter.json()["id"])
    assert note["doc_status"] == "preliminary"
    assert note["type_code"] == "11506-3"
    assert "## Subjective" in note["text"]
    assert note["encounter_id"] == encounter.json()["id"]
    base = f"/api/patients/{patient_id}/notes/{note['id']}"

    edited = await api.put(
        base, json={"text": "S: cough\nP: rest"}, headers={"If-Match": f'W/"{note["version"]}"'}
    )
    assert edited.status_code == 200, edited.text
    stale = await api.put(base, json={"text": "lost"}, headers={"If-Match": note["version"]})
    assert stale.status_code == 412

    signed = await api.post(f"{base}/sign")
    assert signed.status_code == 200, signed.text
    assert signed.json()["doc_status"] == "final"
    assert signed.json()["signed_at"] is not None
    assert signed.json()["authenticator"]["display"] == "live.physician"
    assert signed.json()["complete"] is True

    immutable = await api.put(
        base, json={"text": "changed"}, headers={"If-Match": signed.json()["version"]}
    )
    assert immutable.status_code == 409
    assert _code(immutable) == "note_signed_immutable"
    assert _code(await api.post(f"{base}/sign")) == "note_signed_immutable"

    amended = await api.post(f"{base}/amend", json={"text": "S: cough, 3 days\nP: rest"})
    assert amended.status_code == 201, amended.text
    amendment = amended.json()
    await tag_for_cleanup("DocumentReference", amendment["id"])
    assert amendment["doc_status"] == "amended"
    assert amendment["signed_at"] is not None
    assert amendment["relates_to"] == [{"code": "replaces", "note_id": note["id"]}]
    assert amendment["encounter_id"] == encounter.json()["id"]

    old = await live_tenant_fhir.read("DocumentReference", note["id"])
    assert old["status"] == "superseded"
    assert old["docStatus"] == "final"
    data = old["content"][0]["attachment"]["data"]
    assert base64.b64decode(data).decode() == "S: cough\nP: rest"
    assert _code(await api.post(f"{base}/amend", json={"text": "x"})) == "note_not_current"

    added = await api.post(
        f"/api/patients/{patient_id}/notes/{amendment['id']}/addenda",
        json={"text": "Chest X-ray clear.", "content_type": "text/plain"},
    )
    assert added.status_code == 201, added.text
    addendum = added.json()
    await tag_for_cleanup("DocumentReference", addendum["id"])
    assert addendum["relates_to"] == [{"code": "appends", "note_id": amendment["id"]}]
    assert addendum["doc_status"] == "preliminary"
    signed_addendum = await api.post(f"/api/patients/{patient_id}/notes/{addendum['id']}/sign")
    assert signed_addendum.json()["doc_status"] == "final"

    listed = await api.get(f"/api/patients/{patient_id}/notes")
    assert {n["id"] for n in listed.json()["items"]} == {
        note["id"],
        amendment["id"],
        addendum["id"],
    }


async def test_a_draft_is_its_authors_only(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    author = caller.physician("dr.author")
    other = caller.physician("dr.other")
    note = await _draft(api, tag_for_cleanup, patient_id, headers=author)
    base = f"/api/patients/{patient_id}/notes/{note['id']}"
    edit = await api.put(
        base, json={"text": "not mine"}, headers={**other, "If-Match": note["version"]}
    )
    assert edit.status_code == 403
    assert _code(edit) == "note_not_author"
    withdraw = await api.post(f"{base}/entered-in-error", headers=other)
    assert withdraw.status_code == 403
    assert _code(withdraw) == "note_not_author"
    stored = await live_tenant_fhir.read("DocumentReference", note["id"])
    assert stored["meta"]["versionId"] == note["version"]
    own = await api.put(
        base, json={"text": "mine"}, headers={**author, "If-Match": note["version"]}
    )
    assert own.status_code == 200, own.text


async def test_each_signature_act_writes_its_provenance_with_the_note(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    resident = caller.physician("dr.prov.resident")
    attending = caller.physician("dr.prov.attending")
    note = await _draft(api, tag_for_cleanup, patient_id, headers=resident, requires_cosign=True)
    base = f"/api/patients/{patient_id}/notes/{note['id']}"
    edited = await api.put(
        base, json={"text": "S: ok"}, headers={**resident, "If-Match": note["version"]}
    )
    assert edited.status_code == 200, edited.text

    # A stale If-Match fails the whole transaction: no signature, no Provenance.
    stale = await api.post(f"{base}/sign", headers={**resident, "If-Match": note["version"]})
    assert stale.status_code in {409, 412}, stale.text
    assert await _provenance_of(live_tenant_fhir, note["id"]) == []
    assert (await live_tenant_fhir.read("DocumentReference", note["id"]))["docStatus"] == (
        "preliminary"
    )

    signed = await api.post(f"{base}/sign", headers=resident)
    assert signed.status_code == 200, signed.text
    (record,) = await _provenance_of(live_tenant_fhir, note["id"])
    assert record["target"][0]["reference"] == f"DocumentReference/{note['id']}"
    assert record["agent"][0]["type"]["coding"][0]["code"] == "attester"
    resident_id = str(caller.named["dr.prov.resident"].subject)
    assert record["agent"][0]["who"]["identifier"]["value"] == resident_id
    (signature,) = record["signature"]
    assert signature["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    assert signature["who"]["identifier"]["value"] == resident_id

    cosigned = await api.post(f"{base}/cosign", headers=attending)
    assert cosigned.status_code == 200, cosigned.text
    codes = {
        r["signature"][0]["type"][0]["code"]
        for r in await _provenance_of(live_tenant_fhir, note["id"])
    }
    assert codes == {"1.2.840.10065.1.12.1.1", "1.2.840.10065.1.12.1.5"}
    read = (await api.get(base, headers=attending)).json()
    assert [(p["role"], p["who"]["display"]) for p in read["provenance"]] == [
        ("attester", "dr.prov.resident"),
        ("verifier", "dr.prov.attending"),
    ]

    amended = await api.post(f"{base}/amend", json={"text": "S: better"}, headers=attending)
    assert amended.status_code == 201, amended.text
    amendment = amended.json()["id"]
    await tag_for_cleanup("DocumentReference", amendment)
    (amend_record,) = await _provenance_of(live_tenant_fhir, amendment)
    assert amend_record["signature"][0]["type"][0]["code"] == "1.2.840.10065.1.12.1.16"
    assert amend_record["entity"][0]["what"]["reference"].startswith(
        f"DocumentReference/{note['id']}"
    )

    added = await api.post(
        f"/api/patients/{patient_id}/notes/{amendment}/addenda", json={"text": "Later."}
    )
    assert added.status_code == 201, added.text
    await tag_for_cleanup("DocumentReference", added.json()["id"])
    (written,) = await _provenance_of(live_tenant_fhir, added.json()["id"])
    assert "signature" not in written
    assert written["activity"]["coding"][0]["code"] == "CREATE"


async def test_two_physicians_signing_at_once_exactly_one_signs(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    patient_id: str,
) -> None:
    note = await _draft(api, tag_for_cleanup, patient_id)
    path = f"/api/patients/{patient_id}/notes/{note['id']}/sign"
    first, second = await asyncio.gather(
        api.post(path, headers=caller.physician("dr.first")),
        api.post(path, headers=caller.physician("dr.second")),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses[0] == 200, (first.text, second.text)
    assert statuses[1] in {409, 412}, (first.text, second.text)
    winner = first if first.status_code == 200 else second
    stored = await live_tenant_fhir.read("DocumentReference", note["id"])
    assert stored["meta"]["versionId"] == winner.json()["version"]
    assert stored["authenticator"]["display"] == winner.json()["authenticator"]["display"]
    history = await live_tenant_fhir.history("DocumentReference", note["id"])
    assert len(history.get("entry") or []) == 2


async def test_cosignature_by_another_physician(
    api: httpx.AsyncClient, caller: Caller, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    resident = caller.physician("dr.resident")
    attending = caller.physician("dr.attending")
    note = await _draft(api, tag_for_cleanup, patient_id, headers=resident, requires_cosign=True)
    base = f"/api/patients/{patient_id}/notes/{note['id']}"
    signed = await api.post(f"{base}/sign", headers=resident)
    assert signed.json()["complete"] is False
    by_signer = await api.post(f"{base}/cosign", headers=resident)
    assert by_signer.status_code == 409
    assert by_signer.json()["reason"] == "cosigner_is_signer"
    cosigned = await api.post(f"{base}/cosign", headers=attending)
    assert cosigned.status_code == 200, cosigned.text
    assert cosigned.json()["complete"] is True
    assert cosigned.json()["cosigner"]["display"] == "dr.attending"


async def test_templates_are_listed(api: httpx.AsyncClient, patient_id: str) -> None:
    response = await api.get(f"/api/patients/{patient_id}/notes/templates")
    assert response.status_code == 200
    assert {t["type_code"] for t in response.json()["items"]} == {"11506-3", "34117-2", "18842-5"}


async def test_an_encounter_of_another_patient_is_refused(
    api: httpx.AsyncClient,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    other = await _patient(live_tenant_fhir, test_tag)
    encounter = await api.post(f"/api/patients/{other}/encounters", json={"class_code": "AMB"})
    await tag_for_cleanup("Encounter", encounter.json()["id"])
    response = await api.post(
        f"/api/patients/{patient_id}/notes",
        json={"kind": "progress", "encounter_id": encounter.json()["id"]},
    )
    assert response.status_code == 422
    assert _code(response) == "note_encounter_invalid"


async def test_roles(
    api: httpx.AsyncClient,
    caller: Caller,
    tag_for_cleanup: TagForCleanup,
    live_tenant_fhir: TenantFhirClient,
    test_tag: dict[str, str],
    patient_id: str,
) -> None:
    path = f"/api/patients/{patient_id}/notes"
    signed_note = await _draft(api, tag_for_cleanup, patient_id, kind="history-and-physical")
    assert (await api.post(f"{path}/{signed_note['id']}/sign")).status_code == 200

    caller.be("nurse")
    nurse_draft = await _draft(api, tag_for_cleanup, patient_id, kind="progress")
    refused = await api.post(f"{path}/{nurse_draft['id']}/sign")
    assert refused.status_code == 403
    amend = await api.post(f"{path}/{signed_note['id']}/amend", json={"text": "x"})
    assert amend.status_code == 403

    for role in ("front_desk", "billing"):
        caller.be(role)
        assert (await api.get(path)).status_code == 403
        assert (await api.get(f"{path}/{signed_note['id']}")).status_code == 403
        assert (await api.post(path, json={"kind": "soap"})).status_code == 403

    caller.be("nurse")
    assert _code(await api.post(f"{path}/{signed_note['id']}/entered-in-error")) == (
        "note_sign_required"
    )
    mistaken = await _draft(api, tag_for_cleanup, patient_id, kind="progress")
    withdrawn = await api.post(f"{path}/{mistaken['id']}/entered-in-error")
    assert withdrawn.json()["status"] == "entered-in-error"

    caller.be("patient", patient_id)
    own = await api.get(path)
    assert own.status_code == 200
    assert [n["id"] for n in own.json()["items"]] == [signed_note["id"]]
    assert (await api.get(f"{path}/{signed_note['id']}")).status_code == 200
    assert (await api.get(f"{path}/{nurse_draft['id']}")).status_code == 404
    assert (await api.post(path, json={"kind": "soap"})).status_code == 403
    other = await _patient(live_tenant_fhir, test_tag)
    assert (await api.get(f"/api/patients/{other}/notes")).status_code == 404


async def test_tenant_templates_are_managed_by_admins_and_used_by_clinicians(
    api: httpx.AsyncClient,
    caller: Caller,
    db: Sessions,
    make_tenant: MakeTenant,
    tag_for_cleanup: TagForCleanup,
    patient_id: str,
) -> None:
    """Against the real PostgreSQL table: the tenant row is this test's own (the FHIR partition
    stays the stack's default tenant, which the principal names)."""
    tenant = await make_tenant()
    admin = caller.make("admin", tenant_id=tenant.id)
    physician = caller.make("physician", tenant_id=tenant.id, name="dr.template")
    other_tenant_admin = caller.make("admin")
    caller.named.update({"admin": admin, "physician": physician, "stranger": other_tenant_admin})
    as_admin, as_physician = {AS: "admin"}, {AS: "physician"}
    path = "/api/note-templates/cardio-consult"
    body = {
        "title": "Cardiology consult",
        "type_code": "11488-4",
        "sections": ["Reason for consult", "Findings", "Recommendations"],
        "requires_cosign": True,
    }

    created = await api.put(path, json=body, headers=as_admin)
    assert created.status_code == 201, created.text
    assert created.json()["type_display"] == "Consult note"
    assert created.json()["created_by"] == f"user:{admin.subject}"
    replaced = await api.put(path, json={**body, "title": "Cardiology"}, headers=as_admin)
    assert replaced.status_code == 200, replaced.text
    assert (await api.get(path, headers=as_admin)).json()["title"] == "Cardiology"
    listed = await api.get("/api/note-templates", headers=as_admin)
    assert [t["key"] for t in listed.json()["items"]] == ["cardio-consult"]
    # Another tenant's administrator does not see it.
    assert (await api.get(path, headers={AS: "stranger"})).status_code == 404

    reserved = await api.put("/api/note-templates/soap", json=body, headers=as_admin)
    assert reserved.status_code == 409
    assert _code(reserved) == "note_template_key_reserved"
    not_a_note = await api.put(path, json={**body, "type_code": "2345-7"}, headers=as_admin)
    assert not_a_note.status_code == 422
    assert _code(not_a_note) == "note_template_invalid"
    empty = await api.put(path, json={**body, "sections": []}, headers=as_admin)
    assert empty.status_code == 422
    assert (await api.put(path, json=body, headers=as_physician)).status_code == 403

    async with db() as session:
        row = await session.scalar(select(NoteTemplate).where(NoteTemplate.tenant_id == tenant.id))
    assert row is not None
    assert row.title == "Cardiology"
    assert row.updated_by == f"user:{admin.subject}"

    offered = await api.get(f"/api/patients/{patient_id}/notes/templates", headers=as_physician)
    kinds = {t["kind"]: t for t in offered.json()["items"]}
    assert {"soap", "progress", "history-and-physical", "discharge-summary"} <= set(kinds)
    assert kinds["cardio-consult"]["shipped"] is False
    assert kinds["cardio-consult"]["requires_cosign"] is True

    note = await _draft(
        api, tag_for_cleanup, patient_id, headers=as_physician, kind="cardio-consult"
    )
    assert note["kind"] == "cardio-consult"
    assert note["type_code"] == "11488-4"
    assert note["requires_cosign"] is True
    assert "## Reason for consult" in note["text"]

    assert (await api.delete(path, headers=as_admin)).status_code == 204
    assert (await api.get(path, headers=as_admin)).status_code == 404
    assert _code(await api.delete(path, headers=as_admin)) == "note_template_not_found"
    unknown = await api.post(
        f"/api/patients/{patient_id}/notes", json={"kind": "cardio-consult"}, headers=as_physician
    )
    assert unknown.status_code == 422
    assert _code(unknown) == "note_template_unknown"
    # The note drafted from it is unchanged.
    kept = await api.get(f"/api/patients/{patient_id}/notes/{note['id']}", headers=as_physician)
    assert kept.json()["type_code"] == "11488-4"

    async with db() as session:
        actions = list(
            await session.scalars(
                select(AuditRecord.action)
                .where(AuditRecord.actor_id == str(admin.subject))
                .order_by(AuditRecord.occurred_at, AuditRecord.id)
            )
        )
    assert actions == ["note_template:put", "note_template:put", "note_template:delete"]


async def test_the_note_list_pages_without_repeats_while_notes_are_written(
    api: httpx.AsyncClient, tag_for_cleanup: TagForCleanup, patient_id: str
) -> None:
    written = [(await _draft(api, tag_for_cleanup, patient_id))["id"] for _ in range(5)]
    path = f"/api/patients/{patient_id}/notes"
    first = await api.get(path, params={"limit": 2})
    assert first.status_code == 200, first.text
    seen = [n["id"] for n in first.json()["items"]]
    assert len(seen) == 2
    cursor = first.json()["next"]
    # A note written while the client pages never shifts or repeats a page (it shows in this
    # walk only if it sorts after the cursor: same second, a lower id).
    newer = (await _draft(api, tag_for_cleanup, patient_id))["id"]
    while cursor is not None:
        page = await api.get(path, params={"limit": 2, "cursor": cursor})
        assert page.status_code == 200, page.text
        seen += [n["id"] for n in page.json()["items"]]
        cursor = page.json()["next"]
    assert len(seen) == len(set(seen))
    assert set(written) <= set(seen) <= {*written, newer}
    fresh = await api.get(path, params={"limit": 10})
    assert {n["id"] for n in fresh.json()["items"]} == {*written, newer}
    assert fresh.json()["next"] is None
    assert (await api.get(path, params={"limit": 201})).status_code == 422
    assert _code(await api.get(path, params={"cursor": "bm9wZQ"})) == "invalid_note_cursor"
