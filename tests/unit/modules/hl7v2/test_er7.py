"""ER7 composition: escaping that survives the parser, trimmed segments, v2 dates from FHIR
dates and control ids."""

from __future__ import annotations

import datetime as dt

import pytest

from ehr.modules.hl7v2.er7 import (
    Er7,
    composite,
    control_id,
    datetime_to_dtm,
    escape,
    header_segment,
    message,
    numbered_segment,
    segment,
    subcomposite,
    to_dt,
    to_dtm,
)
from ehr.modules.hl7v2.parsing import parse_message

MSH = header_segment({3: "EHR", 7: "20260301", 9: composite("ADT", "A08"), 10: "1", 12: "2.5.1"})


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a|b", "a\\F\\b"),
        ("a^b", "a\\S\\b"),
        ("a~b", "a\\R\\b"),
        ("a&b", "a\\T\\b"),
        ("a\\b", "a\\E\\b"),
        ("\\F\\", "\\E\\F\\E\\"),
        ("line\rnext", "line\\X0D\\next"),
        ("line\nnext", "line\\X0A\\next"),
        ("bell\x07", "bell\\X07\\"),
        ("tab\tkept", "tab\tkept"),
        ("Zoë Ø", "Zoë Ø"),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_formatted_text_turns_line_breaks_into_br() -> None:
    assert escape("one\r\ntwo\nthree\rfour|", formatted=True) == (
        "one\\.br\\two\\.br\\three\\.br\\four\\F\\"
    )


def test_every_separator_survives_a_round_trip() -> None:
    nasty = "O'Brien|Smith^Jr~x\\y&z"
    nte = segment("NTE", "1", None, nasty)
    pid = segment("PID", "1", None, composite(nasty, subcomposite("a&b", "c")))
    parsed = parse_message(message([MSH, nte, pid]))

    assert [s.name for s in parsed] == ["MSH", "NTE", "PID"]
    assert parsed.segments("NTE")[0].value(3) == nasty
    pid_segment = parsed.segments("PID")[0]
    assert pid_segment.value(3, 1) == nasty
    assert pid_segment.value(3, 2, 1) == "a&b"
    assert pid_segment.value(3, 2, 2) == "c"


def test_a_line_break_in_a_value_cannot_start_a_segment() -> None:
    injected = "Doe\rOBX|1|ST|evil"
    parsed = parse_message(message([MSH, segment("PID", "1", None, None, None, injected)]))
    assert [s.name for s in parsed] == ["MSH", "PID"]
    assert parsed.segments("PID")[0].value(5) == injected


def test_formatted_text_round_trips_with_line_breaks_as_cr() -> None:
    nte = segment("NTE", "1", "L", Er7(escape("first\nsecond", formatted=True)))
    parsed = parse_message(message([MSH, nte]))
    assert parsed.segments("NTE")[0].value(3) == "first\rsecond"


def test_trailing_empties_are_trimmed_at_every_level() -> None:
    assert composite("a", None, "c", None, "") == "a^^c"
    assert subcomposite(None, "X", "ISO", None) == "&X&ISO"
    assert segment("PV1", "1", "N", None, "", [None, ""]) == "PV1|1|N"
    assert segment("PID", "1", [composite("1"), composite("2"), None]) == "PID|1|1~2"
    assert composite(None, None) == ""


def test_er7_is_not_escaped_again_but_text_is() -> None:
    assert segment("ZZZ", Er7("a^b"), "a^b") == "ZZZ|a^b|a\\S\\b"


def test_numbered_segment_places_fields_by_number() -> None:
    assert numbered_segment("OBR", {1: "1", 4: "X", 25: "F"}) == "OBR|1|||X" + "|" * 21 + "F"
    assert numbered_segment("OBR", {}) == "OBR"
    with pytest.raises(ValueError, match="start at 1"):
        numbered_segment("OBR", {0: "x"})


def test_header_segment_numbers_fields_as_the_standard() -> None:
    text = header_segment({3: "A|B", 9: composite("ORU", "R01", "ORU_R01"), 10: "1", 12: "2.5.1"})
    assert text == "MSH|^~\\&|A\\F\\B||||||ORU^R01^ORU_R01|1||2.5.1"
    header = parse_message(message([text + "|||||"])).header
    assert header.sending_application == "A|B"
    assert header.version == "2.5.1"
    with pytest.raises(ValueError, match="fixed"):
        header_segment({2: "x"})


def test_segment_names_are_checked() -> None:
    with pytest.raises(ValueError, match="segment name"):
        segment("pid", "1")
    with pytest.raises(ValueError, match="header_segment"):
        segment("MSH", "x")


def test_message_ends_every_segment_with_cr() -> None:
    assert message(["MSH|^~\\&", "PID|1"]) == "MSH|^~\\&\rPID|1\r"


@pytest.mark.parametrize(
    ("fhir", "dtm"),
    [
        ("2026", "2026"),
        ("2026-03", "202603"),
        ("2026-03-01", "20260301"),
        ("2026-03-01T10:11:12Z", "20260301101112+0000"),
        ("2026-03-01T10:11:12+01:00", "20260301101112+0100"),
        ("2026-03-01T10:11:12-05:30", "20260301101112-0530"),
        ("2026-03-01T10:11:12.5+01:00", "20260301101112.5+0100"),
        ("2026-03-01T10:11:12.123456Z", "20260301101112.1234+0000"),
        ("2026-03-01T10:11:12", "20260301101112"),
        ("2026-03-01T10:11", "202603011011"),
    ],
)
def test_to_dtm_keeps_precision_and_zone(fhir: str, dtm: str) -> None:
    assert to_dtm(fhir) == dtm


@pytest.mark.parametrize(
    "bad", ["", "yesterday", "2026-13-01", "2026-02-30", "26-03-01", "2026-03-01T25:00:00Z"]
)
def test_to_dtm_refuses_what_is_not_a_fhir_date(bad: str) -> None:
    with pytest.raises(ValueError, match="Not a"):
        to_dtm(bad)


def test_to_dt() -> None:
    assert to_dt("2026-03-01") == "20260301"
    assert to_dt("2026-03") == "202603"
    assert to_dt("1970") == "1970"
    assert to_dt("2026-03-01T23:30:00-05:00") == "20260301"  # the date as written
    with pytest.raises(ValueError, match="Not a"):
        to_dt("03/01/2026")


def test_datetime_to_dtm() -> None:
    zone = dt.timezone(dt.timedelta(hours=-5))
    assert datetime_to_dtm(dt.datetime(2026, 3, 1, 10, 11, 12, 999, tzinfo=zone)) == (
        "20260301101112-0500"
    )
    assert datetime_to_dtm(dt.datetime(2026, 3, 1, 10, 11, 12, tzinfo=dt.UTC)) == (
        "20260301101112+0000"
    )
    assert datetime_to_dtm(dt.datetime(2026, 3, 1, 10, 11, 12)) == "20260301101112"


def test_control_ids_are_unique_short_and_plain() -> None:
    ids = {control_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(value) == 20 and value.isalnum() and value.isupper() for value in ids)
    first = control_id()
    assert (
        parse_message(
            message([header_segment({9: "ACK", 10: first, 12: "2.5.1"})])
        ).header.control_id
        == first
    )
