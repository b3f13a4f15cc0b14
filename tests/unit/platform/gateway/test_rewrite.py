"""The streaming rewriter: HAPI's address → our public base, across every chunk boundary."""

from __future__ import annotations

import pytest

from ehr.platform.gateway.rewrite import StreamRewriter, rewrite_text

HAPI = "http://127.0.0.1:8090/fhir"
TENANT_BASE = f"{HAPI}/acme"
PUBLIC = "https://ehr.example/fhir"
BODY = (
    '{"link":[{"relation":"next","url":"' + TENANT_BASE + '?_getpages=3f2a-99&_count=2"}],'
    '"entry":[{"fullUrl":"' + TENANT_BASE + '/Patient/1"},{"fullUrl":"' + HAPI + '/other/X/2"}],'
    '"x":"' + TENANT_BASE + '"}'
).encode()
EXPECTED = BODY.replace(TENANT_BASE.encode(), PUBLIC.encode()).replace(
    HAPI.encode(), PUBLIC.encode()
)


def run(chunks: list[bytes], capture: bool = True) -> tuple[bytes, set[str]]:
    rewriter = StreamRewriter([TENANT_BASE, HAPI], PUBLIC, capture_pages=capture)
    out = b"".join(rewriter.feed(c) for c in chunks) + rewriter.flush()
    return out, rewriter.page_ids


def test_whole_body() -> None:
    out, pages = run([BODY])
    assert out == EXPECTED
    assert pages == {"3f2a-99"}


@pytest.mark.parametrize("cut", range(1, len(BODY)))
def test_split_at_every_position(cut: int) -> None:
    out, pages = run([BODY[:cut], BODY[cut:]])
    assert out == EXPECTED
    assert pages == {"3f2a-99"}


def test_byte_by_byte() -> None:
    out, pages = run([BODY[i : i + 1] for i in range(len(BODY))])
    assert out == EXPECTED
    assert pages == {"3f2a-99"}


@pytest.mark.parametrize("size", [2, 3, 7, 13, 64])
def test_three_way_splits(size: int) -> None:
    chunks = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    assert run(chunks)[0] == EXPECTED


def test_longer_tenant_slug_is_not_cut() -> None:
    text = f'"{TENANT_BASE}2/Patient/1"'
    # "acme2" is another tenant: only the bare base is replaced.
    assert rewrite_text(text, [TENANT_BASE, HAPI], PUBLIC) == f'"{PUBLIC}/acme2/Patient/1"'


def test_memory_stays_bounded() -> None:
    rewriter = StreamRewriter([TENANT_BASE, HAPI], PUBLIC)
    for _ in range(1000):
        rewriter.feed(b"x" * 4096)
        assert len(rewriter._pending) <= len(TENANT_BASE) + 1


def test_header_value() -> None:
    location = f"{TENANT_BASE}/Patient/9/_history/1"
    assert rewrite_text(location, [TENANT_BASE, HAPI], PUBLIC) == f"{PUBLIC}/Patient/9/_history/1"


SEARCH = (
    '{"resourceType":"Bundle","entry":[{"fullUrl":"' + TENANT_BASE + '/Patient/p-1",'
    '"resource":{"resourceType":"Patient","id":"p-1"}},{"fullUrl":"'
    + TENANT_BASE
    + '/Observation/o1","resource":{"resourceType":"Observation","subject":'
    '{"reference":"Patient/p.2"},"performer":[{"reference":"Practitioner/x"}]}}]}'
).encode()


@pytest.mark.parametrize("cut", range(1, len(SEARCH), 7))
def test_patients_are_noted_across_chunks(cut: int) -> None:
    rewriter = StreamRewriter([TENANT_BASE, HAPI], PUBLIC, capture_patients=True)
    out = rewriter.feed(SEARCH[:cut]) + rewriter.feed(SEARCH[cut:]) + rewriter.flush()
    assert HAPI.encode() not in out
    assert rewriter.patient_ids == {"p-1", "p.2"}
    assert not rewriter.patients_truncated


def test_the_last_bytes_wait_for_the_end() -> None:
    rewriter = StreamRewriter([TENANT_BASE, HAPI], PUBLIC)
    sent = rewriter.feed(SEARCH)
    assert not SEARCH.endswith(sent[-5:]) or len(sent) < len(SEARCH)
    assert sent + rewriter.flush() == SEARCH.replace(TENANT_BASE.encode(), PUBLIC.encode())
