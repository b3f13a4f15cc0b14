"""Fixtures of the acceptance matrix: ``world``, tenants A and B (support/tenant_world.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.tenant_world import World, open_world

from ehr.core.config import Settings


@pytest.fixture(scope="session")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, run_id, ("a", "b")) as world:
        yield world
