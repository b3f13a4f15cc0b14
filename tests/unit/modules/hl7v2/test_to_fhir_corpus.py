"""Every message of the shared dev corpus whose event is supported converts; the others are
refused as unsupported. The two refusals are the conversion's strict rules, asserted as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_to_fhir_builders import convert, empties

from ehr.modules.hl7v2.parsing import MessageRejected, parse_message, split_batch
from ehr.modules.hl7v2.to_fhir import SUPPORTED_EVENTS, ConversionError

CORPUS = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"

# file -> (location, why): strict refusals of supported events in the corpus.
EXPECTED_REFUSALS = {
    "sample_hl7.hl7": "PID-7",  # birth date 196203520 is not a date: strict
    "rep_sample_hl7.hl7": "OBR",  # an ORU of only a PID (a parser test): nothing to report
}


def _corpus() -> list[Path]:
    files = sorted([*CORPUS.glob("python-hl7/*.hl7"), *CORPUS.glob("hl7apy/*.hl7")])
    return files


@pytest.mark.parametrize("path", _corpus(), ids=lambda path: path.name)
def test_corpus_message_converts_or_is_refused_for_a_reason(path: Path) -> None:
    try:
        texts, _ = split_batch(path.read_bytes().decode("utf-8", errors="replace"))
        messages = [parse_message(text) for text in texts]
    except MessageRejected:
        messages = []
    # Only the corpus's deliberately malformed batches are refused before conversion.
    assert bool(messages) != ("bad" in path.name), path.name
    for msg in messages:
        if msg.header.event not in SUPPORTED_EVENTS:
            with pytest.raises(ConversionError) as raised:
                convert(msg)
            assert raised.value.location == "MSH-9"
            continue
        if path.name in EXPECTED_REFUSALS:
            with pytest.raises(ConversionError) as refused:
                convert(msg)
            assert refused.value.location == EXPECTED_REFUSALS[path.name]
            continue
        conversion = convert(msg)
        assert conversion.bundle["type"] == "transaction"
        assert conversion.patient_identifier
        assert conversion.summary["Patient"] >= 1
        assert conversion.summary["MessageHeader"] == 1
        assert empties(conversion.bundle) == []
        urls = [entry["fullUrl"] for entry in conversion.bundle["entry"]]
        assert len(urls) == len(set(urls))


def test_the_corpus_is_there() -> None:
    assert len(_corpus()) > 20
