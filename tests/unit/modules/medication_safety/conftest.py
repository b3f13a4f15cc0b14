"""Medication-safety fixtures.

``tiny_kb``        the KB compiled from ``support.tiny_kb.TINY_SOURCES`` (from support.tiny_kb)
``tiny_resolver``  ``support.tiny_kb.build_tiny_resolver()`` (from support.tiny_kb)
``write_sources``  writes ``{file name: YAML text}`` into a fresh directory and returns it
``no_operator_table``  the shipped RxNorm table, whatever EHR_MEDICATION_SAFETY__RXNORM_DIR says
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from support.tiny_kb import tiny_kb, tiny_resolver, write_to

from ehr.core.config import get_settings
from ehr.modules.medication_safety.knowledge import load_resolver

__all__ = ["no_operator_table", "tiny_kb", "tiny_resolver", "write_sources"]


@pytest.fixture
def no_operator_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("EHR_MEDICATION_SAFETY__RXNORM_DIR", raising=False)
    get_settings.cache_clear()
    load_resolver.cache_clear()
    yield
    get_settings.cache_clear()
    load_resolver.cache_clear()


@pytest.fixture
def write_sources(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    counter = iter(range(1_000_000))

    def write(sources: Mapping[str, str]) -> Path:
        return write_to(tmp_path / f"sources-{next(counter)}", sources)

    return write
