"""The HL7 v2-to-FHIR IG vocabulary ConceptMaps this conversion applies.

The maps are data (``modules/hl7v2/data/vocabulary.json``), transcribed from the IG's CSV
sheets (``mappings/codesystems/HL7 Concept Map_ <name> - Sheet1.csv``, HL7/v2-to-fhir; each
map's ``source`` names its sheet and v2 table), read once when this module is imported.

Each map is v2 code -> :class:`MappedCode` (FHIR code, display, system). A v2 code the IG leaves
unmapped is absent; callers decide the fallback (documented where they do). ``TABLE_CODES``: the
v2 codes of each HL7 table as the IG's sheets list them (their source column, mapped or not). A
code a sender puts under an HL7 table that is not one of these is the sender's own (see
datatypes).
"""

from __future__ import annotations

import json
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Final, NamedTuple


class MappedCode(NamedTuple):
    """One target of a ConceptMap: a FHIR code with its display and code system."""

    code: str
    display: str
    system: str


ConceptMap = MappingProxyType[str, MappedCode]


def _load() -> tuple[dict[str, ConceptMap], dict[str, frozenset[str]]]:
    document: dict[str, Any] = json.loads(
        files("ehr.modules.hl7v2").joinpath("data", "vocabulary.json").read_text("utf-8")
    )
    maps = {
        name: MappingProxyType(
            {code: MappedCode(*target) for code, target in entry["codes"].items()}
        )
        for name, entry in document["concept_maps"].items()
    }
    tables = {table: frozenset(codes) for table, codes in document["table_codes"].items()}
    return maps, tables


_MAPS, _TABLES = _load()

ADMINISTRATIVE_SEX: Final[ConceptMap] = _MAPS["ADMINISTRATIVE_SEX"]
NAME_TYPE: Final[ConceptMap] = _MAPS["NAME_TYPE"]
ADDRESS_USE: Final[ConceptMap] = _MAPS["ADDRESS_USE"]
ADDRESS_TYPE: Final[ConceptMap] = _MAPS["ADDRESS_TYPE"]
TELECOM_USE: Final[ConceptMap] = _MAPS["TELECOM_USE"]
TELECOM_EQUIPMENT: Final[ConceptMap] = _MAPS["TELECOM_EQUIPMENT"]
PATIENT_CLASS: Final[ConceptMap] = _MAPS["PATIENT_CLASS"]
PATIENT_CLASS_STATUS: Final[ConceptMap] = _MAPS["PATIENT_CLASS_STATUS"]
EVENT_ENCOUNTER_STATUS: Final[ConceptMap] = _MAPS["EVENT_ENCOUNTER_STATUS"]
IDENTIFIER_TYPE: Final[ConceptMap] = _MAPS["IDENTIFIER_TYPE"]
MARITAL_STATUS: Final[ConceptMap] = _MAPS["MARITAL_STATUS"]
RELATIONSHIP: Final[ConceptMap] = _MAPS["RELATIONSHIP"]
CONTACT_ROLE: Final[ConceptMap] = _MAPS["CONTACT_ROLE"]
OBSERVATION_STATUS: Final[ConceptMap] = _MAPS["OBSERVATION_STATUS"]
RESULT_STATUS: Final[ConceptMap] = _MAPS["RESULT_STATUS"]
ORDER_CONTROL_STATUS: Final[ConceptMap] = _MAPS["ORDER_CONTROL_STATUS"]
ORDER_STATUS: Final[ConceptMap] = _MAPS["ORDER_STATUS"]
INTERPRETATION: Final[ConceptMap] = _MAPS["INTERPRETATION"]
COMPLETION_STATUS: Final[ConceptMap] = _MAPS["COMPLETION_STATUS"]
FILLER_STATUS: Final[ConceptMap] = _MAPS["FILLER_STATUS"]
ALLERGY_TYPE: Final[ConceptMap] = _MAPS["ALLERGY_TYPE"]
ALLERGEN_CATEGORY: Final[ConceptMap] = _MAPS["ALLERGEN_CATEGORY"]
ALLERGY_CRITICALITY: Final[ConceptMap] = _MAPS["ALLERGY_CRITICALITY"]
REACTION_SEVERITY: Final[ConceptMap] = _MAPS["REACTION_SEVERITY"]
DIAGNOSIS_TYPE: Final[ConceptMap] = _MAPS["DIAGNOSIS_TYPE"]
YES_NO: Final[ConceptMap] = _MAPS["YES_NO"]
PRIORITY: Final[ConceptMap] = _MAPS["PRIORITY"]
ROUTE: Final[ConceptMap] = _MAPS["ROUTE"]
BODY_PART: Final[ConceptMap] = _MAPS["BODY_PART"]
SERVICE_SECTION: Final[ConceptMap] = _MAPS["SERVICE_SECTION"]
APPOINTMENT_TYPE: Final[ConceptMap] = _MAPS["APPOINTMENT_TYPE"]
APPOINTMENT_REASON: Final[ConceptMap] = _MAPS["APPOINTMENT_REASON"]
DOCUMENT_CONFIDENTIALITY: Final[ConceptMap] = _MAPS["DOCUMENT_CONFIDENTIALITY"]
TABLE_CODES: Final = MappingProxyType(_TABLES)
