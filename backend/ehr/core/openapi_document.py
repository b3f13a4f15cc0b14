"""The OpenAPI document, made to tell the truth about errors.

FastAPI documents what a route declares; the errors the shared layers answer are documented here,
for every route, from what the route is:

* every route: 400 (a request target that is not UTF-8 or holds NUL, see :mod:`ehr.core.intake`);
* a route with parameters or a body: 422 (parameters/body did not validate) — as a problem
  document, not FastAPI's default ``HTTPValidationError``;
* a route with a JSON body: 400 (malformed JSON), 413 (too large), 415 (not JSON);
* a route that is not public (``PublicRoute``): 401, 403 and 503 (PostgreSQL/Redis needed to
  authenticate, or the audit trail, unavailable); a public route with a body (login): 503;
* the FHIR gateway (``/fhir``): 404, 429, 502, 503, 504 — its errors are ``OperationOutcome``
  resources (``application/fhir+json``), everywhere else problem documents
  (``application/problem+json``, :class:`~ehr.core.error_handlers.ProblemDetails`).

What a route declares itself (``responses=``) wins. ``tests/integration/fuzz`` checks every
answer against this document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from ehr.core.error_handlers import FHIR_JSON, PROBLEM_JSON, ProblemDetails, status_description

__all__ = [
    "access_markers",
    "build_openapi",
    "install_openapi_document",
    "json_request_body",
    "route_error_statuses",
]

PERMISSION_ATTRIBUTE: Final = "__ehr_permission__"  # ehr.platform.auth.authorization's marker
PUBLIC_MARKER: Final = "public"
_PROBLEM_REF: Final = {"$ref": "#/components/schemas/ProblemDetails"}
_OUTCOME_REF: Final = {"$ref": "#/components/schemas/OperationOutcome"}
_GATEWAY_STATUSES: Final = (400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 502, 503, 504)

# A FHIR R4 OperationOutcome, as far as this service relies on it (HAPI's pass through unchanged).
OPERATION_OUTCOME_SCHEMA: Final[dict[str, Any]] = {
    "title": "OperationOutcome",
    "type": "object",
    "description": "FHIR R4 OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html).",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "id": {"type": "string"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {
                        "type": "string",
                        "enum": ["fatal", "error", "warning", "information"],
                    },
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


# Models of request bodies that routes read themselves (CDS Hooks): documented by name.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def json_request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body a route parses itself (not a FastAPI body
    parameter), so the document and the fuzzer know it."""
    _BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def access_markers(dependant: Dependant) -> Iterator[object]:
    """The access markers (a Permission, ``"public"``, the gateway's or CDS Hooks' marker) in a
    route's whole dependency tree (``ehr.platform.auth.authorization`` sets them)."""
    marker = getattr(dependant.call, PERMISSION_ATTRIBUTE, None)
    if marker is not None:
        yield marker
    for sub in dependant.dependencies:
        yield from access_markers(sub)


def route_error_statuses(path: str, dependant: Dependant, *, has_body: bool) -> set[int]:
    """The error statuses the shared layers may answer for a route (see the module doc)."""
    statuses = {400}
    has_params = bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
    )
    if has_params or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {413, 415}
    if PUBLIC_MARKER not in set(access_markers(dependant)):
        statuses |= {401, 403, 503}
    elif has_body:
        statuses.add(503)  # public, but what it takes is checked against PostgreSQL/Redis
    if path == "/fhir" or path.startswith("/fhir/"):
        if "{path" in path:
            statuses |= set(_GATEWAY_STATUSES)
        elif "{" in path:
            # A tenant-qualified base may be unknown (404); a segment that is not a tenant slug
            # is no base at all, and the gateway answers for it (401/403).
            statuses |= {401, 403, 404, 503, 504}
        else:  # discovery: HAPI's statement
            statuses |= {503, 504}
    return statuses


def _error_response(status: int, fhir: bool) -> dict[str, Any]:
    media, ref = (FHIR_JSON, _OUTCOME_REF) if fhir else (PROBLEM_JSON, _PROBLEM_REF)
    return {"description": status_description(status), "content": {media: {"schema": ref}}}


def _document_errors(app: FastAPI, schema: dict[str, Any]) -> None:
    paths: dict[str, Any] = schema.get("paths", {})
    # iter_route_contexts flattens included routers (with their prefixes and dependencies).
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        path = str(context.path_format)
        fhir = path == "/fhir" or path.startswith("/fhir/")
        dependant = context.dependant
        if not isinstance(dependant, Dependant):
            continue
        for method in context.methods or ():
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue
            has_body = route.body_field is not None or "requestBody" in operation
            statuses = route_error_statuses(path, dependant, has_body=has_body)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            default_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if default_422 is not None and "HTTPValidationError" in str(default_422):
                del responses["422"]  # FastAPI's default shape; ours is a problem document
            for status in sorted(statuses):
                key = str(status)
                if key not in responses:
                    responses[key] = _error_response(status, fhir)
                elif fhir:
                    # A FHIR route's errors are OperationOutcomes, whatever the route declared.
                    responses[key]["content"] = _error_response(status, fhir)["content"]
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (cached on ``app.openapi_schema``)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["ProblemDetails"] = problem
    components["OperationOutcome"] = OPERATION_OUTCOME_SCHEMA
    for name, model in _BODY_MODELS.items():
        body = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[name] = body
    _document_errors(app, schema)
    app.openapi_schema = schema
    return schema


def install_openapi_document(app: FastAPI) -> None:
    """Serve :func:`build_openapi` as the app's OpenAPI document (every error it can answer)."""

    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
