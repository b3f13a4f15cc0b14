"""MLLP framing and the ER7 parser without a server: frames split across reads, garbage between
frames, truncated and oversized frames; BOM, separators, escapes, repetitions, batches,
charsets, versions and the refusals an ACK reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ehr.modules.hl7v2.mllp import END_BLOCK, START_BLOCK, FrameReader, frame_bytes
from ehr.modules.hl7v2.parsing import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_VERSION_ID,
    MessageRejected,
    decode,
    normalise,
    parse_message,
    split_batch,
)
from ehr.modules.hl7v2.routing import event_allowed, valid_event_pattern

CORPUS = Path(__file__).resolve().parents[3] / "fixtures" / "hl7v2"


def message(
    *,
    control_id: str = "MSG0001",
    event: str = "ADT^A01^ADT_A01",
    version: str = "2.5.1",
    extra: str = "",
    segments: tuple[str, ...] = ("PID|1||12345^^^HOSP^MR||Doe^Jane||19800101|F",),
) -> str:
    msh = f"MSH|^~\\&|LAB|HOSP|EHR|EHR|20250101120000||{event}|{control_id}|P|{version}{extra}"
    return "\r".join((msh, *segments)) + "\r"


def stream(*chunks: bytes) -> asyncio.StreamReader:
    """A stream that delivers each chunk as its own read (the peer's writes, one at a time)."""
    reader = asyncio.StreamReader()
    pending = list(chunks)

    def feed_next() -> None:
        if pending:
            reader.feed_data(pending.pop(0))
            asyncio.get_running_loop().call_later(0.001, feed_next)
        else:
            reader.feed_eof()

    asyncio.get_running_loop().call_soon(feed_next)
    return reader


async def frames_of(*chunks: bytes, max_bytes: int = 1 << 20) -> list[tuple[bytes, bool, bool]]:
    reader = FrameReader(stream(*chunks), max_bytes=max_bytes, idle_timeout=5)
    found = []
    while (frame := await reader.next()) is not None:
        found.append((frame.payload, frame.too_large, frame.truncated))
    return found


# --- framing -----------------------------------------------------------------------------------


async def test_frames_split_anywhere_across_reads_come_out_whole() -> None:
    one, two = message(control_id="A").encode(), message(control_id="B").encode()
    wire = frame_bytes(one.decode()) + frame_bytes(two.decode())
    for cut in (1, 2, len(one), len(one) + 1, len(one) + 2, len(wire) - 1):
        found = await frames_of(wire[:cut], wire[cut:])
        assert [payload for payload, _, _ in found] == [one, two], cut


async def test_garbage_between_frames_is_skipped() -> None:
    reader = FrameReader(
        stream(b"\r\n  junk", frame_bytes("MSH|a"), b"\n\n", frame_bytes("MSH|b")),
        max_bytes=1024,
        idle_timeout=5,
    )
    assert (await reader.next()).payload == b"MSH|a"  # type: ignore[union-attr]
    assert (await reader.next()).payload == b"MSH|b"  # type: ignore[union-attr]
    assert await reader.next() is None
    assert reader.garbage_bytes == len(b"\r\n  junk") + 2


async def test_a_start_block_inside_a_frame_ends_the_first_as_truncated() -> None:
    found = await frames_of(START_BLOCK + b"MSH|cut off" + frame_bytes("MSH|whole"))
    assert found == [(b"MSH|cut off", False, True), (b"MSH|whole", False, False)]


async def test_an_oversized_frame_is_dropped_to_its_end_and_the_next_is_read() -> None:
    big = "MSH|^~\\&|LAB|HOSP|||20250101||ORU^R01|BIG|P|2.5.1\r" + "OBX|" + "x" * 300_000
    found = await frames_of(frame_bytes(big), frame_bytes("MSH|next"), max_bytes=10_000)
    assert len(found) == 2
    head, too_large, _ = found[0]
    assert too_large
    assert head.startswith(b"MSH|^~\\&|LAB|HOSP")
    assert len(head) <= 4096
    assert found[1] == (b"MSH|next", False, False)


async def test_an_oversized_frame_whose_end_block_straddles_reads_still_ends() -> None:
    body = b"MSH|" + b"y" * 50_000
    wire = START_BLOCK + body + END_BLOCK + frame_bytes("MSH|after")
    split_at = len(START_BLOCK + body) + 1  # between 0x1C and 0x0D
    found = await frames_of(wire[:split_at], wire[split_at:], max_bytes=1_000)
    assert [flags for _, *flags in found] == [[True, False], [False, False]]
    assert found[1][0] == b"MSH|after"


async def test_a_whole_frame_over_the_limit_in_one_read_is_refused_too() -> None:
    found = await frames_of(
        frame_bytes("MSH|" + "z" * 5_000) + frame_bytes("MSH|ok"), max_bytes=1_000
    )
    assert [(too_large, len(head) <= 4096) for head, too_large, _ in found] == [
        (True, True),
        (False, True),
    ]


async def test_a_connection_closed_mid_frame_yields_nothing_for_it() -> None:
    assert await frames_of(frame_bytes("MSH|one") + START_BLOCK + b"MSH|half") == [
        (b"MSH|one", False, False)
    ]


async def test_an_idle_connection_ends() -> None:
    reader = asyncio.StreamReader()  # never fed, never closed
    frames = FrameReader(reader, max_bytes=1024, idle_timeout=0.05)
    assert await frames.next() is None
    assert frames.idle


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators_and_a_bom_are_normalised(separator: str) -> None:
    text = message().replace("\r", separator)
    parsed = parse_message(b"\xef\xbb\xbf" + text.encode())
    assert [segment.name for segment in parsed] == ["MSH", "PID"]
    assert parsed.text == message().rstrip("\r")


def test_header_fields_repetitions_components_and_escapes() -> None:
    parsed = parse_message(
        message(
            extra="|||AL|NE||UNICODE UTF-8",
            segments=(
                "PID|1||123^^^HOSP&1.2.3&ISO^MR~456^^^SSA^SS||O\\S\\Brien\\T\\Co^Ann\\F\\x||19800101",
                "ZPI|custom~values",
            ),
        )
    )
    header = parsed.header
    assert (header.message_type, header.trigger_event, header.structure) == (
        "ADT",
        "A01",
        "ADT_A01",
    )
    assert header.event == "ADT_A01"
    assert header.enhanced_mode
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "NE")
    assert header.character_set == "UNICODE UTF-8"
    pid = parsed.first("PID")
    assert pid is not None
    ids = [(r.value(1), r.value(4, 1), r.value(4, 2), r.value(5)) for r in pid.repetitions(3)]
    assert ids == [("123", "HOSP", "1.2.3", "MR"), ("456", "SSA", "", "SS")]
    assert pid.value(5, 1) == "O^Brien&Co"
    assert pid.value(5, 2) == "Ann|x"
    zpi = parsed.first("ZPI")
    assert zpi is not None
    assert [r.value() for r in zpi.repetitions(1)] == ["custom", "values"]


def test_msh_keeps_its_own_numbering() -> None:
    msh = parse_message(message()).first("MSH")
    assert msh is not None
    assert (msh.value(1), msh.value(2), msh.value(3), msh.value(10)) == (
        "|",
        "^~\\&",
        "LAB",
        "MSG0001",
    )


def test_a_declared_latin1_charset_is_decoded_as_such() -> None:
    raw = message(extra="||||||8859/1", segments=("PID|1||1^^^H^MR||Müller^Jörg",)).encode(
        "latin-1"
    )
    pid = parse_message(raw).first("PID")
    assert pid is not None
    assert pid.value(5, 1) == "Müller"
    assert decode("MSH|^~\\&|Gr\u00fc\u00dfe".encode()) == "MSH|^~\\&|Grüße"
    assert decode(b"MSH|^~\\&|caf\xe9") == "MSH|^~\\&|café"  # not UTF-8: Latin-1


def test_the_explicit_null_is_told_apart_from_empty() -> None:
    pid = parse_message(message(segments=('PID|1||1^^^H^MR||Doe^Jane||""',))).first("PID")
    assert pid is not None
    first = pid.first(7)
    assert first is not None
    assert first.is_null
    assert pid.first(8) is None


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        ("PID|1||123", SEGMENT_SEQUENCE_ERROR, "MSH"),
        ("", SEGMENT_SEQUENCE_ERROR, "MSH"),
        ("MSH", REQUIRED_FIELD_MISSING, "MSH-2"),
        ("MSH|^^&&|A|B", DATA_TYPE_ERROR, "MSH-2"),
        (message(event=""), REQUIRED_FIELD_MISSING, "MSH-9"),
        (message(control_id=""), REQUIRED_FIELD_MISSING, "MSH-10"),
        (message(version=""), REQUIRED_FIELD_MISSING, "MSH-12"),
        (message(version="2.2"), UNSUPPORTED_VERSION_ID, "MSH-12"),
        (message(version="3.0"), UNSUPPORTED_VERSION_ID, "MSH-12"),
        (message(segments=("pid|1",)), SEGMENT_SEQUENCE_ERROR, "pid"),
    ],
)
def test_what_cannot_be_read_is_refused_with_a_code_and_location(
    text: str, code: str, location: str
) -> None:
    with pytest.raises(MessageRejected) as refused:
        parse_message(text)
    assert (refused.value.code, refused.value.location) == (code, location)


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"])
def test_versions_2_3_to_2_8_are_read(version: str) -> None:
    assert parse_message(message(version=version)).header.version == version


@pytest.mark.parametrize(
    ("lines", "location"),
    [
        (["BHS|^~\\&", "EVN|A01"], "EVN"),
        (["BHS|^~\\&", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5", "BHS|^~\\&", "PID|1"], "PID"),
        (["FHS|^~\\&", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5", "FHS|^~\\&"], "FHS"),
        (["BHS|^~\\&", "MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5", "BTS|3"], "BTS-1"),
        (["FHS|^~\\&", "BHS|^~\\&", "BTS|0", "BHS|^~\\&", "BTS|0", "FTS|1"], "FTS-1"),
    ],
)
def test_a_malformed_batch_envelope_is_refused(lines: list[str], location: str) -> None:
    with pytest.raises(MessageRejected) as refused:
        split_batch("\r".join(lines))
    assert refused.value.location == location
    assert refused.value.code == SEGMENT_SEQUENCE_ERROR


def test_a_batch_is_split_into_its_messages() -> None:
    batch = "\r".join(
        [
            "FHS|^~\\&|LAB|HOSP",
            "BHS|^~\\&|LAB|HOSP|||20250101||||BATCH42",
            message(control_id="1").rstrip("\r"),
            message(control_id="2").rstrip("\r"),
            "BTS|2",
            "FTS|1",
        ]
    )
    texts, control_id = split_batch(batch)
    assert control_id == "BATCH42"
    assert [parse_message(t).header.control_id for t in texts] == ["1", "2"]
    single, none = split_batch(message())
    assert none is None
    assert single == [normalise(message())]


def test_every_corpus_message_is_read_or_refused_with_a_reason() -> None:
    files = sorted(CORPUS.glob("*/*.hl7"))
    assert len(files) >= 30
    read = 0
    refusals: dict[str, str] = {}
    for path in files:
        try:
            texts, _ = split_batch(decode(path.read_bytes()))
            for text in texts:
                parsed = parse_message(text)
                assert parsed.header.control_id
                read += 1
        except MessageRejected as refused:
            refusals[path.name] = f"{refused.code}: {refused.reason}"
    # The corpus's deliberately bad files, and only those, are refused, each with a reason.
    assert sorted(refusals) == sorted(p.name for p in files if "bad" in p.name), refusals
    assert all(reason.split(": ", 1)[1] for reason in refusals.values())
    assert read >= 35


# --- routing patterns ----------------------------------------------------------------------------


def test_event_patterns() -> None:
    assert all(valid_event_pattern(p) for p in ("*", "ADT_A01", "ORU_*", "Z01_Z99"))
    assert not any(valid_event_pattern(p) for p in ("", "ADT", "ADT_", "adt_a01", "**", "A_B"))
    assert event_allowed(["ADT_*"], "ADT_A08")
    assert event_allowed(["*"], "SIU_S12")
    assert event_allowed(["ORU_R01"], "ORU_R01")
    assert not event_allowed(["ADT_A01"], "ADT_A08")
    assert not event_allowed(["ORU_*"], "ADT_A01")
