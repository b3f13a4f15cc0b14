"""``ehr jobs list|show|cancel|retry --tenant T`` and ``ehr worker``: background jobs for
operators (ADR 0024). Acting through the CLI is not audited as a request (no principal); it is
the operator's shell, like the other ``ehr`` commands. ``--tenant _platform`` shows the
platform's own periodic jobs (no tenant)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Annotated, Any, Final

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings
from ehr.core.observability import configure_logging
from ehr.entrypoints.cli.runner import run, settings_or_exit
from ehr.fhir import FhirClient
from ehr.platform import jobs
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["jobs_app", "worker"]

PLATFORM_TENANT: Final = "_platform"

jobs_app = typer.Typer(help="Background jobs: list, show, cancel, retry.", no_args_is_help=True)

TenantOption = Annotated[
    str, typer.Option("--tenant", help=f"Tenant slug ({PLATFORM_TENANT}: platform jobs).")
]


async def _tenant_id(session: AsyncSession, slug: str) -> uuid.UUID | None:
    if slug == PLATFORM_TENANT:
        return None
    return (await get_tenant_by_slug(session, slug)).id


def _printed(view: jobs.JobView) -> dict[str, Any]:
    return jobs.job_out(view).model_dump(mode="json")


@jobs_app.command("list")
def list_command(
    tenant: TenantOption,
    status: Annotated[list[jobs.JobStatus] | None, typer.Option(help="Only these.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """The tenant's jobs, newest first (one JSON document per line)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        tenant_id = await _tenant_id(session, tenant)
        if tenant_id is None:
            raise typer.BadParameter("list needs a tenant; use show with a job id")
        page = await jobs.list_jobs(
            session, tenant_id, statuses=status or (), kind=kind, limit=limit
        )
        for view in page.items:
            typer.echo(json.dumps(_printed(view)))

    run("jobs list", work)


@jobs_app.command("show")
def show_command(tenant: TenantOption, job_id: uuid.UUID) -> None:
    """One job as JSON."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        view = await jobs.get_job(session, await _tenant_id(session, tenant), job_id)
        typer.echo(json.dumps(_printed(view), indent=2))

    run("jobs show", work)


@jobs_app.command("cancel")
def cancel_command(tenant: TenantOption, job_id: uuid.UUID) -> None:
    """Cancel a job (a running one stops at its next progress report)."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        view = await jobs.cancel_job(session, await _tenant_id(session, tenant), job_id)
        typer.echo(json.dumps(_printed(view)))

    run("jobs cancel", work)


@jobs_app.command("retry")
def retry_command(tenant: TenantOption, job_id: uuid.UUID) -> None:
    """Queue a failed or cancelled job again."""

    async def work(_s: Settings, session: AsyncSession, _f: FhirClient) -> None:
        view = await jobs.retry_job(session, await _tenant_id(session, tenant), job_id)
        typer.echo(json.dumps(_printed(view)))

    run("jobs retry", work)


def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Jobs at once (default EHR_JOBS__CONCURRENCY).")
    ] = None,
    jobs_from: Annotated[
        list[str] | None,
        typer.Option("--jobs-from", help="Also run the JOBS of this module (repeatable)."),
    ] = None,
) -> None:
    """Run background jobs until SIGTERM (``ehr.entrypoints.worker``)."""
    from ehr.entrypoints.worker import WORKER_JOBS, load_jobs, serve_worker

    settings = settings_or_exit()
    configure_logging(settings.log)
    settings_jobs = settings.jobs
    if concurrency is not None:
        settings_jobs = settings_jobs.model_copy(update={"concurrency": concurrency})
    definitions = [*WORKER_JOBS, *load_jobs(jobs_from or [])]
    asyncio.run(serve_worker(settings, settings_jobs, definitions))
