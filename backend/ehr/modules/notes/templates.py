"""The shipped note templates: their LOINC document type and their sections as a text skeleton.

Per-tenant templates are not stored yet; every tenant sees this set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["TEMPLATES", "NoteKind", "NoteTemplateDef", "skeleton"]

NoteKind = Literal["progress", "soap", "history-and-physical", "discharge-summary"]


@dataclass(frozen=True, slots=True)
class NoteTemplateDef:
    """One template: what kind of note it starts, its LOINC type and its sections."""

    kind: NoteKind
    title: str
    loinc_code: str
    loinc_display: str
    sections: tuple[str, ...]


TEMPLATES: Final[dict[str, NoteTemplateDef]] = {
    t.kind: t
    for t in (
        NoteTemplateDef(
            kind="progress",
            title="Progress note",
            loinc_code="11506-3",
            loinc_display="Progress note",
            sections=("Interval history", "Examination", "Assessment", "Plan"),
        ),
        NoteTemplateDef(
            kind="soap",
            title="SOAP note",
            loinc_code="11506-3",
            loinc_display="Progress note",
            sections=("Subjective", "Objective", "Assessment", "Plan"),
        ),
        NoteTemplateDef(
            kind="history-and-physical",
            title="History and physical",
            loinc_code="34117-2",
            loinc_display="History and physical note",
            sections=(
                "Chief complaint",
                "History of present illness",
                "Past medical history",
                "Medications",
                "Allergies",
                "Family history",
                "Social history",
                "Review of systems",
                "Physical examination",
                "Assessment",
                "Plan",
            ),
        ),
        NoteTemplateDef(
            kind="discharge-summary",
            title="Discharge summary",
            loinc_code="18842-5",
            loinc_display="Discharge summary",
            sections=(
                "Admission diagnosis",
                "Discharge diagnosis",
                "Hospital course",
                "Procedures",
                "Discharge medications",
                "Discharge condition",
                "Follow-up",
            ),
        ),
    )
}


def skeleton(template: NoteTemplateDef, content_type: str) -> str:
    """The template's sections as an empty text (markdown headings or plain headings)."""
    if content_type == "text/markdown":
        return "\n\n".join(f"## {section}\n" for section in template.sections)
    return "\n\n".join(f"{section.upper()}:\n" for section in template.sections)
