"""The sample messages the docs point to (docs/examples/hl7v2) come from the demo tenant's
seeded sender and convert: the README's quick try works."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ehr.entrypoints.seed.tenant import DEMO_HL7_SENDER
from ehr.modules.hl7v2.parsing import parse_message
from ehr.modules.hl7v2.to_fhir import ConversionContext, to_transaction

EXAMPLES = Path(__file__).resolve().parents[4] / "docs" / "examples" / "hl7v2"


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("adt-a01.hl7", {"Patient": 1, "Encounter": 1}),
        ("oru-r01.hl7", {"Patient": 1, "DiagnosticReport": 1, "Observation": 2}),
    ],
)
def test_the_examples_convert(name: str, wanted: dict[str, int]) -> None:
    message = parse_message((EXAMPLES / name).read_bytes())
    header = message.header
    assert (header.sending_application, header.sending_facility) == DEMO_HL7_SENDER
    conversion = to_transaction(
        message, ConversionContext("0" * 32, dt.datetime.now(dt.UTC), "demo")
    )
    assert {key: conversion.summary.get(key) for key in wanted} == wanted
    assert conversion.patient_identifier == "urn:ehr:hl7v2:DEMO-HOSP|HL7-DEMO-1"
