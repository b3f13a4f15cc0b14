"""Medication-safety fixtures.

``tiny_kb``        the KB compiled from ``tiny_kb.TINY_SOURCES``
``tiny_resolver``  ``tiny_kb.build_tiny_resolver()``
``write_sources``  writes ``{file name: YAML text}`` into a fresh directory and returns it
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tiny_kb import TINY_SOURCES, DictResolver, build_tiny_resolver, write_to

from ehr.modules.medication_safety.kb_compiler import KnowledgeBase, compile_knowledge


@pytest.fixture(scope="session")
def tiny_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return compile_knowledge(write_to(tmp_path_factory.mktemp("tiny-kb"), TINY_SOURCES))


@pytest.fixture(scope="session")
def tiny_resolver() -> DictResolver:
    return build_tiny_resolver()


@pytest.fixture
def write_sources(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    counter = iter(range(1_000_000))

    def write(sources: Mapping[str, str]) -> Path:
        return write_to(tmp_path / f"sources-{next(counter)}", sources)

    return write
