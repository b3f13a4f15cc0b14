"""Medication-safety fixtures.

``tiny_kb``        the KB compiled from ``support.tiny_kb.TINY_SOURCES`` (from support.tiny_kb)
``tiny_resolver``  ``support.tiny_kb.build_tiny_resolver()`` (from support.tiny_kb)
``write_sources``  writes ``{file name: YAML text}`` into a fresh directory and returns it
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from support.tiny_kb import tiny_kb, tiny_resolver, write_to

__all__ = ["tiny_kb", "tiny_resolver", "write_sources"]


@pytest.fixture
def write_sources(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    counter = iter(range(1_000_000))

    def write(sources: Mapping[str, str]) -> Path:
        return write_to(tmp_path / f"sources-{next(counter)}", sources)

    return write
