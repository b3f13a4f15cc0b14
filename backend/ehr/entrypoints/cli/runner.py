"""Running an operator command: its settings, its one transaction, its errors as one line.

    settings = settings_or_exit()          # invalid settings: one line naming them, exit 2
    run("tenants create", work)            # work(settings, session, fhir) in one transaction
    raise fail("users create", "no password on stdin")

Errors are one line on stderr: bad input (an ``AppError`` below 500) exits with status 2, an
unavailable dependency with 1. Logging is at WARNING (a command's output is its own).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import typer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.config import Settings, SettingsError, load_settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.db.models import User
from ehr.core.errors import AppError, NotFoundError
from ehr.core.observability import configure_logging
from ehr.fhir import FhirClient
from ehr.platform.tenancy import get_tenant_by_slug

__all__ = ["fail", "read_jwks_file", "run", "settings_or_exit", "user_by_name"]

T = TypeVar("T")


def settings_or_exit() -> Settings:
    """The settings from the environment; invalid ones end the command (one line, status 2)."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(str(exc.code), err=True)
        raise typer.Exit(code=2) from None


_MAX_JWKS_FILE: Final = 256 * 1024


def read_jwks_file(command: str, path: Path) -> Any:
    """A client's public keys from a file: a JWKS ``{"keys": [...]}`` or one JWK (checked by
    the registry that stores them)."""
    try:
        if path.stat().st_size > _MAX_JWKS_FILE:
            raise fail(command, f"{path} is larger than {_MAX_JWKS_FILE} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(command, f"cannot read {path} ({type(exc).__name__})") from None
    except ValueError:
        raise fail(command, f"{path} is not JSON") from None
    if isinstance(document, dict) and "keys" not in document and "kty" in document:
        return {"keys": [document]}  # a single JWK
    return document


def fail(command: str, message: str, *, code: int = 2) -> typer.Exit:
    typer.echo(f"ehr {command}: {message}", err=True)
    return typer.Exit(code=code)


def run(
    command: str,
    work: Callable[[Settings, AsyncSession, FhirClient], Awaitable[T]],
) -> T:
    """Run ``work`` in one transaction (committed on success); errors become one line."""
    settings = settings_or_exit()
    configure_logging(settings.log.model_copy(update={"level": "WARNING"}))

    async def main() -> T:
        engine = create_engine(settings.db)
        try:
            async with (
                FhirClient(settings.fhir) as fhir,
                create_sessionmaker(engine)() as session,
                session.begin(),
            ):
                return await work(settings, session, fhir)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except AppError as exc:
        code = 2 if exc.status_code < 500 else 1
        raise fail(command, f"{exc.code}: {exc.detail}", code=code) from None
    except OSError as exc:  # database or HAPI unreachable
        message = f"a backing service is unavailable ({type(exc).__name__})"
        raise fail(command, message, code=1) from None


async def user_by_name(session: AsyncSession, tenant_slug: str, username: str) -> User:
    """The user ``username`` (case-insensitive) of tenant ``tenant_slug``; 404 otherwise."""
    tenant = await get_tenant_by_slug(session, tenant_slug)
    user = await session.scalar(
        select(User).where(
            User.tenant_id == tenant.id, func.lower(User.username) == username.strip().lower()
        )
    )
    if user is None:
        raise NotFoundError(f"No user '{username}' in tenant '{tenant_slug}'")
    return user
