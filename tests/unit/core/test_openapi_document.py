"""The OpenAPI document tells the truth: errors documented on every route, every request field
bounded (the fuzzer in tests/integration/fuzz checks the answers against the same document)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ehr.entrypoints.api import create_app

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from ehr.core.config import Settings

    return create_app(Settings()).openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _unbounded(schema: Any, where: str) -> Iterator[str]:
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind == "array" and "maxItems" not in schema:
        yield f"{where}: array without maxItems"
    bounded = {"maxLength", "enum", "const"} & set(schema)
    if (
        kind == "string"
        and not bounded
        and schema.get("format") not in {"date", "date-time", "uuid"}
    ):
        yield f"{where}: string without maxLength"
    extra = schema.get("additionalProperties")
    if kind == "object" and isinstance(extra, dict) and "maxProperties" not in schema:
        yield f"{where}: map without maxProperties"
    for name, sub in (schema.get("properties") or {}).items():
        yield from _unbounded(sub, f"{where}.{name}")
    if "items" in schema:
        yield from _unbounded(schema["items"], f"{where}[]")
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or ():
            yield from _unbounded(sub, where)


def test_fastapis_default_validation_body_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]


OAUTH_ENDPOINTS = frozenset({"/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"})


def test_every_operation_documents_its_errors_in_the_doors_format(document: dict[str, Any]) -> None:
    problems: list[str] = []
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        fhir = path.startswith("/fhir")
        wanted = {"400"}
        if operation.get("parameters") or operation.get("requestBody"):
            wanted.add("422")
        if operation.get("requestBody"):
            wanted |= {"413", "415"}
        missing = wanted - set(responses)
        if missing:
            problems.append(f"{method.upper()} {path}: {sorted(missing)} not documented")
        for status, response in responses.items():
            if not status.startswith(("4", "5")) or (path, status) == ("/ready", "503"):
                continue  # /ready's 503 is its readiness report (operational JSON), by design
            media = set(response.get("content") or {})
            expected = "application/fhir+json" if fhir else "application/problem+json"
            if path in OAUTH_ENDPOINTS and status in {"400", "401"}:
                expected = "application/json"  # OAuth errors are RFC 6749 §5.2 JSON (ADR 0032)
            if path.startswith("/oauth2/authorize") and status in {"400", "401"}:
                expected = "text/html"  # the sign-in and consent pages tell the user (ADR 0032)
            if media and expected not in media:
                problems.append(f"{method.upper()} {path} {status}: {sorted(media)}")
    assert not problems, "\n".join(problems)


def test_authenticated_operations_document_401_and_403(document: dict[str, Any]) -> None:
    public = {"/health", "/ready", "/metrics", "/.well-known/jwks.json", "/api/auth/login",
              "/api/auth/login/mfa", "/api/auth/token/refresh", "/oauth2/token"}  # fmt: skip
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations(document)
        if path not in public
        # The SMART authorization server: clients and users authenticate in the request.
        and not path.startswith("/oauth2/")
        and not path.startswith("/fhir/{tenant}/")
        and path
        not in {
            "/fhir/metadata",
            "/fhir/.well-known/smart-configuration",
            "/fhir/.well-known/openid-configuration",
        }
        and not {"401", "403"} <= set(operation["responses"])
    ]
    assert not missing, missing


def test_every_field_a_caller_sends_is_bounded(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    names: set[str] = set()
    problems: list[str] = []
    for path, method, operation in _operations(document):
        _refs(operation.get("requestBody"), names)
        for parameter in operation.get("parameters") or ():
            if path.startswith("/fhir/{path}") and parameter["name"] == "path":
                # the FHIR gateway's own grammar parses it (ehr.platform.gateway.interactions)
                continue
            problems += _unbounded(
                parameter["schema"], f"{method.upper()} {path} {parameter['name']}"
            )
    seen: set[str] = set()
    while names:
        name = names.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(components[name], found)
        names |= found
        problems += _unbounded(components[name], name)
    assert seen, "no request body schema found"
    assert not problems, "\n".join(problems)
