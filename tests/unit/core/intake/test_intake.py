"""The intake rules: strict JSON, media types, request targets, ISO dates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ehr.core.errors import BadRequestError, MalformedBody, UnsupportedMediaType
from ehr.core.intake import (
    DEFAULT_MAX_JSON_DEPTH,
    IsoAwareDateTime,
    IsoDate,
    check_request_target,
    clean_text,
    is_clean_text,
    parse_json,
    require_media_type,
)
from ehr.entrypoints.api import create_app


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded raw is not UTF-8
        (b"[NaN]", "not finite"),
        (b"[-Infinity]", "not finite"),
        (b"[1e999]", "not finite"),
        (b"[-1e400]", "not finite"),
        (b"[" + b"9" * 5000 + b"]", "not valid JSON"),  # beyond int's digit limit
        (_nested(100_000), "deeper than"),
        (_nested(DEFAULT_MAX_JSON_DEPTH + 1), "deeper than"),
        (b'{"a": "x\\u0000y"}', "NUL"),
        (b'{"x\\u0000": 1}', "NUL"),
        (b'["\\ud800"]', "lone surrogate"),
        (b'{"\\udfff": 1}', "lone surrogate"),
        (b'"\\ud83d"', "lone surrogate"),
    ],
)
def test_refused(body: bytes, message: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(body)
    assert message in caught.value.detail
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    "document",
    [
        {"a": "😀", "b": "\\u0000 as text", "c": [1.5, -2e300, 10**300]},
        {"nested": json.loads(_nested(DEFAULT_MAX_JSON_DEPTH - 1))},
        "plain",
        None,
        [],
    ],
)
def test_accepted_documents_come_back_unchanged(document: Any) -> None:
    assert parse_json(json.dumps(document).encode()) == document


def test_a_pair_of_surrogate_escapes_is_one_character() -> None:
    assert parse_json(b'["\\ud83d\\ude00"]') == ["😀"]


def test_the_pointer_names_the_offending_value_never_the_value() -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(b'{"context": {"draftOrders": {"entry": [{}, {"id": "a\\u0000b"}]}}}')
    assert caught.value.extra["pointer"] == "/context/draftOrders/entry/1/id"
    assert "a\x00b" not in caught.value.detail


def test_depth_is_configurable() -> None:
    parse_json(_nested(10), max_depth=10)
    with pytest.raises(MalformedBody):
        parse_json(_nested(11), max_depth=10)


def test_clean_text_replaces_what_cannot_be_stored() -> None:
    assert clean_text("ok") == ("ok", False)
    assert clean_text("a\x00b\ud800c") == ("a\ufffdb\ufffdc", True)
    assert is_clean_text("😀")
    assert not is_clean_text("\udc00")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "x/y+json"],
)
def test_json_media_types_are_taken(content_type: str) -> None:
    require_media_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ],
)
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        require_media_type(content_type)
    assert caught.value.status_code == 415


def test_the_json_suffix_can_be_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        require_media_type("application/fhir+json", allow_json_suffix=False)


@pytest.mark.parametrize(
    ("raw_path", "query"),
    [(b"/api/patients/a%00b", b""), (b"/api/patients", b"name=a%00"), (b"/x", b"q=%ff"),
     (b"/api/%ED%A0%80", b"")],
)  # fmt: skip
def test_request_targets_that_cannot_be_handled_are_400(raw_path: bytes, query: bytes) -> None:
    with pytest.raises(BadRequestError):
        check_request_target(raw_path, query)


def test_ordinary_request_targets_pass() -> None:
    check_request_target(b"/api/patients/%C3%A9", b"name=Zo%C3%AB&family=a+b&_count=10")


class _Dates(BaseModel):
    day: IsoDate | None = None
    at: IsoAwareDateTime | None = None


@pytest.mark.parametrize("value", [0, "0", 1.5, "20200101", "2020/01/01", True])
def test_dates_are_iso_text_only(value: object) -> None:
    with pytest.raises(ValidationError):
        _Dates(day=value)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        _Dates(at=value)  # type: ignore[arg-type]


def test_iso_dates_are_taken() -> None:
    parsed = _Dates.model_validate({"day": "1970-01-31", "at": "2026-12-06T10:00:00+01:00"})
    assert parsed.day == dt.date(1970, 1, 31)
    assert parsed.at is not None
    assert parsed.at.utcoffset() == dt.timedelta(hours=1)


def test_every_route_of_the_app_takes_its_body_through_the_intake() -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    from ehr.core.config import Settings
    from ehr.core.intake import IntakeRoute

    app = create_app(Settings())
    plain = sorted(
        f"{sorted(context.methods or ())} {context.path}"
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and not isinstance(context.original_route, IntakeRoute)
    )
    assert not plain, f"routes not built with route_class=IntakeRoute: {plain}"
