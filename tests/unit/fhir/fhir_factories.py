"""Builders for the FHIR payloads the unit tests feed through respx (synthetic data only)."""

from __future__ import annotations

from typing import Any

BASE_URL = "http://hapi.test/fhir"
TENANT_BASE = f"{BASE_URL}/DEFAULT"


def make_patient(**overrides: Any) -> dict[str, Any]:
    """A synthetic Patient as HAPI would return it."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00.000+00:00"},
        "identifier": [{"system": "urn:ehr:test:mrn", "value": "MRN-0001"}],
        "name": [{"family": "Testperson", "given": ["Alex"]}],
        "gender": "unknown",
        "birthDate": "1970-01-01",
    }
    patient.update(overrides)
    return patient


def make_operation_outcome(
    diagnostics: str = "HAPI-0450: Failed to parse request body",
    *,
    code: str = "processing",
    severity: str = "error",
    **overrides: Any,
) -> dict[str, Any]:
    """An OperationOutcome with one issue, the way HAPI reports errors (narrative included)."""
    outcome: dict[str, Any] = {
        "resourceType": "OperationOutcome",
        "text": {"status": "generated", "div": f"<div>{diagnostics}</div>"},
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    outcome.update(overrides)
    return outcome


def make_bundle(
    resources: list[dict[str, Any]] | None = None,
    *,
    bundle_type: str = "searchset",
    next_url: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A Bundle of ``resources`` with an optional ``next`` paging link."""
    resources = resources or []
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "total": len(resources),
        "link": [{"relation": "self", "url": f"{TENANT_BASE}/Patient"}],
        "entry": [
            {
                "fullUrl": f"{TENANT_BASE}/{r['resourceType']}/{r['id']}",
                "resource": r,
            }
            for r in resources
        ],
    }
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    bundle.update(overrides)
    return bundle


def make_capability_statement(**overrides: Any) -> dict[str, Any]:
    """The summary CapabilityStatement HAPI serves at /metadata?_summary=true."""
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "fhirVersion": "4.0.1",
        "kind": "instance",
        "format": ["application/fhir+json"],
    }
    statement.update(overrides)
    return statement
