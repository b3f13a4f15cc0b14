"""The shipped note templates, the LOINC note types a tenant's own template may use, and the
skeleton (the sections as an empty text) a new note starts from.

Every tenant sees the shipped set; a tenant adds its own (table ``note_templates``,
:mod:`ehr.modules.notes.template_store`) under keys that are not shipped ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NOTE_TYPES", "TEMPLATES", "NoteTemplateDef", "skeleton"]


@dataclass(frozen=True, slots=True)
class NoteTemplateDef:
    """One template: the key a note is created from, its LOINC type, its sections, and whether
    its notes need a co-signature; ``shipped`` for the code's own, False for a tenant's."""

    kind: str
    title: str
    loinc_code: str
    loinc_display: str
    sections: tuple[str, ...]
    requires_cosign: bool = False
    shipped: bool = True


# The LOINC document types (clinical notes) a tenant's template may use: the US Core clinical
# note types and the common note kinds of a chart, with their LOINC display names.
NOTE_TYPES: Final[dict[str, str]] = {
    "11488-4": "Consult note",
    "11504-8": "Surgical operation note",
    "11506-3": "Progress note",
    "18761-7": "Transfer summary note",
    "18842-5": "Discharge summary",
    "28570-0": "Procedure note",
    "34109-9": "Note",
    "34111-5": "Emergency department note",
    "34117-2": "History and physical note",
    "34746-8": "Nurse note",
    "51847-2": "Evaluation and plan note",
    "57133-1": "Referral note",
}


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
