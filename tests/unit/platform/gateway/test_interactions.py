"""Parsing requests into FHIR interactions; the operations allow-list; caps; header filtering."""

from __future__ import annotations

import httpx
import pytest

from ehr.core.config import GatewaySettings
from ehr.core.errors import BadRequestError, NotFoundError, PermissionDenied
from ehr.fhir.passthrough import forwardable_request_headers, forwardable_response_headers
from ehr.platform.gateway.interactions import check_operation, parse_interaction, split_tenant_base
from ehr.platform.gateway.limits import cap_params


@pytest.mark.parametrize(
    ("method", "path", "params", "kind", "rtype", "rid", "op", "conditional", "upstream"),
    [
        ("GET", "Patient/1", [], "read", "Patient", "1", None, False, "Patient/1"),
        (
            "GET",
            "Patient/1/_history/2",
            [],
            "vread",
            "Patient",
            "1",
            None,
            False,
            "Patient/1/_history/2",
        ),
        ("GET", "Patient", [("name", "x")], "search", "Patient", None, None, False, "Patient"),
        ("POST", "Patient/_search", [], "search", "Patient", None, None, False, "Patient/_search"),
        ("POST", "Patient", [], "create", "Patient", None, None, False, "Patient"),
        ("PUT", "Patient/1", [], "update", "Patient", "1", None, False, "Patient/1"),
        (
            "PUT",
            "Patient",
            [("identifier", "a|b")],
            "update",
            "Patient",
            None,
            None,
            True,
            "Patient",
        ),
        (
            "DELETE",
            "Patient",
            [("identifier", "a|b")],
            "delete",
            "Patient",
            None,
            None,
            True,
            "Patient",
        ),
        ("PATCH", "Patient/1", [], "patch", "Patient", "1", None, False, "Patient/1"),
        ("DELETE", "Patient/1", [], "delete", "Patient", "1", None, False, "Patient/1"),
        (
            "GET",
            "Patient/1/_history",
            [],
            "history",
            "Patient",
            "1",
            None,
            False,
            "Patient/1/_history",
        ),
        (
            "GET",
            "Patient/_history",
            [],
            "history",
            "Patient",
            None,
            None,
            False,
            "Patient/_history",
        ),
        ("POST", "", [], "transaction", None, None, None, False, ""),
        ("GET", "", [("_getpages", "x")], "search", None, None, None, False, ""),
        ("GET", "metadata", [], "capabilities", None, None, None, False, "metadata"),
        (
            "GET",
            "Patient/1/$everything",
            [],
            "operation",
            "Patient",
            "1",
            "$everything",
            False,
            "Patient/1/$everything",
        ),
        (
            "POST",
            "ValueSet/$expand",
            [],
            "operation",
            "ValueSet",
            None,
            "$expand",
            False,
            "ValueSet/$expand",
        ),
        ("GET", "$export", [], "operation", None, None, "$export", False, "$export"),
    ],
)
def test_parse(
    method: str,
    path: str,
    params: list[tuple[str, str]],
    kind: str,
    rtype: str | None,
    rid: str | None,
    op: str | None,
    conditional: bool,
    upstream: str,
) -> None:
    parsed = parse_interaction(method, path, params)
    assert (parsed.kind, parsed.resource_type, parsed.resource_id, parsed.operation) == (
        kind,
        rtype,
        rid,
        op,
    )
    assert parsed.conditional is conditional
    assert parsed.params == tuple(params)
    assert parsed.path == upstream


def test_conditional_create() -> None:
    assert parse_interaction("POST", "Patient", [], has_if_none_exist=True).conditional


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "_history", []),
        ("GET", "mcp/messages", []),
        ("POST", "mcp/messages", []),
        ("GET", "", []),
        ("PUT", "Patient", []),
        ("DELETE", "Patient", []),
        ("POST", "Patient/1", []),
        ("GET", "Patient/_search", []),
        ("POST", "metadata", []),
        ("GET", "Patient/../x", []),
    ],
)
def test_refused(method: str, path: str, params: list[tuple[str, str]]) -> None:
    with pytest.raises(PermissionDenied):
        parse_interaction(method, path, params)


def test_bad_id_and_unknown_path() -> None:
    with pytest.raises(BadRequestError):
        parse_interaction("GET", "Patient/a_b", [])
    with pytest.raises(NotFoundError):
        parse_interaction("GET", "Patient/1/foo/bar/baz", [])


def test_operations_allow_list() -> None:
    settings = GatewaySettings()
    for op in ("$everything", "$validate", "$expand", "$export", "$export-poll-status"):
        assert check_operation(op, settings.operations, settings.admin_operations, is_admin=False)
    for op in (
        "$expunge",
        "$reindex",
        "$partition-management-create-partition",
        "$upload-external-code-system",
        "$trigger-subscription",
    ):
        with pytest.raises(PermissionDenied):
            check_operation(op, settings.operations, settings.admin_operations, is_admin=False)
    assert check_operation(
        "$trigger-subscription", settings.operations, settings.admin_operations, is_admin=True
    )
    with pytest.raises(PermissionDenied):
        check_operation("$expunge", settings.operations, settings.admin_operations, is_admin=True)


def test_caps() -> None:
    settings = GatewaySettings(max_count=200, default_count=50, max_history_count=30)
    assert cap_params("search", [("_count", "5000")], settings) == (("_count", "200"),)
    assert cap_params("search", [("name", "x")], settings) == (("name", "x"), ("_count", "50"))
    assert cap_params("search", [("_count", "10"), ("_count", "999")], settings) == (
        ("_count", "10"),
    )
    assert cap_params("history", [], settings) == (("_count", "30"),)
    assert cap_params("history", [("_count", "100")], settings) == (("_count", "30"),)
    assert cap_params("search", [("_total", "accurate"), ("_count", "1")], settings) == (
        ("_total", "estimate"),
        ("_count", "1"),
    )
    allowed = GatewaySettings(allow_total_accurate=True)
    assert ("_total", "accurate") in cap_params("search", [("_total", "accurate")], allowed)
    assert cap_params("search", [("_getpages", "x")], settings) == (("_getpages", "x"),)
    assert cap_params("read", [("_count", "5000")], settings) == (("_count", "5000"),)
    with pytest.raises(BadRequestError):
        cap_params("search", [("_count", "lots")], settings)


def test_request_headers_are_an_allow_list() -> None:
    forwarded = forwardable_request_headers(
        [
            ("Authorization", "Bearer x"),
            ("X-API-Key", "ehrk_x"),
            ("Cookie", "a=b"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Proxy-Authorization", "x"),
            ("If-Match", 'W/"1"'),
            ("If-None-Exist", "identifier=a|b"),
            ("If-None-Match", 'W/"1"'),
            ("If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("Prefer", "return=minimal"),
            ("Accept", "application/fhir+json"),
            ("Content-Type", "application/fhir+json"),
            ("ETag", 'W/"1"'),
            ("X-Forwarded-For", "1.2.3.4"),
        ]
    )
    assert set(forwarded) == {
        "if-match",
        "if-none-exist",
        "if-none-match",
        "if-modified-since",
        "prefer",
        "accept",
        "content-type",
        "etag",
    }


def test_response_headers_drop_hop_by_hop() -> None:
    headers = httpx.Headers(
        [
            ("Connection", "close, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "10"),
            ("X-Powered-By", "HAPI FHIR"),
            ("ETag", 'W/"3"'),
            ("Location", "http://h/fhir/t/Patient/1"),
            ("Content-Type", "application/fhir+json"),
        ]
    )
    kept = {name.lower() for name, _ in forwardable_response_headers(headers)}
    assert kept == {"etag", "location", "content-type"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("demo/Patient/1", ("demo", "Patient/1")),
        ("demo", ("demo", "")),
        ("clinic-2/$export", ("clinic-2", "$export")),
        ("Patient/1", (None, "Patient/1")),
        ("metadata", (None, "metadata")),
        ("$export", (None, "$export")),
        ("_history", (None, "_history")),
        ("", (None, "")),
    ],
)
def test_split_tenant_base(path: str, expected: tuple[str | None, str]) -> None:
    assert split_tenant_base(path) == expected
