"""The committed frontend contract is what the code produces, and every operation in it carries
what a frontend needs: summary, tags, a typed success response, problem+json errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ehr.entrypoints.cli import app
from ehr.entrypoints.contract import CONTRACT_FILE, contract_json

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / CONTRACT_FILE
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def produced() -> str:
    return contract_json()


def test_the_committed_contract_is_what_the_code_produces(produced: str) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == produced, (
        "frontend-contract/openapi.json is stale: run `ehr contract export` (then "
        "`npm run generate` in frontend-contract/) and commit both"
    )


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_documents_what_a_frontend_needs(produced: str) -> None:
    document = json.loads(produced)
    assert document["openapi"].startswith("3.1")
    operations = _operations(document)
    assert len(operations) > 100
    assert all(path.startswith("/api/") for _, path, _ in operations)
    schemas = document["components"]["schemas"]
    assert "code" in schemas["ProblemDetails"]["properties"]
    for method, path, operation in operations:
        where = f"{method} {path}"
        assert operation.get("summary"), where
        assert operation.get("tags"), where
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert success, where
        for code, response in success.items():
            assert code == "204" or response.get("content"), (where, code)
        errors = [code for code in operation["responses"] if code[0] in "45"]
        assert errors, where
        for code in errors:
            assert "application/problem+json" in operation["responses"][code]["content"], (
                where,
                code,
            )


def test_every_reference_resolves(produced: str) -> None:
    document = json.loads(produced)
    names = set(document["components"]["schemas"])
    text = json.dumps(document["paths"]) + json.dumps(document["components"])
    for ref in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in names, ref


def test_the_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    result = CliRunner().invoke(app, ["contract", "export", "--check", "--out", str(stale)])
    assert result.exit_code == 1
    assert "stale" in result.output
    written = CliRunner().invoke(app, ["contract", "export", "--out", str(stale)])
    assert written.exit_code == 0, written.output
    again = CliRunner().invoke(app, ["contract", "export", "--check", "--out", str(stale)])
    assert again.exit_code == 0, again.output
