"""ACKs built for parsed inbound messages and read back: swapped sender/receiver, version
echo, MSA-2, the ERR layout per version (ERR-1 element lists up to 2.4, ERR-2/3/4/8 from
2.5), and the header-less AR for input whose MSH is unreadable."""

from __future__ import annotations

import datetime as dt

import pytest

from ehr.modules.hl7v2.acks import (
    AckError,
    build_ack,
    build_ack_without_header,
    read_ack,
)
from ehr.modules.hl7v2.parsing import Header, MessageRejected, parse_message

WHEN = dt.datetime(2026, 3, 1, 10, 11, 12, tzinfo=dt.UTC)


def inbound(version: str = "2.5.1", *, control_id: str = "MSG00042", trigger: str = "A01") -> str:
    return (
        f"MSH|^~\\&|LAB|HOSP|EHR|CLINIC|20260301101112||ADT^{trigger}^ADT_A01|{control_id}|T|"
        f"{version}\rEVN|{trigger}\rPID|1||123^^^HOSP^MR||Doe^Jane\r"
    )


def header_of(version: str = "2.5.1", **kwargs: str) -> Header:
    return parse_message(inbound(version, **kwargs)).header


def ack_for(header: Header, code: str = "AA", **kwargs: object) -> str:
    return build_ack(
        header,
        code,
        control_id="ACK0001",
        receiving_app="EHR",
        receiving_facility="CLINIC",
        timestamp=WHEN,
        **kwargs,  # type: ignore[arg-type]
    )


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    ack = parse_message(ack_for(header_of()))

    msh = ack.first("MSH")
    assert msh is not None
    assert (msh.value(3), msh.value(4), msh.value(5), msh.value(6)) == (
        "EHR",
        "CLINIC",
        "LAB",
        "HOSP",
    )
    assert msh.value(7) == "20260301101112+0000"
    assert (msh.value(9, 1), msh.value(9, 2), msh.value(9, 3)) == ("ACK", "A01", "ACK")
    assert msh.value(10) == "ACK0001"
    assert msh.value(11) == "T"
    assert msh.value(12) == "2.5.1"
    assert not msh.has(15)
    assert not msh.has(16)
    msa = ack.first("MSA")
    assert msa is not None
    assert (msa.value(1), msa.value(2)) == ("AA", "MSG00042")
    assert ack.segments("ERR") == ()


def test_an_application_ack_asks_for_no_acknowledgement_of_itself() -> None:
    ack = parse_message(ack_for(header_of(), "AE", application=True))

    msh = ack.first("MSH")
    assert msh is not None
    assert (msh.value(15), msh.value(16)) == ("NE", "NE")
    msa = ack.first("MSA")
    assert msa is not None
    assert (msa.value(1), msa.value(2)) == ("AE", "MSG00042")


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.6", "2.8.2"])
def test_the_ack_has_the_version_of_the_inbound_message(version: str) -> None:
    ack = parse_message(ack_for(header_of(version)))
    assert ack.header.version == version


def test_an_unsupported_version_is_answered_in_2_5_1() -> None:
    header = header_of()
    odd = Header(**{**{f: getattr(header, f) for f in Header.__slots__}, "version": "9.9"})
    assert parse_message(ack_for(odd, "AR")).header.version == "2.5.1"


def test_v2_3_message_type_has_no_structure_component() -> None:
    msh = parse_message(ack_for(header_of("2.3"))).first("MSH")
    assert msh is not None
    assert msh.value(9, 1) == "ACK"
    assert msh.value(9, 2) == "A01"
    assert msh.value(9, 3) == ""


def test_2_5_1_errors_use_err_2_3_4_and_8_one_segment_each() -> None:
    text = ack_for(
        header_of(),
        "AE",
        text="Some data could not be used",
        errors=[
            AckError("102", "Birth date is not a date", location="PID-7"),
            AckError("101", "Family name missing", location="PID-5.1", severity="W"),
        ],
    )
    ack = parse_message(text)

    errs = ack.segments("ERR")
    assert len(errs) == 2
    first, second = errs
    assert not first.has(1)
    assert (first.value(2, 1), first.value(2, 2), first.value(2, 3)) == ("PID", "1", "7")
    assert (first.value(3, 1), first.value(3, 2), first.value(3, 3)) == (
        "102",
        "Data type error",
        "HL70357",
    )
    assert first.value(4) == "E"
    assert first.value(8) == "Birth date is not a date"
    assert [second.value(2, n) for n in range(1, 6)] == ["PID", "1", "5", "1", "1"]
    assert second.value(4) == "W"
    msa = ack.first("MSA")
    assert msa is not None
    assert msa.value(1) == "AE"
    assert msa.value(2) == "MSG00042"
    assert msa.value(3) == "Some data could not be used"


def test_2_3_errors_use_err_1_element_lists_in_one_segment() -> None:
    text = ack_for(
        header_of("2.3"),
        "AE",
        text="Rejected",
        errors=[
            AckError("102", "Birth date is not a date", location="PID-7"),
            AckError("207", "Store unavailable"),
        ],
    )
    ack = parse_message(text)

    (err,) = ack.segments("ERR")
    first, second = err.repetitions(1)
    assert (first.value(1), first.value(2), first.value(3)) == ("PID", "1", "7")
    assert first.component(4) == ("102", "Data type error", "HL70357")
    assert second.value(1) == ""
    assert second.component(4) == ("207", "Application internal error", "HL70357")
    assert not err.has(2)
    assert not err.has(3)
    msa = ack.first("MSA")
    assert msa is not None
    assert msa.value(3) == "Rejected"


def test_2_4_also_uses_err_1() -> None:
    text = ack_for(header_of("2.4"), "AR", errors=[AckError("203", "x", location="MSH-12")])
    (err,) = parse_message(text).segments("ERR")
    assert err.value(1, 1) == "MSH"
    assert err.value(1, 3) == "12"
    assert not err.has(3)


def test_v2_7_has_no_msa_3() -> None:
    text = ack_for(header_of("2.7"), "AE", text="why", errors=[AckError("207", "why")])
    ack = parse_message(text)
    msa = ack.first("MSA")
    assert msa is not None
    assert not msa.has(3)
    assert ack.segments("ERR")[0].value(8) == "why"


def test_error_text_with_separators_is_escaped_and_survives() -> None:
    text = ack_for(
        header_of(),
        "AE",
        text="a|b^c~d\\e&f",
        errors=[AckError("102", "bad|value^here\r\nsecond line")],
    )
    assert text.count("\r") == 3  # MSH, MSA, ERR: the CR/LF in the error stayed inside ERR-8
    ack = parse_message(text)
    msa = ack.first("MSA")
    assert msa is not None
    assert msa.value(3) == "a|b^c~d\\e&f"
    assert ack.segments("ERR")[0].value(8) == "bad|value^here\r\nsecond line"


@pytest.mark.parametrize("code", ["CA", "CE", "CR", "aa"])
def test_commit_codes_are_accepted(code: str) -> None:
    msa = parse_message(ack_for(header_of(), code)).first("MSA")
    assert msa is not None
    assert msa.value(1) == code.upper()


def test_an_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="acknowledgement code"):
        ack_for(header_of(), "OK")


def test_error_from_a_parser_refusal() -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_message(inbound("9.9"))
    error = AckError.from_rejection(caught.value)
    assert (error.code, error.location) == ("203", "MSH-12")


# --------------------------------------------------------------------------- no header


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "garbage",
        "MSH",
        "MSH|",
        "MSHX|^~\\&",
        "\x00\x01\x02\xff",
        b"\xff\xfe\x00M\x00S\x00H",
        b"\xef\xbb\xbfnot hl7",
        "PID|1||123\rMSH|",
        "MSH|^~\\&|" + "A" * 5000,
        "MSH|||||||||||||||||||||||",
        "MSH\r|^~\\&",
    ],
)
def test_garbage_gives_a_parseable_ar(raw: str | bytes) -> None:
    text = build_ack_without_header(raw, "AR", "Not an HL7 v2 message", control_id="ACK9")

    ack = parse_message(text)
    assert ack.header.message_type == "ACK"
    assert ack.header.version == "2.5.1"
    assert ack.header.control_id == "ACK9"
    reply = read_ack(text)
    assert reply.code == "AR"
    assert reply.text == "Not an HL7 v2 message"
    assert reply.errors[0].code == "100"


def test_what_can_be_found_of_a_broken_msh_is_used() -> None:
    raw = "MSH|^~\\&|LAB^1.2.3^ISO|HOSP|EHR|CLINIC|2026||ORU^R01|CTRL-7|T|2.4|broken\x07"
    text = build_ack_without_header(
        raw,
        "AR",
        "Broken header",
        errors=[AckError("102", "MSH-7 is not a timestamp", location="MSH-7")],
        receiving_app="EHR",
        receiving_facility="CLINIC",
        control_id="ACK10",
        timestamp=WHEN,
    )
    ack = parse_message(text)
    msh = ack.first("MSH")
    assert msh is not None
    assert (msh.value(3), msh.value(5), msh.value(6)) == ("EHR", "LAB", "HOSP")
    assert msh.value(9, 2) == "R01"
    assert msh.value(11) == "T"
    assert ack.header.version == "2.4"
    (err,) = ack.segments("ERR")
    assert err.value(1, 1) == "MSH"
    assert err.value(1, 3) == "7"
    assert read_ack(text).control_id == "CTRL-7"


def test_separators_smuggled_into_a_broken_msh_cannot_add_segments() -> None:
    raw = "MSH#^~\\&#APP|X\\F\\#FAC^y#R#F#T##A^B#ID|EVIL^~&#P#2.5.1"
    text = build_ack_without_header(raw, "AR", "odd separators", control_id="ACK11")
    assert text.count("\r") == 3
    ack = parse_message(text)
    msh = ack.first("MSH")
    assert msh is not None
    assert msh.value(5) == "APP|X\\F\\"
    assert read_ack(text).control_id == "ID|EVIL"  # first component only


# --------------------------------------------------------------------------- reading


def test_read_ack_of_an_accept() -> None:
    reply = read_ack(ack_for(header_of(control_id="OUT-1")))
    assert reply.code == "AA"
    assert reply.control_id == "OUT-1"
    assert reply.text is None
    assert reply.accepted


def test_read_ack_collects_errors_of_both_layouts() -> None:
    for version in ("2.3", "2.5.1"):
        text = ack_for(
            header_of(version),
            "AE",
            errors=[AckError("103", "Unknown code", location="OBX[2]-3")],
        )
        reply = read_ack(text)
        assert not reply.accepted
        assert reply.errors[0].code == "103"
        assert reply.errors[0].location == "OBX[2]-3"


def test_read_ack_of_a_foreign_ack_with_bytes_and_lf() -> None:
    raw = b"MSH|^~\\&|LIS|LAB|EHR|HOSP|20260301||ACK^R01^ACK|9|P|2.5.1\nMSA|CA|OUT-9\n"
    reply = read_ack(raw)
    assert (reply.code, reply.control_id, reply.accepted) == ("CA", "OUT-9", True)


def test_read_ack_without_msa_is_refused() -> None:
    with pytest.raises(MessageRejected) as caught:
        read_ack(inbound())
    assert caught.value.location == "MSA"
