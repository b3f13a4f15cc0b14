"""What the consent page shows: scope descriptions in plain words, the patient's label, and
the patient picker's search (in the signed-in user's tenant, through the tenant-bound client)."""

from __future__ import annotations

import re
from typing import Any, Final

from ehr.fhir.client import TenantFhirClient
from ehr.fhir.errors import FhirInvalidRequest, FhirResourceGone, FhirResourceNotFound
from ehr.platform.auth.scope_grammar import parse_scope
from ehr.platform.smart.pages import PatientChoice

__all__ = ["describe_scope", "patient_label", "search_patients"]

_FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PICKER_LIMIT: Final = 20
_CONTEXT: Final = {
    "openid": "Confirm who you are",
    "fhirUser": "Know your user record (Practitioner or Patient)",
    "profile": "See your name and username",
    "launch": "Know the patient and encounter open in the EHR",
    "launch/patient": "Know which patient you chose",
    "launch/encounter": "Know the encounter open in the EHR",
    "offline_access": "Stay connected after you sign out, until you revoke it",
    "online_access": "Stay connected while you are signed in",
}
_ACTIONS: Final = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def describe_scope(scope: str) -> str:
    """A scope in the words of the consent page."""
    if scope in _CONTEXT:
        return _CONTEXT[scope]
    parsed = parse_scope(scope)
    if parsed is None:
        return scope
    verbs = ", ".join(_ACTIONS[a] for a in "cruds" if a in parsed.actions)
    what = "all record types" if parsed.resource_type == "*" else f"{parsed.resource_type} records"
    whose = "of the patient" if parsed.context == "patient" else "you have access to"
    return f"{verbs.capitalize()} {what} {whose}"


def _label(patient: dict[str, Any]) -> str:
    names = patient.get("name") or []
    name = names[0] if names and isinstance(names[0], dict) else {}
    text = (
        name.get("text")
        or " ".join([*(name.get("given") or []), str(name.get("family") or "")]).strip()
    )
    born = patient.get("birthDate")
    parts = [text or "(no name)", f"born {born}" if born else "", f"id {patient.get('id')}"]
    return " · ".join(p for p in parts if p)


async def patient_label(
    tenant: TenantFhirClient, patient_id: str, *, strict: bool = False
) -> str | None:
    """The patient's label (name, birth date, id); None if it does not exist. Without
    ``strict``, a patient that cannot be read is labelled by its id."""
    if not _FHIR_ID.fullmatch(patient_id):
        return None
    try:
        return _label(await tenant.read("Patient", patient_id))
    except (FhirResourceNotFound, FhirResourceGone, FhirInvalidRequest):
        return None if strict else f"id {patient_id}"


async def search_patients(tenant: TenantFhirClient, query: str) -> list[PatientChoice]:
    """Patients matching ``query`` by name, else (nothing found) by identifier (an MRN)."""
    text = query.strip()[:100]
    if not text:
        return []
    found: list[dict[str, Any]] = []
    for by in ("name", "identifier"):
        bundle = await tenant.search(
            "Patient", {by: text, "_count": str(_PICKER_LIMIT)}, single_page=True
        )
        found = [
            entry["resource"]
            for entry in bundle.get("entry") or []
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        ]
        if found:
            break
    return [PatientChoice(id=str(p["id"]), label=_label(p)) for p in found if p.get("id")]
