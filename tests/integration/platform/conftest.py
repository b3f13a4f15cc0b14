"""Fixtures shared by the platform's tests.

``world``  tenants A and B with a user of every role and real tokens (support/tenant_world.py):
           the acceptance matrix (auth/test_acceptance_matrix.py) and the tenant status tests
           (tenancy/test_tenant_status.py)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support.tenant_world import World, open_world

from ehr.core.config import Settings


@pytest.fixture(scope="session")
async def world(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, run_id, ("a", "b")) as world:
        yield world
