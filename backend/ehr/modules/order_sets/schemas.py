"""Request and response documents of the order-sets API (our shapes, not the FHIR PlanDefinition).

A definition's member carries the very document ``POST`` of an order takes (``orders.OrderCreate``,
discriminated by ``kind``): what an order set holds is what a clinician could have ordered by
hand, validated by the same schema (ADR 0021).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehr.modules import orders

__all__ = [
    "MAX_MEMBERS",
    "DefinitionStatus",
    "InstalledSet",
    "InstantiatedOrder",
    "InstantiationRequest",
    "InstantiationResult",
    "MemberKey",
    "OrderSet",
    "OrderSetCreate",
    "OrderSetId",
    "OrderSetKey",
    "OrderSetList",
    "OrderSetMember",
    "OrderSetMemberIn",
    "OrderSetUpdate",
    "Source",
    "StarterInstallReport",
]

# Bound on the members of one set: one transaction carries them all (plus the RequestGroup).
MAX_MEMBERS: Final = 40

DefinitionStatus = Literal["draft", "active", "retired"]

_KEY_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
OrderSetKey = Annotated[str, StringConstraints(pattern=_KEY_PATTERN, max_length=63)]
MemberKey = Annotated[str, StringConstraints(pattern=_KEY_PATTERN, max_length=63)]
_Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
_Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=500)]

OrderSetId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9\-.]{1,64}$",
        max_length=64,
        description="The order set's (PlanDefinition's) FHIR id.",
    ),
]


class Source(BaseModel):
    """Where the set's content comes from (a guideline, a consensus statement): a citation."""

    model_config = ConfigDict(extra="forbid")

    citation: _Text = Field(description="The reference as a reader would cite it.")
    url: _Url | None = None


class OrderSetMemberIn(BaseModel):
    """One order of the set: a key (stable within the set), and the order document."""

    model_config = ConfigDict(extra="forbid")

    key: MemberKey = Field(description="Unique within the set; names the member on instantiate.")
    title: _Title | None = Field(default=None, description="Defaults to the order's display.")
    selected: bool = Field(
        default=True, description="Instantiated when the caller does not choose members."
    )
    order: orders.OrderCreate = Field(description="The order, as `POST` of an order takes it.")


class _OrderSetFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: _Title
    description: _Text | None = None
    status: Literal["draft", "active"] = Field(
        default="active", description="Only active sets can be instantiated; retire has a route."
    )
    members: list[OrderSetMemberIn] = Field(min_length=1, max_length=MAX_MEMBERS)
    sources: list[Source] = Field(default_factory=list, max_length=10)


class OrderSetCreate(_OrderSetFields):
    """A new definition of the caller's tenant."""

    key: OrderSetKey = Field(description="Unique in the tenant (409 order_set_key_taken).")


class OrderSetUpdate(_OrderSetFields):
    """The definition's new content (replaces title, members, sources). Needs `If-Match`."""


class OrderSetMember(BaseModel):
    """A member as stored."""

    key: str
    title: str
    selected: bool
    kind: str
    code: dict[str, Any] | None = Field(
        default=None, description="The order's code (system, code, display) as FHIR codes it."
    )
    order: dict[str, Any] = Field(description="The order document instantiate starts from.")


class OrderSet(BaseModel):
    """What the business API shows of an order-set PlanDefinition."""

    id: str
    version: str | None = Field(description="meta.versionId: send it back in If-Match.")
    key: str | None
    url: str | None = Field(description="The canonical URL instances point back to.")
    definition_version: str | None = Field(
        description="The business version (PlanDefinition.version), raised by each update."
    )
    title: str | None
    description: str | None = None
    status: str | None
    starter: bool = Field(description="Installed from a shipped starter set.")
    members: list[OrderSetMember]
    sources: list[Source]


class OrderSetList(BaseModel):
    """The tenant's order sets, by title."""

    items: list[OrderSet]
    complete: bool = Field(description="False when the list was cut at the read bound.")


class InstalledSet(BaseModel):
    """One starter set and what installing it did."""

    key: str
    id: str
    created: bool = Field(description="False when the tenant already had a set with this key.")


class StarterInstallReport(BaseModel):
    """The shipped starter sets in the caller's tenant after the install."""

    items: list[InstalledSet]


class InstantiationRequest(BaseModel):
    """Which members to order, for which encounter, and how they differ from the definition."""

    model_config = ConfigDict(extra="forbid")

    encounter_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$", max_length=64)] | None
    ) = Field(
        default=None,
        description="The patient's Encounter every member order belongs to (another's: 422).",
    )
    members: list[MemberKey] | None = Field(
        default=None,
        max_length=MAX_MEMBERS,
        description="The members to order (default: those the definition selects).",
    )
    overrides: dict[MemberKey, dict[str, Any]] = Field(
        default_factory=dict,
        max_length=MAX_MEMBERS,
        description=(
            "Per member, fields merged into its order document (objects merge, other values "
            "replace) and validated again as an order; `kind` cannot change."
        ),
    )


class InstantiatedOrder(BaseModel):
    """One member order created as a draft."""

    member: str
    kind: str
    resource_type: str
    id: str


class InstantiationResult(BaseModel):
    """The RequestGroup and its draft member orders, written in one transaction."""

    request_group_id: str
    order_set_id: str
    instantiates: str = Field(description="The PlanDefinition's canonical URL and version.")
    group_identifier: str = Field(description="requisition / groupIdentifier of every member.")
    orders: list[InstantiatedOrder]
