"""Loading the shipped knowledge: the compiled knowledge base and the RxNorm table, once per
process.

``SOURCES_DIR`` (``data/sources/*.yaml``) and ``RXNORM_DIR`` (``data/rxnorm``, the compact table
shipped in the package) are the module's package data. :func:`load_knowledge` gives both as one
:class:`LoadedKnowledge` (cached: the first call compiles, ~0.2 s; later calls are free).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

import structlog

from ehr.modules.medication_safety.knowledge.base import KnowledgeBase
from ehr.modules.medication_safety.knowledge.compiler import compile_knowledge
from ehr.modules.medication_safety.knowledge.rxnorm_table import CONCEPTS_FILE, RxNormTable

__all__ = [
    "RXNORM_DIR",
    "SOURCES_DIR",
    "LoadedKnowledge",
    "load_knowledge",
    "load_knowledge_base",
    "load_resolver",
    "shipped_table_dir",
]

_log = structlog.get_logger(__name__)

# The package data of ehr.modules.medication_safety.
_DATA: Final = Path(__file__).resolve().parent.parent / "data"
SOURCES_DIR: Final = _DATA / "sources"
RXNORM_DIR: Final = _DATA / "rxnorm"


@dataclass(frozen=True, slots=True)
class LoadedKnowledge:
    """The compiled knowledge base and the RxNorm table, with when this process compiled them."""

    kb: KnowledgeBase
    resolver: RxNormTable
    compiled_at: dt.datetime | None = None


@functools.cache
def load_knowledge_base() -> KnowledgeBase:
    """The shipped knowledge base (``data/sources``), compiled once per process."""
    return compile_knowledge(SOURCES_DIR)


def shipped_table_dir() -> Traversable:
    """The compact table shipped in the package (``data/rxnorm``)."""
    return files("ehr.modules.medication_safety").joinpath("data", "rxnorm")


@functools.cache
def load_resolver() -> RxNormTable:
    """The operator's imported table when configured and present, else the shipped table.

    Loaded once per process (``functools.cache``); later calls are free.
    """
    from ehr.core.config import get_settings  # settings are read once, on first use

    configured = get_settings().medication_safety.rxnorm_dir
    if configured is not None:
        if configured.joinpath(CONCEPTS_FILE).is_file():
            table = RxNormTable.from_directory(configured)
            _log.info("medication_safety.rxnorm.loaded", source="operator", concepts=len(table))
            return table
        _log.warning("medication_safety.rxnorm.operator_table_missing", fallback="shipped")
    table = RxNormTable.from_directory(shipped_table_dir())
    _log.info("medication_safety.rxnorm.loaded", source="shipped", concepts=len(table))
    return table


@functools.cache
def load_knowledge() -> LoadedKnowledge:
    """The shipped knowledge base and the RxNorm table (once per process)."""
    kb = load_knowledge_base()
    resolver = load_resolver()
    return LoadedKnowledge(kb=kb, resolver=resolver, compiled_at=dt.datetime.now(dt.UTC))
