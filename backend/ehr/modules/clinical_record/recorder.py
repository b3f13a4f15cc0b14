"""Who recorded a chart entry: the user, as a FHIR Reference (principals carry no
Practitioner), and that reference read back for the business API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel

from ehr.platform.auth.principal import Principal

__all__ = ["USER_SYSTEM", "Recorder", "recorder_of", "recorder_reference", "user_of"]

USER_SYSTEM: Final = "urn:ehr:user"


class Recorder(BaseModel):
    """Who recorded (and asserted) the entry: a user of this service."""

    user_id: str | None = None
    display: str | None = None


def recorder_reference(principal: Principal) -> dict[str, Any]:
    """The principal as a FHIR Reference (identifier + display: users have no Practitioner)."""
    display = principal.username or f"{principal.kind} {principal.subject}"
    return {
        "identifier": {"system": USER_SYSTEM, "value": str(principal.subject)},
        "display": display,
    }


def user_of(reference: object) -> Recorder | None:
    """A Reference to a user (a recorder, a note's author or signer) as the API shows it: its
    identifier value and display (None when it is not a Reference)."""
    if not isinstance(reference, Mapping):
        return None
    ident = reference.get("identifier")
    value = ident.get("value") if isinstance(ident, Mapping) else None
    display = reference.get("display")
    return Recorder(
        user_id=value if isinstance(value, str) else None,
        display=display if isinstance(display, str) else None,
    )


def recorder_of(resource: Mapping[str, Any]) -> Recorder | None:
    """The entry's ``recorder`` as the API shows it (None when it has none)."""
    return user_of(resource.get("recorder"))
