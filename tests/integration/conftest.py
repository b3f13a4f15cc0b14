"""Integration tests: ordering rules for the shared real stack, and its database.

``db``           a sessionmaker on the stack's app schema, for set-up, checks and clean-up
``make_tenant``  ``await make_tenant(**overrides)``: an active Tenant row with a slug unique to
                 this run and no HAPI partition (for tests that never read FHIR); every one is
                 removed at the end with its users, keys and revocations
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.database import Sessions, open_sessions
from support.tenants import MakeTenant, TenantRows

from ehr.core.config import Settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``disruptive`` tests (they stop and restart a stack service) after all the others."""
    del config
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Sessions]:
    async with open_sessions(settings) as sessions:
        yield sessions


@pytest.fixture(scope="session")
async def make_tenant(run_id: str, db: Sessions) -> AsyncIterator[MakeTenant]:
    rows = TenantRows(db, slug_prefix=f"row-{run_id[4:]}", name="Test tenant (no partition)")
    yield rows
    await rows.remove()
