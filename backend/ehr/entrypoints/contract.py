"""The frontend contract: the business API's OpenAPI document as frontends get it
(``frontend-contract/openapi.json``, ADR 0029).

:func:`contract_document` builds it from the app's own document (:func:`ehr.core.build_openapi`
via ``create_app``): the ``/api`` paths only — FHIR routes (``/fhir``) follow the FHIR
specification, CDS Hooks (``/cds-services``) their own, and the operational endpoints are not for
frontends — and only the component schemas those paths reach. Deterministic: keys sorted, no
values from the environment (the document is built from default settings), so the committed file
changes only when the API does. ``ehr contract export`` writes it; a unit test fails when the
committed file differs from what the code produces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ehr.core.config import Settings

__all__ = ["CONTRACT_FILE", "contract_document", "contract_json"]

CONTRACT_FILE: Final = Path("frontend-contract") / "openapi.json"
_PREFIX: Final = "/api/"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _sorted_enums(node: Any) -> Any:
    """Every string ``enum`` sorted: Python's typing caches ``Literal`` types by their set of
    values, so the order a schema shows depends on which module was imported first; sorted, the
    document is the same whatever the import order (an enum's order has no meaning)."""
    if isinstance(node, dict):
        out = {key: _sorted_enums(value) for key, value in node.items()}
        enum = out.get("enum")
        if isinstance(enum, list) and all(isinstance(v, str) for v in enum):
            out["enum"] = sorted(enum)
        return out
    if isinstance(node, list):
        return [_sorted_enums(item) for item in node]
    return node


def contract_document(settings: Settings | None = None) -> dict[str, Any]:
    """The business API's OpenAPI 3.1 document (``/api`` paths and what they reference)."""
    from ehr.entrypoints.api import create_app  # the app imports every module: build lazily

    app = create_app(settings or Settings())
    full = app.openapi()
    paths = {path: item for path, item in full["paths"].items() if path.startswith(_PREFIX)}
    schemas: Mapping[str, Any] = full.get("components", {}).get("schemas", {})
    wanted: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        pending.extend(_refs(schemas[name]))
    components: dict[str, Any] = {"schemas": {name: schemas[name] for name in sorted(wanted)}}
    security = full.get("components", {}).get("securitySchemes")
    if security:
        components["securitySchemes"] = security
    document: dict[str, Any] = _sorted_enums(
        {
            "openapi": full["openapi"],
            "info": {
                **full["info"],
                "description": (
                    "The business API of the EHR platform for frontends: JSON over HTTPS, "
                    "bearer tokens from /api/auth/login, errors as RFC 9457 "
                    "application/problem+json with a stable `code`. FHIR clients use /fhir "
                    "(not part of this document)."
                ),
            },
            "paths": paths,
            "components": components,
        }
    )
    return document


def contract_json(settings: Settings | None = None) -> str:
    """:func:`contract_document` as the committed file's text (sorted keys, 2-space indent)."""
    return (
        json.dumps(contract_document(settings), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
