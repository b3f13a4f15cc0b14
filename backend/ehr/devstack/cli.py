"""``ehr stack …`` (also ``python -m ehr.devstack …``): the project-local dev/test stack.

up [--no-api] [--no-worker] [--no-seed] [--only postgres,redis]
                                                    start (or reuse) everything
down                                                stop everything the devstack started
status                                              what runs where
logs [service] [-f]                                 a service's log
restart-hapi                                        stop and start HAPI
run -- CMD …                                        run CMD with the stack's EHR_* settings
env                                                 print those settings as shell exports
browser                                             find (or apt-install) Chromium + chromedriver
clean                                               down, then delete .stack
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.panel import Panel

from ehr.devstack.errors import StackError
from ehr.devstack.processes import console, log_tail
from ehr.devstack.stack import SERVICES, Stack
from ehr.devstack.toolchain import ensure_browser

__all__ = ["app"]

app = typer.Typer(
    name="stack",
    help="The project-local stack: PostgreSQL, Redis, HAPI FHIR, the API and the job worker.",
    no_args_is_help=True,
    add_completion=False,
)

P = ParamSpec("P")
R = TypeVar("R")


def _reported(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a :class:`StackError` into a red message (plus log tail) and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StackError as exc:
            if exc.log_tail:
                console.print(Panel(exc.log_tail, title="last log lines", border_style="red"))
            console.print(f"[bold red]✗ {exc}[/]")
            raise typer.Exit(code=1) from exc

    return wrapper


@app.command()
@_reported
def up(
    api: Annotated[
        bool, typer.Option("--api/--no-api", help="Start the API in background.")
    ] = True,
    seed: Annotated[
        bool, typer.Option("--seed/--no-seed", help="Load demo data (ehr seed).")
    ] = True,
    worker: Annotated[
        bool,
        typer.Option("--worker/--no-worker", help="Start the job worker and the HL7 v2 listener."),
    ] = True,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated services to start (postgres,redis,hapi,api,worker,hl7); "
            "skips migrations and seed."
        ),
    ] = None,
) -> None:
    """Start (or reuse) PostgreSQL, Redis, HAPI; migrate; seed; start the API and the worker."""
    stack = Stack.from_settings()
    services = [name.strip() for name in only.split(",") if name.strip()] if only else None
    stack.up(api=api, seed=seed, worker=worker, only=services)
    if services is None or {"hapi", "api"} & set(services):
        console.print(stack.where_to_go(api=api and (services is None or "api" in services)))


@app.command()
@_reported
def down() -> None:
    """Stop the worker, API, HAPI, Redis and PostgreSQL started by the devstack."""
    Stack.from_settings().down()


@app.command()
@_reported
def status() -> None:
    """Show each service's state, address, pid and log file."""
    console.print(Stack.from_settings().status_table())


@app.command()
@_reported
def logs(
    service: Annotated[str | None, typer.Argument(help=f"One of {', '.join(SERVICES)}.")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many lines.")] = 40,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
) -> None:
    """Print the last lines of a service's log (all services when none is named)."""
    stack = Stack.from_settings()
    files = {row.name: row.log for row in stack.status() if row.log is not None}
    if service is not None and service not in SERVICES:
        raise StackError(f"unknown service {service!r}; choose from {', '.join(SERVICES)}")
    chosen = [service] if service else [name for name in SERVICES if name in files]
    for name in chosen:
        path = files.get(name)
        if path is None:
            console.print(f"[yellow]{name}: no log (external or not installed)[/]")
            continue
        console.rule(f"{name} — {path}")
        # Logs are printed raw: they are not rich markup.
        console.out(log_tail(path, lines) or "(empty)", highlight=False)
    if follow:
        if len(chosen) != 1:
            raise StackError("--follow needs one service")
        path = files[chosen[0]]
        assert path is not None  # noqa: S101 - narrowed above
        _follow(path)


def _follow(path: os.PathLike[str]) -> None:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        try:
            while True:
                chunk = handle.read()
                if chunk:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return


@app.command("restart-hapi")
@_reported
def restart_hapi() -> None:
    """Stop HAPI (if the devstack started it) and start it again, waiting until it answers."""
    stack = Stack.from_settings()
    stack.stop_hapi()
    stack.start_hapi(wait=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@_reported
def run(ctx: typer.Context) -> None:
    """Run a command with the stack's EHR_* settings in its environment: run -- CMD ARGS…"""
    if not ctx.args:
        raise StackError("nothing to run: ehr stack run -- CMD ARGS…")
    stack = Stack.from_settings()
    result = subprocess.run(ctx.args, env=stack.child_env(), check=False)
    raise typer.Exit(code=result.returncode)


@app.command()
@_reported
def env() -> None:
    """Print the stack's EHR_* settings as shell exports: eval "$(ehr stack env)"."""
    for key, value in Stack.from_settings().service_env().items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@app.command()
@_reported
def browser() -> None:
    """Find Chromium and chromedriver for the browser tests (apt-installed when root on Debian)."""
    found = ensure_browser()
    console.print(f"chromium     {found.chromium}\nchromedriver {found.chromedriver}")


@app.command()
@_reported
def clean() -> None:
    """Stop everything, then delete .stack (databases, logs, pid files)."""
    Stack.from_settings().clean()
