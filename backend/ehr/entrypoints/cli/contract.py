"""``ehr contract``: the frontend contract (ADR 0029).

ehr contract export [--out frontend-contract/openapi.json] [--check]
    write the business API's OpenAPI document (the /api paths) as frontends get it; --check
    writes nothing and exits 1 when the file differs from what the code produces
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ehr.entrypoints.contract import CONTRACT_FILE, contract_json

__all__ = ["app"]

app = typer.Typer(
    name="contract",
    help="The frontend contract: the business API's OpenAPI document.",
    no_args_is_help=True,
)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Where the document goes.")] = CONTRACT_FILE,
    check: Annotated[
        bool, typer.Option("--check", help="Compare only; exit 1 when the file is stale.")
    ] = False,
) -> None:
    """Write (or check) frontend-contract/openapi.json."""
    text = contract_json()
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            typer.echo(f"{out} is stale: run `ehr contract export` and commit it", err=True)
            raise typer.Exit(code=1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out} ({len(text)} bytes)")
