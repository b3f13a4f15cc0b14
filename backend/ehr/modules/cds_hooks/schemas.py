"""The CDS Hooks 2.0.1 objects, field for field (https://cds-hooks.hl7.org/2.0.1/).

Wire names are the spec's camelCase (``hookInstance``, ``selectionBehavior``); Python attributes
are snake_case with the spec name as alias. Requests accept extra members (the spec's
``extension`` and future additions) and keep them; responses are built from these models, so a
card we produce that breaks the spec (a summary of 140 characters, suggestions without
``selectionBehavior``, a delete without ``resourceId``...) fails here, not at the client.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    UrlConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ehr.core.intake import IsoDateTime

__all__ = [
    "SUMMARY_MAX_CHARS",
    "AcceptedSuggestion",
    "Action",
    "Card",
    "CdsRequest",
    "CdsResponse",
    "CdsService",
    "Coding",
    "Discovery",
    "FeedbackItem",
    "FeedbackRequest",
    "FhirAuthorization",
    "Indicator",
    "Link",
    "OverrideReason",
    "SelectionBehavior",
    "Source",
    "Suggestion",
]

# "summary: ... <140 characters" (spec §Card Attributes).
SUMMARY_MAX_CHARS: Final = 139

Indicator = Literal["info", "warning", "critical"]
SelectionBehavior = Literal["at-most-one", "any"]
ActionType = Literal["create", "update", "delete"]


class SpecModel(BaseModel):
    """camelCase on the wire, snake_case in Python; extra members kept (spec extensions)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=False
    )


# --------------------------------------------------------------------------- discovery


class CdsService(SpecModel):
    hook: str
    title: str | None = None
    description: str
    id: str
    # Key → FHIR query template with {{context.X}} / {{userPractitionerId}} ... tokens.
    prefetch: dict[str, str] | None = None
    usage_requirements: str | None = None


class Discovery(SpecModel):
    services: list[CdsService]


# --------------------------------------------------------------------------- request


class FhirAuthorization(BaseModel):
    """OAuth 2.0 access token the CDS client lends us for its ``fhirServer`` (never logged)."""

    model_config = ConfigDict(extra="allow")

    access_token: SecretStr = Field(max_length=8192)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str = Field(max_length=4096)
    subject: str = Field(max_length=1024)
    patient: str | None = Field(default=None, max_length=64)


# What one hook call may hold (a clinical workflow needs far less; an outsider controls these
# counts, and the work per call grows with them). Larger calls are refused with 400 before any
# work starts; responses are capped too.
MAX_DRAFT_ORDERS: Final = 100  # orders signed together (an order set) in one draftOrders Bundle
MAX_SELECTIONS: Final = 100  # order-select: the orders just selected
MAX_CONTEXT_MEMBERS: Final = 64
MAX_PREFETCH_KEYS: Final = 32
MAX_PREFETCH_ENTRIES: Final = 1000  # entries of one prefetched Bundle
MAX_CARDS: Final = 50  # cards in one response (the most severe first; the rest summarised)


class CdsRequest(SpecModel):
    hook: str = Field(min_length=1, max_length=128)
    # "A universally unique identifier (UUID) for this particular hook call."
    hook_instance: uuid.UUID
    fhir_server: Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)] | None = None
    fhir_authorization: FhirAuthorization | None = None
    context: dict[str, Any] = Field(max_length=MAX_CONTEXT_MEMBERS)
    # Key → resource, Bundle, OperationOutcome, or null ("no data"); absent keys were not sent.
    prefetch: dict[str, Any] | None = Field(default=None, max_length=MAX_PREFETCH_KEYS)

    @model_validator(mode="after")
    def _authorization_needs_server(self) -> CdsRequest:
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirAuthorization was sent without fhirServer")
        return self


# --------------------------------------------------------------------------- response


class Coding(SpecModel):
    code: str = Field(min_length=1, max_length=256)
    system: str = Field(min_length=1, max_length=1024)
    display: str | None = Field(default=None, max_length=1024)


class Source(SpecModel):
    label: str = Field(min_length=1)
    url: AnyHttpUrl | None = None
    icon: AnyHttpUrl | None = None
    topic: Coding | None = None


class Action(SpecModel):
    type: ActionType
    description: str | None = None
    resource: dict[str, Any] | None = None
    resource_id: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resource_id:
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(SpecModel):
    label: str = Field(min_length=1)
    uuid: str | None = None
    is_recommended: bool | None = None
    actions: list[Action] | None = None


class Link(SpecModel):
    label: str = Field(min_length=1)
    url: AnyHttpUrl
    type: Literal["absolute", "smart"]
    app_context: str | None = None
    autolaunchable: bool | None = None


class Card(SpecModel):
    uuid: str | None = None
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX_CHARS)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selection_behavior: SelectionBehavior | None = None
    override_reasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _spec_rules(self) -> Card:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        for reason in self.override_reasons or ():
            if not reason.display:
                raise ValueError("an overrideReasons coding needs a display")
        return self


class CdsResponse(SpecModel):
    cards: list[Card] = Field(default_factory=list)
    system_actions: list[Action] | None = None


# --------------------------------------------------------------------------- feedback


class AcceptedSuggestion(SpecModel):
    id: str = Field(min_length=1, max_length=128)


class OverrideReason(SpecModel):
    reason: Coding | None = None
    user_comment: str | None = Field(default=None, max_length=4000)


class FeedbackItem(SpecModel):
    card: uuid.UUID
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=20)
    override_reason: OverrideReason | None = None
    outcome_timestamp: IsoDateTime

    @field_validator("outcome_timestamp")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("outcomeTimestamp needs a time zone (ISO 8601 with Z or an offset)")
        return value

    @model_validator(mode="after")
    def _outcome_rules(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("acceptedSuggestions is required when the outcome is accepted")
        if self.outcome == "accepted" and self.override_reason is not None:
            raise ValueError("overrideReason is only allowed when the outcome is overridden")
        return self


class FeedbackRequest(SpecModel):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=500)
