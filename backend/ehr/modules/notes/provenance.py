"""The Provenance of every signature act on a note (pure builders; the service writes them in the
same FHIR transaction as the DocumentReference, so a note is never signed without its record).

One Provenance per act, ``target`` the DocumentReference by its plain reference (the new note
of an amendment or addendum by its transaction ``urn:uuid:``, which HAPI rewrites to the id it
assigns). Not versioned: HAPI strips ``/_history/<n>`` from stored references, and its
``auto-version-references-at-path`` extension is refused in these transactions (HAPI-1700,
tried); the version a signature wrote is the DocumentReference version whose
``meta.lastUpdated`` matches the Provenance's ``recorded`` in the note's history:

===================  ==========  ==============  ==============================================
act                  activity    agent type      signature type (urn:iso-astm:E1762-95:2013)
===================  ==========  ==============  ==============================================
sign                 UPDATE      attester        1.2.840.10065.1.12.1.1 Author's Signature
sign (an addendum)   UPDATE      attester        1.2.840.10065.1.12.1.15 Addendum Signature
co-sign              UPDATE      verifier        1.2.840.10065.1.12.1.5 Verification Signature
amend (new version)  CREATE      author          1.2.840.10065.1.12.1.16 Modification Signature
addendum written     CREATE      author          none: the addendum is a draft until signed
===================  ==========  ==============  ==============================================

Activities are v3-DataOperation codes, agent types provenance-participant-type codes; the
signature carries type, when and who only (no ``data``/``sigFormat``: the act is recorded, no
cryptographic signature is made).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Literal

from ehr.modules.notes.documents import Signer, instant, person
from ehr.modules.notes.schemas import NoteSignatureRecord

__all__ = [
    "DATA_OPERATION",
    "PARTICIPANT_TYPE",
    "SIGNATURE_TYPE",
    "SignatureAct",
    "note_provenance",
    "signature_record",
]

DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE: Final = "urn:iso-astm:E1762-95:2013"

SignatureAct = Literal["sign", "sign-addendum", "cosign", "amend", "addendum"]

# act -> (activity, agent type, signature (code, display) or None)
_ACTS: Final[dict[str, tuple[str, str, tuple[str, str] | None]]] = {
    "sign": ("UPDATE", "attester", ("1.2.840.10065.1.12.1.1", "Author's Signature")),
    "sign-addendum": ("UPDATE", "attester", ("1.2.840.10065.1.12.1.15", "Addendum Signature")),
    "cosign": ("UPDATE", "verifier", ("1.2.840.10065.1.12.1.5", "Verification Signature")),
    "amend": ("CREATE", "author", ("1.2.840.10065.1.12.1.16", "Modification Signature")),
    "addendum": ("CREATE", "author", None),
}


def note_provenance(
    act: SignatureAct,
    target: str,
    signer: Signer,
    now: dt.datetime,
    *,
    related: str | None = None,
) -> dict[str, Any]:
    """The Provenance of ``act`` by ``signer`` on the note at ``target`` (a reference).

    ``related`` is the note the act derives from: the replaced note of an amendment
    (entity role ``revision``) or the note an addendum appends to (role ``source``).
    """
    activity, agent_type, signature = _ACTS[act]
    when = instant(now)
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": when,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": activity}]},
        "agent": [
            {
                "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": agent_type}]},
                "who": signer.reference(),
            }
        ],
    }
    if signature is not None:
        code, display = signature
        provenance["signature"] = [
            {
                "type": [{"system": SIGNATURE_TYPE, "code": code, "display": display}],
                "when": when,
                "who": signer.reference(),
            }
        ]
    if related is not None:
        role = "revision" if act == "amend" else "source"
        provenance["entity"] = [{"role": role, "what": {"reference": related}}]
    return provenance


def _first_coding(value: object) -> Mapping[str, Any]:
    codings = value.get("coding") if isinstance(value, Mapping) else None
    first = codings[0] if isinstance(codings, list) and codings else None
    return first if isinstance(first, Mapping) else {}


def signature_record(provenance: Mapping[str, Any]) -> NoteSignatureRecord:
    """What the note's read answer shows of one of its Provenance records."""
    agents = provenance.get("agent") or []
    agent = agents[0] if isinstance(agents, list) and agents else {}
    signatures = provenance.get("signature") or []
    signature = signatures[0] if isinstance(signatures, list) and signatures else {}
    types = signature.get("type") if isinstance(signature, Mapping) else None
    sig_type = types[0] if isinstance(types, list) and types else {}
    recorded = provenance.get("recorded")
    return NoteSignatureRecord(
        activity=_first_coding(provenance.get("activity")).get("code"),
        role=_first_coding(agent.get("type") if isinstance(agent, Mapping) else None).get("code"),
        signature_type=sig_type.get("code") if isinstance(sig_type, Mapping) else None,
        signature_display=sig_type.get("display") if isinstance(sig_type, Mapping) else None,
        who=person(agent.get("who")) if isinstance(agent, Mapping) else None,
        recorded=recorded if isinstance(recorded, str) else None,
    )
