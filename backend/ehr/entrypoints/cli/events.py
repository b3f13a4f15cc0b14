"""``ehr events ...``: the domain events' outbox, dead letters and replays (ADR 0023).

    ehr events status                         outbox depth and lag, stream length, groups
    ehr events dead-letters list [--handler H] [--all] [--limit N]
    ehr events dead-letters replay ID [ID ...] | --all
    ehr events replay-outbox --since 2026-12-07T08:00:00Z [--tenant T]

Output is JSON (one document per line for lists). Replays are safe to repeat: handlers keep
receipts, an event they already took is not handled again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.engine import create_engine, create_sessionmaker
from ehr.core.observability import configure_logging
from ehr.core.redis_store import create_redis
from ehr.entrypoints.cli.runner import fail, settings_or_exit
from ehr.platform import events

__all__ = ["events_app"]

T = TypeVar("T")

events_app = typer.Typer(
    help="Domain events: outbox status, dead letters, replays.", no_args_is_help=True
)
dead_letters_app = typer.Typer(help="Events a handler gave up on.", no_args_is_help=True)
events_app.add_typer(dead_letters_app, name="dead-letters")

Work = Callable[
    [Settings, async_sessionmaker[AsyncSession], Redis, str, events.EventsSettings], Awaitable[T]
]


def _run(command: str, work: Work[T]) -> T:
    settings = settings_or_exit()
    configure_logging(settings.log.model_copy(update={"level": "WARNING"}))
    config = settings.events

    async def main() -> T:
        engine = create_engine(settings.db)
        redis = create_redis(settings)
        try:
            key = events.stream_key(config, settings.db.app_schema)
            return await work(settings, create_sessionmaker(engine), redis, key, config)
        finally:
            await redis.aclose()
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (OSError, RedisError) as exc:
        raise fail(f"events {command}", f"unavailable: {type(exc).__name__}", code=1) from None
    except SQLAlchemyError as exc:
        # A missing table says the schema is not migrated; the message holds no parameters.
        raise fail(f"events {command}", f"database: {type(exc).__name__}", code=1) from None


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


@events_app.command("status")
def status_command() -> None:
    """Outbox depth and lag, dead letters waiting, the stream and its consumer groups."""

    async def work(
        _s: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        key: str,
        _c: events.EventsSettings,
    ) -> None:
        typer.echo(_json(await events.outbox_status(sessions, redis, key=key)))

    _run("status", work)


@dead_letters_app.command("list")
def list_command(
    handler: Annotated[str | None, typer.Option(help="Only this handler's.")] = None,
    include_replayed: Annotated[
        bool, typer.Option("--all", help="Also those already replayed.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Dead letters, newest first (one JSON document per line)."""

    async def work(
        _s: Settings,
        sessions: async_sessionmaker[AsyncSession],
        _r: Redis,
        _k: str,
        _c: events.EventsSettings,
    ) -> None:
        found = await events.list_dead_letters(
            sessions, handler=handler, include_replayed=include_replayed, limit=limit
        )
        for view in found:
            typer.echo(_json(asdict(view)))

    _run("dead-letters list", work)


@dead_letters_app.command("replay")
def replay_command(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every one not yet replayed.")] = False,
) -> None:
    """Send dead letters back to their handler (after the cause is fixed)."""
    if bool(ids) == every:
        raise fail("events dead-letters replay", "give dead-letter ids or --all (not both)")

    async def work(
        _s: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        key: str,
        config: events.EventsSettings,
    ) -> None:
        replayed = await events.replay_dead_letters(
            sessions, redis, key=key, events=config, ids=None if every else ids
        )
        typer.echo(_json({"replayed": replayed}))

    _run("dead-letters replay", work)


@events_app.command("replay-outbox")
def replay_outbox_command(
    since: Annotated[
        datetime, typer.Option(help="Rows created at or after this time (ISO 8601, with zone).")
    ],
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's events.")] = None,
) -> None:
    """Write the outbox's events again to the stream (Redis lost it, or a new handler)."""
    if since.tzinfo is None:
        raise fail("events replay-outbox", "--since needs a time zone (e.g. ...Z or +00:00)")

    async def work(
        _s: Settings,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis,
        key: str,
        config: events.EventsSettings,
    ) -> None:
        written = await events.replay_outbox(
            sessions, redis, key=key, events=config, since=since, tenant=tenant
        )
        typer.echo(_json({"written": written, "stream": key}))

    _run("replay-outbox", work)
