"""``ehr``: the operator CLI.

    ehr serve [--host H] [--port P] [--reload]   the API (uvicorn, ehr.main:create_app factory)
    ehr migrate [--schema NAME] [--revision R]   upgrade the app schema (Alembic)
    ehr seed [--tenant T]                        synthetic demo data into a tenant (idempotent)
    ehr check-config                             validate the settings; print a redacted summary
    ehr stack ...                                the project-local stack (see ehr.devstack.cli)

Invalid settings end every command with one line naming the setting (exit status 2), never a
traceback.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from ehr.audit.cli import app as audit_app
from ehr.config import Settings
from ehr.devstack.cli import app as stack_app
from ehr.main import SettingsError, load_settings

__all__ = ["app"]

app = typer.Typer(
    name="ehr",
    help="EHR platform operator commands.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(stack_app, name="stack")
app.add_typer(audit_app, name="audit")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(str(exc.code), err=True)
        raise typer.Exit(code=2) from None


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: settings.api.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.api.port).")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Run the API with uvicorn (``ehr.main:create_app --factory``)."""
    import uvicorn

    settings = _settings()  # fail here, in one line, before uvicorn starts
    uvicorn.run(
        "ehr.main:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        reload=reload,
        access_log=False,  # uvicorn's access line has query strings (PHI); we log our own
        log_config=None,  # logging is configured by create_app (structlog)
        proxy_headers=True,
    )


@app.command()
def migrate(
    schema: Annotated[
        str | None, typer.Option(help="App schema to migrate (default: settings.db.app_schema).")
    ] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the app schema to the latest migration (creates the schema if missing)."""
    from ehr.db.migrate import migrate as run_migrations

    settings = _settings()
    target = schema or settings.db.app_schema
    try:
        run_migrations(settings, schema=target, revision=revision)
    except ValueError as exc:  # invalid schema name
        typer.echo(f"ehr migrate: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"schema {target} migrated to {revision}")


@app.command()
def seed(
    tenant: Annotated[
        str | None,
        typer.Option(help="Tenant (HAPI partition); default settings.fhir.default_tenant."),
    ] = None,
) -> None:
    """Load the synthetic demo patients into HAPI (re-running creates nothing new)."""
    from ehr.errors import AppError
    from ehr.fhir import FhirClient
    from ehr.observability import configure_logging
    from ehr.seed import seed_demo_data

    settings = _settings()
    configure_logging(settings.log)

    async def run() -> None:
        async with FhirClient(settings.fhir) as fhir:
            report = await seed_demo_data(fhir.for_tenant(tenant or settings.fhir.default_tenant))
        typer.echo(json.dumps(report.as_dict()))

    try:
        asyncio.run(run())
    except AppError as exc:
        typer.echo(f"ehr seed: {exc.code}: {exc.detail}", err=True)
        raise typer.Exit(code=1) from None


@app.command("check-config")
def check_config() -> None:
    """Validate the settings from the environment and print them (secrets redacted)."""
    settings = _settings()
    typer.echo(settings.model_dump_json(indent=2))


if __name__ == "__main__":
    app()
