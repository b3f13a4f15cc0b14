"""Care gaps: the immunizations, screenings and monitoring a patient is due for, and results out
of range, read from the patient's chart against a reviewable knowledge file
(``data/care_gaps.yaml``).

:func:`find_reminders` answers :class:`Reminder` objects (codes, dates, values and the guideline;
never the record's free text). Rendering them (CDS Hooks cards) belongs to the caller.
"""

from ehr.modules.care_gaps.codes import CODE_SYSTEM_URIS
from ehr.modules.care_gaps.knowledge import (
    OBSERVATION_CODES,
    CareGapKnowledge,
    Citation,
    SuggestedOrder,
    load_care_gap_knowledge,
    parse_care_gap_knowledge,
)
from ehr.modules.care_gaps.schemas import CareGapChart, Reminder
from ehr.modules.care_gaps.service import find_reminders

__all__ = [
    "CODE_SYSTEM_URIS",
    "OBSERVATION_CODES",
    "CareGapChart",
    "CareGapKnowledge",
    "Citation",
    "Reminder",
    "SuggestedOrder",
    "find_reminders",
    "load_care_gap_knowledge",
    "parse_care_gap_knowledge",
]
