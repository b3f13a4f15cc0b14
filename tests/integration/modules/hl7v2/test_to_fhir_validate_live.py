"""Every resource the HL7 v2 -> FHIR conversion writes passes HAPI's ``$validate`` (no error or
fatal issue). Nothing is stored: ``$validate`` only checks. One message per supported family,
built from segments; references stay the bundle's ``urn:uuid:`` placeholders."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from ehr.core.config import Settings
from ehr.core.errors import AppError
from ehr.fhir import FhirClient, TenantFhirClient
from ehr.modules.hl7v2.parsing import parse_message
from ehr.modules.hl7v2.to_fhir import ConversionContext, to_transaction

pytestmark = pytest.mark.integration

PDF = base64.b64encode(b"%PDF-1.4 test").decode()


def segment(name: str, fields: Mapping[int, str]) -> str:
    return "|".join([name, *(fields.get(n, "") for n in range(1, max(fields) + 1))])


def msh(event: str) -> str:
    return f"MSH|^~\\&|SENDER|FACILITY|EHR|EHRFAC|20250101120000-0500||{event}|C1|P|2.5.1"


PID = segment(
    "PID",
    {1: "1", 3: "MRN1^^^HOSP&1.2.3.4&ISO^MR", 5: "DOE^JANE^Q^^^^L", 7: "19800215", 8: "F",
     10: "2106-3^White^CDCREC", 11: "1 MAIN ST^^SPRINGFIELD^IL^62701^USA^H",
     13: "^PRN^PH^^1^217^5551234~^NET^Internet^jane@example.org", 15: "en^English^ISO639",
     16: "M", 22: "2186-5^Not Hispanic^CDCREC"},
)  # fmt: skip
PV1 = segment(
    "PV1",
    {1: "1", 2: "I", 3: "4N^401^A^FACILITY", 6: "3S^301^B^FACILITY",
     7: "1234^WELBY^MARCUS^^^DR^MD^^NPI&2.16.840.1.113883.4.6&ISO", 10: "MED",
     19: "V1^^^FACILITY^VN", 44: "20250101100000", 45: "20250103100000"},
)  # fmt: skip

MESSAGES = {
    "ADT_A01": [
        msh("ADT^A01^ADT_A01"), segment("EVN", {1: "A01"}), PID,
        segment("NK1", {1: "1", 2: "DOE^JOHN", 3: "SPO^Spouse^HL70063",
                        5: "^PRN^PH^^^217^5550000"}),
        PV1, segment("AL1", {1: "1", 2: "DA", 3: "70618^Penicillin^RXNORM", 4: "SV", 5: "Hives"}),
        segment("DG1", {1: "1", 3: "I10^Hypertension^I10C", 6: "A"}),
    ],
    "ADT_A40": [
        msh("ADT^A40^ADT_A39"), PID, segment("MRG", {1: "OLD1^^^HOSP&1.2.3.4&ISO^MR", 7: "DOE^J"}),
    ],
    "ORU_R01": [
        msh("ORU^R01^ORU_R01"), PID, PV1,
        segment("ORC", {1: "RE", 2: "P1^EHR", 3: "F1^LAB^1.2.3.5^ISO"}),
        segment("OBR", {1: "1", 2: "P1^EHR", 3: "F1^LAB^1.2.3.5^ISO", 4: "24331-1^Lipid panel^LN",
                        7: "20250101083000", 22: "20250101120000", 24: "CH", 25: "F"}),
        segment("NTE", {1: "1", 3: "Fasting"}),
        segment("OBX", {1: "1", 2: "NM", 3: "2093-3^Cholesterol^LN", 5: "212", 6: "mg/dL^^UCUM",
                        7: "<200", 8: "H", 11: "F", 14: "20250101083000"}),
        segment("NTE", {1: "1", 3: "Repeat"}),
        segment("OBX", {1: "2", 2: "SN", 3: "X^Ratio^L", 5: "^1^:^128", 11: "C"}),
        segment("OBX", {1: "3", 2: "CWE", 3: "Y^Culture^L", 5: "260373001^Detected^SCT", 11: "P"}),
        segment("OBX", {1: "4", 2: "FT", 3: "Z^Comment^L", 5: "a\\.br\\b", 11: "F"}),
        segment("OBX", {1: "5", 2: "ED", 3: "PDF^Report^L", 5: f"LAB^AP^PDF^Base64^{PDF}",
                        11: "F"}),
        segment("OBX", {1: "6", 2: "NM", 3: "W^Cancelled^L", 11: "X"}),
    ],
    "ORM_O01": [
        msh("ORM^O01^ORM_O01"), PID, PV1,
        segment("ORC", {1: "NW", 2: "P2^EHR", 9: "20250101101500", 12: "1234^WELBY^MARCUS"}),
        segment("OBR", {1: "1", 2: "P2^EHR", 4: "24331-1^Lipid panel^LN", 5: "S",
                        31: "E78.5^Hyperlipidemia^I10C"}),
        segment("NTE", {1: "1", 3: "Fasting"}),
    ],
    "VXU_V04": [
        msh("VXU^V04^VXU_V04"), PID, segment("ORC", {1: "RE", 3: "IZ1^IIS"}),
        segment("RXA", {1: "0", 2: "1", 3: "20250105101500", 5: "08^HepB^CVX", 6: "0.5",
                        7: "mL^mL^UCUM", 9: "00^New^NIP001", 10: "99^NURSE^NANCY", 15: "L1",
                        17: "MSD^Merck^MVX", 20: "CP"}),
        segment("RXR", {1: "IM^Intramuscular^HL70162", 2: "LD^Left deltoid^HL70163"}),
    ],
    "SIU_S12": [
        msh("SIU^S12^SIU_S12"),
        segment("SCH", {1: "PA1^EHR", 2: "AP1^SCHED", 7: "CHECKUP^Checkup^HL70276",
                        8: "Normal^Routine^HL70277", 9: "30", 10: "min",
                        11: "^^^20250110090000^20250110093000", 25: "Booked"}),
        segment("NTE", {1: "1", 3: "Bring glasses"}), PID, segment("RGS", {1: "1"}),
        segment("AIS", {1: "1", 3: "CONSULT^Consultation"}),
        segment("AIL", {1: "1", 3: "CLINIC^12^^FACILITY"}),
        segment("AIP", {1: "1", 3: "1234^WELBY^MARCUS", 4: "D^Doctor"}),
    ],
    "MDM_T02": [
        msh("MDM^T02^MDM_T02"), segment("EVN", {1: "T02"}), PID, PV1,
        segment("TXA", {1: "1", 2: "DS^Discharge summary^HL70270", 3: "TX", 6: "20250101110000",
                        9: "1234^WELBY^MARCUS", 12: "DOC1^EMR", 17: "AU", 18: "R", 19: "AV"}),
        segment("OBX", {1: "1", 2: "TX", 3: "NOTE^Note", 5: "Line one~Line two", 11: "F"}),
        segment("OBX", {1: "2", 2: "ED", 3: "PDF^Pdf", 5: f"EMR^AP^PDF^Base64^{PDF}", 11: "F"}),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
async def tenant_fhir(settings: Settings) -> AsyncIterator[TenantFhirClient]:
    client = FhirClient(settings.fhir)
    await client.ping()
    try:
        yield client.for_tenant(settings.fhir.default_tenant)
    finally:
        await client.aclose()


async def _issues(tenant_fhir: TenantFhirClient, resource: dict[str, Any]) -> list[str]:
    try:
        outcome = await tenant_fhir.operation(
            "$validate", resource_type=resource["resourceType"], body=resource, method="POST"
        )
    except AppError as error:  # HAPI answers 412 when the resource has errors
        outcome = dict(getattr(error, "extra", {}) or {}).get("operation_outcome") or {}
        if not outcome:
            raise
    return [
        f"{issue.get('severity')}: {issue.get('diagnostics')} @ {issue.get('expression')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") in {"error", "fatal"}
    ]


@pytest.mark.parametrize("event", sorted(MESSAGES))
async def test_converted_resources_validate(tenant_fhir: TenantFhirClient, event: str) -> None:
    conversion = to_transaction(
        parse_message("\r".join(MESSAGES[event])),
        ConversionContext(message_id="f" * 32, received_at=datetime.now(UTC), tenant="test"),
    )
    problems: dict[str, list[str]] = {}
    for entry in conversion.bundle["entry"]:
        resource = entry["resource"]
        issues = await _issues(tenant_fhir, resource)
        if issues:
            problems[f"{resource['resourceType']} {entry['request']['url']}"] = issues
    assert problems == {}


async def test_validation_does_find_errors(tenant_fhir: TenantFhirClient) -> None:
    """The check above is not vacuous: a wrong status code and an empty string are errors."""
    broken = {"resourceType": "Observation", "status": "done", "code": {"text": ""}}
    assert await _issues(tenant_fhir, broken) != []
