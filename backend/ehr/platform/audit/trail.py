"""What one request accessed: the :class:`AuditTrail` a handler receives through ``PhiAudit``.

Ids and codes only, never PHI (no names, birth dates, note text). The recorder
(:mod:`ehr.platform.audit.recorder`) fills in who and from where, and writes one record per note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "BREAK_GLASS_PURPOSE",
    "DEFAULT_PURPOSE_OF_USE",
    "PURPOSE_OF_USE_CODES",
    "SYSTEM_TENANT",
    "AccessNote",
    "ActorType",
    "AuditTrail",
    "Outcome",
]

# HL7 v3 ActReason (PurposeOfUse) codes a caller may state in ``X-Purpose-Of-Use``.
# http://terminology.hl7.org/CodeSystem/v3-ActReason
PURPOSE_OF_USE_CODES: Final = frozenset(
    {
        "TREAT",  # treatment
        "ETREAT",  # emergency treatment (break-glass)
        "HPAYMT",  # healthcare payment
        "HOPERAT",  # healthcare operations
        "PATRQT",  # patient requested
        "PUBHLTH",  # public health
        "HRESCH",  # healthcare research
        "HSYSADMIN",  # system administration
    }
)
DEFAULT_PURPOSE_OF_USE: Final = "TREAT"
BREAK_GLASS_PURPOSE: Final = "ETREAT"
# The tenant of events outside any tenant (e.g. a login for an unknown tenant).
SYSTEM_TENANT: Final = "_system"

Outcome = Literal["success", "failure", "denied"]
ActorType = Literal["user", "api_key", "cds_client", "smart_client", "system"]


@dataclass(slots=True)
class AccessNote:
    """One access the handler made (one audit record)."""

    action: str
    resource_type: str | None = None
    resource_id: str | None = None
    patient_id: str | None = None
    details: dict[str, Any] | None = None
    # Emergency access for this note only (the trail-wide flag covers every note).
    break_glass: bool = False
    break_glass_reason: str | None = None

    def add_details(self, **values: Any) -> None:
        """Add what the handler learnt after noting the access (e.g. how many cards it returned).

        The one way to change a note: :meth:`AuditTrail.access` keeps a copy of the details it
        was given, so changing that dict afterwards changes nothing.
        """
        self.details = {**(self.details or {}), **values}


@dataclass(slots=True)
class AuditTrail:
    """What the current request accessed (ids and codes only, never PHI), and in whose name.

    The recorder sets the actor and request facts; handlers only call :meth:`access` (and
    :meth:`assert_break_glass` when the caller invoked emergency access).
    """

    notes: list[AccessNote] = field(default_factory=list)
    tenant: str = SYSTEM_TENANT
    actor_type: ActorType = "system"
    actor_id: str | None = None
    actor_roles: tuple[str, ...] = ()
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    purpose_of_use: str = DEFAULT_PURPOSE_OF_USE
    break_glass: bool = False
    break_glass_reason: str | None = None

    def access(
        self,
        action: str,
        *,
        resource_type: str | None = None,
        resource_id: str | None = None,
        patient_id: str | None = None,
        details: dict[str, Any] | None = None,
        break_glass: bool = False,
        break_glass_reason: str | None = None,
    ) -> AccessNote:
        """Note one access (e.g. ``"patient:read"``); written when the handler finishes.

        Returns the note: facts known only later go in with :meth:`AccessNote.add_details`.

        ``break_glass``/``break_glass_reason`` flag this access as emergency access (also
        accepted as ``details["break_glass"]``/``details["break_glass_reason"]``, which the
        recorder moves into the record's columns); its purpose of use is then ``ETREAT``.
        """
        note = AccessNote(
            action,
            resource_type,
            resource_id,
            patient_id,
            dict(details) if details is not None else None,
            break_glass,
            break_glass_reason,
        )
        self.notes.append(note)
        return note

    def assert_break_glass(self, reason: str) -> None:
        """Flag this request's accesses as emergency (break-glass) access, with the reason.

        The caller's permission to break the glass is checked by the route, not here.
        """
        self.break_glass = True
        self.break_glass_reason = reason
        self.purpose_of_use = BREAK_GLASS_PURPOSE
