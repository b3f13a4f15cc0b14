"""The shipped starter order sets: reviewable YAML files in ``data/``, each with its sources.

Each file is one set (key, title, description, version, sources) whose members carry their
order document (validated with the orders schema when loaded) and ``code_source``: where the
member's code was checked (a LOINC/RxNorm release, a published lab catalogue, a standard's
example). Installing copies them into a tenant's partition as PlanDefinitions
(``OrderSetService.install``); a tenant then edits its copy like any of its own sets.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.modules.order_sets.schemas import (
    MAX_MEMBERS,
    OrderSetKey,
    OrderSetMemberIn,
    Source,
)

__all__ = ["DATA_PACKAGE", "StarterMember", "StarterSet", "load_starter_sets"]

DATA_PACKAGE: Final = "ehr.modules.order_sets"
_DATA_DIR: Final = "data"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class StarterMember(OrderSetMemberIn):
    """A shipped member: the order, and where its code was verified."""

    code_source: _Text


class StarterSet(BaseModel):
    """One shipped set (one file of ``data/``)."""

    model_config = ConfigDict(extra="forbid")

    key: OrderSetKey
    title: _Text
    description: _Text | None = None
    status: Literal["active"] = "active"
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}$")] = Field(
        description="The set's business version (PlanDefinition.version) as shipped."
    )
    sources: list[Source] = Field(min_length=1, max_length=10)
    members: list[StarterMember] = Field(min_length=1, max_length=MAX_MEMBERS)


@functools.cache
def load_starter_sets() -> tuple[StarterSet, ...]:
    """Every shipped starter set, by key (validated: a broken file fails loudly, in tests)."""
    folder = resources.files(DATA_PACKAGE).joinpath(_DATA_DIR)
    sets = [
        StarterSet.model_validate(yaml.safe_load(item.read_text(encoding="utf-8")))
        for item in sorted(folder.iterdir(), key=lambda i: i.name)
        if item.name.endswith(".yaml")
    ]
    return tuple(sorted(sets, key=lambda s: s.key))
