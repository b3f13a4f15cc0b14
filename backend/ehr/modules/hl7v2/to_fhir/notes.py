"""NTE -> Annotation (IG NTE[Observation], NTE[ServiceRequest]); FT text of v2 as plain text."""

from __future__ import annotations

from collections.abc import Sequence

from ehr.modules.hl7v2.parsing import Repetition, Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.datatypes import practitioner_reference
from ehr.modules.hl7v2.to_fhir.fields import repetitions, text, value

__all__ = ["formatted_text", "note_annotations", "whole_text"]


def whole_text(rep: Repetition) -> str:
    """A repetition as the text it was sent as: an ST/TX/FT a sender did not escape comes
    split at ``^`` and ``&``; the parts are joined back."""
    joined = "^".join("&".join(parts) for parts in rep.components).rstrip("^&")
    return text(joined)


def formatted_text(reps: Sequence[Repetition]) -> str:
    """FT/TX repetitions as one text: one line per repetition, ``\\.br\\`` as a line break."""
    lines = [whole_text(rep).replace("\r\n", "\n").replace("\r", "\n") for rep in reps]
    return "\n".join(line for line in lines if line)


def note_annotations(notes: Sequence[Segment], assembly: Assembly) -> list[Resource]:
    """One Annotation per NTE with text (NTE-3), author NTE-5 and time NTE-6 when valued."""
    found: list[Resource] = []
    for nte in notes:
        note_text = formatted_text(repetitions(nte, 3))
        if not note_text:
            continue
        author = practitioner_reference(nte.first(5), assembly, "NTE-5")
        found.append(
            {
                "authorReference": author if author and "reference" in author else None,
                "authorString": author.get("display")
                if author and "reference" not in author
                else None,
                "time": assembly.date_time(value(nte, 6), "NTE-6", strict=False),
                "text": note_text,
            }
        )
    return found
