"""``ehr``: the operator CLI.

    ehr serve [--host H] [--port P] [--workers N] [--reload]
                                                 the API (uvicorn workers, uvloop, httptools)
    ehr migrate [--schema NAME] [--revision R]   upgrade the app schema (Alembic)
    ehr seed                                     demo tenant, one user per role, demo patients
                                                 (development only; idempotent)
    ehr seed --tenant T                          only the demo patients, into existing tenant T
    ehr tenants create|list|disable              tenants (HAPI partitions)
    ehr users create|reset-mfa                   users of a tenant
    ehr api-keys create|revoke|list              API keys of service clients
    ehr audit verify|export|checkpoint           check the shard chains and signed checkpoints /
                                                 export records / sign a checkpoint now
    ehr keys rotate-signing|reencrypt|purge-expired   key material, token housekeeping
    ehr auth disable-user|enable-user|set-roles|flush-principal-cache
                                                 accounts' state, acting on running APIs at once
    ehr cds-hooks clients add|list|disable|enable    trusted CDS Hooks clients
    ehr order-sets install --tenant T | list-starter the shipped starter order sets (idempotent)
    ehr worker [--concurrency N] [--jobs-from MODULE]   background jobs (ADR 0024)
    ehr jobs list|show|cancel|retry --tenant T   a tenant's background jobs
    ehr events status|dead-letters list|replay|replay-outbox
                                                 domain events: outbox, dead letters (ADR 0023)
    ehr webhooks list|add|disable|enable|deliveries|replay --tenant T
                                                 outbound webhooks (ADR 0026)
    ehr hl7 listen | send FILE | senders add|list|disable | inbox | dead-letters | replay
          | senders ack-destination | destinations add|list|disable | outbound list|replay
                                                 HL7 v2 interfaces (ADR 0033)
    ehr pharmacy ledger verify [--tenant T] | export --tenant T
                                                 the pharmacy stock ledger (ADR 0034)
    ehr contract export [--check]                the frontend contract (its openapi.json)
    ehr check-config                             validate the settings; print a redacted summary
    ehr stack ...                                the project-local stack (see ehr.devstack.cli)

Invalid settings end every command with one line naming the setting (exit status 2), never a
traceback.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Environment, Settings
from ehr.core.observability import configure_logging, prepare_multiprocess_metrics
from ehr.devstack.cli import app as stack_app
from ehr.entrypoints.cli.audit import app as audit_app
from ehr.entrypoints.cli.auth import auth_app, keys_app
from ehr.entrypoints.cli.cds_hooks import app as cds_hooks_app
from ehr.entrypoints.cli.contract import app as contract_app
from ehr.entrypoints.cli.events import events_app
from ehr.entrypoints.cli.hl7 import hl7_app
from ehr.entrypoints.cli.jobs import jobs_app, worker
from ehr.entrypoints.cli.medication_safety import app as medication_safety_app
from ehr.entrypoints.cli.order_sets import app as order_sets_app
from ehr.entrypoints.cli.pharmacy import pharmacy_app
from ehr.entrypoints.cli.runner import run, settings_or_exit
from ehr.entrypoints.cli.smart import app as smart_app
from ehr.entrypoints.cli.tenancy import api_keys_app, tenants_app, users_app
from ehr.entrypoints.cli.webhooks import webhooks_app
from ehr.fhir import FhirClient
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["app"]

app = typer.Typer(
    name="ehr",
    help="EHR platform operator commands.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(stack_app, name="stack")
app.add_typer(tenants_app, name="tenants")
app.add_typer(users_app, name="users")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(auth_app, name="auth")
app.add_typer(medication_safety_app, name="medication-safety")
app.add_typer(cds_hooks_app, name="cds-hooks")
app.add_typer(jobs_app, name="jobs")
app.add_typer(events_app, name="events")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(hl7_app, name="hl7")
app.add_typer(pharmacy_app, name="pharmacy")
app.command()(worker)
app.add_typer(order_sets_app, name="order-sets")
app.add_typer(contract_app, name="contract")
app.add_typer(smart_app, name="smart")


def worker_count(configured: int) -> int:
    """The workers ``ehr serve`` starts: ``configured``, or one per CPU core (at most 8) for 0."""
    if configured > 0:
        return configured
    return max(1, min(8, os.cpu_count() or 1))


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: settings.api.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.api.port).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Worker processes (default: settings.api.workers; 0 there = per core)."
        ),
    ] = None,
    reload: Annotated[
        bool, typer.Option(help="Restart on code changes (development; one worker).")
    ] = False,
) -> None:
    """Run the API as production runs it: uvicorn workers on uvloop with the httptools parser
    (``ehr.entrypoints.api:create_app --factory``)."""
    import uvicorn

    settings = settings_or_exit()  # fail here, in one line, before uvicorn starts
    count = 1 if reload else (workers or worker_count(settings.api.workers))
    prepare_multiprocess_metrics(count)
    uvicorn.run(
        "ehr.entrypoints.api:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=count,
        reload=reload,
        loop="uvloop",
        http="httptools",
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
    from ehr.core.db.migrate import migrate as run_migrations

    settings = settings_or_exit()
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
        typer.Option(help="Only load the demo patients into this existing tenant's partition."),
    ] = None,
) -> None:
    """Development only: the demo tenant with one user per role and the synthetic patients.

    Re-running creates nothing new. Prints how to log in.
    """
    from ehr.entrypoints.seed import seed_demo_data
    from ehr.entrypoints.seed.tenant import DEMO_PASSWORD, seed_demo_tenant

    settings = settings_or_exit()
    configure_logging(settings.log)
    if settings.env is not Environment.DEVELOPMENT:
        typer.echo(
            f"ehr seed: demo data is for development only (EHR_ENV={settings.env})", err=True
        )
        raise typer.Exit(code=2)

    if tenant is not None:

        async def patients_only(_s: Settings, session: AsyncSession, fhir: FhirClient) -> None:
            found = await get_tenant_by_slug(session, tenant)
            report = await seed_demo_data(fhir.for_tenant(found.slug))
            typer.echo(json.dumps(report.as_dict()))

        run("seed", patients_only)
        return

    async def demo(_s: Settings, session: AsyncSession, fhir: FhirClient) -> None:
        report = await seed_demo_tenant(session, fhir, settings)
        patients = report.patients.as_dict() if report.patients else None
        typer.echo(
            json.dumps(
                {
                    "tenant": report.tenant,
                    "partition_id": report.partition_id,
                    "tenant_created": report.tenant_created,
                    "users_created": report.users_created,
                    "users_existing": report.users_existing,
                    "patients": patients,
                }
            )
        )
        users = ", ".join(report.users_created + report.users_existing)
        typer.echo(f"demo users (tenant demo): {users}")
        typer.echo(f"demo password (development only): {DEMO_PASSWORD}")

    run("seed", demo)


@app.command("check-config")
def check_config() -> None:
    """Validate the settings from the environment and print them (secrets redacted)."""
    settings = settings_or_exit()
    typer.echo(settings.model_dump_json(indent=2))


if __name__ == "__main__":
    app()
