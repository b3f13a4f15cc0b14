"""Fixtures of the gateway's integration tests.

``gw``          two tenants (``ga``, ``gb``) with a user of every role and real tokens, built like
                the acceptance matrix's world (tests/support/tenant_world.py)
``allow_all``   replaces the SMART policy by one that allows everything unchanged, so these tests
                exercise the gateway's own mechanics (the policy has its own tests)
``make_client`` an in-process client for an app built with other settings (timeouts, limits)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from support.in_process import serve
from support.tenant_world import World, open_world

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app
from ehr.platform.auth.principal import Principal
from ehr.platform.gateway import enforcement


@pytest.fixture(scope="session")
async def gw(settings: Settings, run_id: str) -> AsyncIterator[World]:
    async with open_world(settings, run_id, ("ga", "gb")) as world:
        yield world


@dataclass(frozen=True, slots=True)
class _Interaction:
    kind: str
    method: str
    resource_type: str | None
    resource_id: str | None
    operation: str | None
    params: tuple[tuple[str, str], ...]
    conditional: bool = False


def _allow(principal: Principal, interaction: Any) -> None:
    return None


def _same(principal: Principal, interaction: Any) -> Any:
    return interaction


def _allow_bundle(principal: Principal, bundle: Mapping[str, Any]) -> None:
    return None


ALLOW_ALL = SimpleNamespace(
    FhirInteraction=_Interaction,
    authorize=_allow,
    constrain=_same,
    authorize_bundle=_allow_bundle,
)


@pytest.fixture
def allow_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enforcement, "load_policy", lambda: ALLOW_ALL)


@pytest.fixture
def make_client(
    settings: Settings,
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    def make(**updates: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serve(create_app(settings.model_copy(update=updates)))

    return make
