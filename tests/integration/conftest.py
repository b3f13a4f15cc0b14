"""Integration tests: ordering rules for the shared real stack."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``disruptive`` tests (they stop and restart a stack service) after all the others."""
    del config
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)
