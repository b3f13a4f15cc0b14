"""`ehr keys ...` against the real database: rotation publishes a new kid and keeps the old."""

from __future__ import annotations

import asyncio

import pytest
from support.database import open_sessions
from typer.testing import CliRunner

from ehr.core.config import Settings
from ehr.entrypoints.cli import app as cli
from ehr.platform.auth.signing_keys import build_jwks

pytestmark = pytest.mark.integration


async def _published_kids(settings: Settings) -> set[str]:
    async with open_sessions(settings) as sessions, sessions() as session:
        jwks = await build_jwks(session)
    return {key["kid"] for key in jwks["keys"]}


def test_rotate_signing_publishes_a_new_kid_and_keeps_the_old_ones(settings: Settings) -> None:
    before = asyncio.run(_published_kids(settings))

    result = CliRunner().invoke(cli, ["keys", "rotate-signing"])

    assert result.exit_code == 0, result.output
    new_kid = result.output.strip().split()[-1]
    after = asyncio.run(_published_kids(settings))
    assert new_kid not in before
    assert new_kid in after
    assert before <= after, "a retired key must stay published until its grace ends"


def test_purge_expired_reports_a_count(settings: Settings) -> None:
    result = CliRunner().invoke(cli, ["keys", "purge-expired"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("purged ")
