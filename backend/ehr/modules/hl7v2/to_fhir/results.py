"""OBR -> DiagnosticReport, OBX -> Observation (IG segment maps OBR[DiagnosticReport],
ORC[DiagnosticReport], OBX[Observation], NTE[Observation]; vocabulary ResultStatus,
ObservationResultStatusCodesInterpretation, InterpretationCodes, DiagnosticServiceSectionID).

Keys:

* DiagnosticReport: the filler order number OBR-3 (else placer OBR-2, else ORC-3 / ORC-2).
* Observation: ``<system of the report's order number>|<order number>-<OBX-4 sub-id, else
  OBX-1 set id>-<OBX-3 code>``. A corrected result (OBX-11 ``C``) for the same order, sub-id
  and code therefore updates the Observation it corrects. Continuation lines — a TX/FT/ST OBX
  right after one of the same code and OBX-4 — are lines of that Observation's text; two other
  results with the same code and OBX-4 are told apart by the later one's set id.

Statuses: OBX-11 through the IG's ConceptMap; the codes it leaves unmapped are read as
I/O -> ``registered``, R/S -> ``preliminary``, B -> ``amended``, U/V/N -> ``final`` (N with
dataAbsentReason ``not-asked``), absent -> ``unknown``. OBR-25 through ResultStatus; ``A``
(some results available) -> ``partial``; ``Y``/``Z`` (no such order/patient) are refused, as
the IG asks; other unmapped or absent -> ``unknown``.

Values by OBX-2 (IG OBX-5 rows): NM -> valueQuantity (``<5`` style values keep the comparator;
text that is no number -> valueString), SN -> Quantity / Range / Ratio / string, ST/TX/FT ->
valueString (repetitions are lines), CWE/CE/CNE/CF/IS -> valueCodeableConcept, DT/DTM/TS ->
valueDateTime, TM -> valueTime, NR -> valueRange, DR -> valuePeriod; several repetitions of a
coded or numeric value -> one component each. ED and RP are not Observation values in R4: they
become the report's ``presentedForm`` attachments (the IG's R5 cross-version extension is not
used, as HAPI's validator does not know it). Units OBX-6 -> UCUM when marked or unambiguous.
Times: OBX-14, else OBR-7; both strict, as is OBR-7/8 of the report.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ehr.modules.hl7v2.parsing import Repetition, Segment
from ehr.modules.hl7v2.to_fhir.assembly import Assembly, Resource
from ehr.modules.hl7v2.to_fhir.conversion import ConversionError
from ehr.modules.hl7v2.to_fhir.datatypes import (
    codeable_concept,
    coding_of,
    identifier_from_ei,
    mapped,
    normalise_code,
    number,
    practitioner_reference,
    quantity,
)
from ehr.modules.hl7v2.to_fhir.fields import (
    component,
    component_text,
    location_of,
    repetitions,
    value,
)
from ehr.modules.hl7v2.to_fhir.notes import formatted_text, note_annotations, whole_text
from ehr.modules.hl7v2.to_fhir.orders import order_numbers, service_request
from ehr.modules.hl7v2.to_fhir.patient import PatientRef
from ehr.modules.hl7v2.to_fhir.vocabulary import (
    INTERPRETATION,
    OBSERVATION_STATUS,
    RESULT_STATUS,
    SERVICE_SECTION,
)

__all__ = ["ResultGroup", "attachment", "observation_status", "report_status"]

_DATA_ABSENT: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_OBSERVATION_STATUS_FALLBACK: Final[dict[str, str]] = {
    "I": "registered",
    "O": "registered",
    "R": "preliminary",
    "S": "preliminary",
    "B": "amended",
    "U": "final",
    "V": "final",
    "N": "final",
}
_COMPARATOR: Final = re.compile(r"^\s*(<=|>=|<|>)\s*([+-]?(\d+(\.\d*)?|\.\d+))\s*$")
_RANGE: Final = re.compile(
    r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:-|\u2013|to)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$"
)
_TEXT_TYPES: Final = frozenset({"ST", "TX", "FT"})
_CODED_TYPES: Final = frozenset({"CWE", "CE", "CNE", "CF", "IS", "ID"})
_MIME: Final[dict[str, str]] = {
    "PDF": "application/pdf",
    "RTF": "application/rtf",
    "HTML": "text/html",
    "XML": "application/xml",
    "TEXT": "text/plain",
    "PLAIN": "text/plain",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "TIF": "image/tiff",
    "BMP": "image/bmp",
    "DICOM": "application/dicom",
    "MSWORD": "application/msword",
    "OCTET-STREAM": "application/octet-stream",
}


def observation_status(raw: str) -> str:
    """Observation.status of OBX-11 (see the module docstring)."""
    target = mapped(raw, OBSERVATION_STATUS)
    if target is not None:
        return target.code
    return _OBSERVATION_STATUS_FALLBACK.get(raw.strip().upper(), "unknown")


def report_status(raw: str) -> str:
    """DiagnosticReport.status of OBR-25 (see the module docstring)."""
    code = raw.strip().upper()
    if code in {"Y", "Z"}:
        raise ConversionError(f"result status {code} (no such order or patient)", "OBR-25")
    target = mapped(code, RESULT_STATUS)
    if target is not None:
        return target.code
    return "partial" if code == "A" else "unknown"


def _content_type(kind: str, subtype: str) -> str:
    for candidate in (subtype, kind):
        if "/" in candidate:
            return candidate.strip().lower()
    found = _MIME.get(subtype.strip().upper())
    if found:
        return found
    if kind.strip().upper() in {"TEXT", "TX"}:
        return "text/plain"
    return "application/octet-stream"


def attachment(rep: Repetition, location: str) -> Resource | None:
    """ED -> Attachment (IG ED[Attachment]): contentType from ED.2/ED.3, data (ED.5) as Base64
    whatever ED.4 encoded it as (Base64 checked, Hex decoded, A(SCII) encoded). Content that
    does not decode raises: a document is not dropped silently."""
    kind, subtype, encoding = component(rep, 2), component(rep, 3), component(rep, 4).upper()
    data = component_text(rep, 5)
    if not data:
        return None
    if encoding == "BASE64":
        compact = "".join(data.split())
        try:
            base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise ConversionError("the Base64 content does not decode", location) from None
        encoded = compact
    elif encoding == "HEX":
        try:
            encoded = base64.b64encode(bytes.fromhex("".join(data.split()))).decode("ascii")
        except ValueError:
            raise ConversionError("the Hex content does not decode", location) from None
    elif encoding in {"A", ""}:
        encoded = base64.b64encode(whole_text(rep).split("^", 4)[-1].encode("utf-8")).decode(
            "ascii"
        )
    else:
        raise ConversionError(f"encoding {encoding[:10]} is not supported", location)
    return {"contentType": _content_type(kind, subtype), "data": encoded}


def _reference_pointer(rep: Repetition) -> Resource | None:
    pointer = component_text(rep, 1)
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", pointer):
        return None
    return {"url": pointer, "contentType": _content_type(component(rep, 3), component(rep, 4))}


def _numeric(raw: str, unit: Repetition | None, assembly: Assembly) -> Resource | None:
    amount = number(raw)
    if amount is not None:
        return {"valueQuantity": quantity(amount, unit, assembly)}
    compared = _COMPARATOR.match(raw)
    if compared:
        amount = number(compared.group(2))
        if amount is not None:
            return {
                "valueQuantity": {
                    **quantity(amount, unit, assembly),
                    "comparator": compared.group(1),
                }
            }
    return {"valueString": raw} if raw else None


def _structured_numeric(
    rep: Repetition, unit: Repetition | None, assembly: Assembly
) -> Resource | None:
    comparator, first, separator, second = (component(rep, n) for n in (1, 2, 3, 4))
    as_text = " ".join(part for part in (comparator, first, separator, second) if part)
    if comparator == "<>" or separator == "+":
        return {"valueString": as_text} if as_text else None
    low, high = number(first), number(second)
    if separator in {":", "/"} and low is not None and high is not None:
        return {
            "valueRatio": {
                "numerator": quantity(low, unit, assembly),
                "denominator": quantity(high, unit, assembly),
            }
        }
    if separator == "-" and low is not None and high is not None:
        return {
            "valueRange": {
                "low": quantity(low, unit, assembly),
                "high": quantity(high, unit, assembly),
            }
        }
    if not separator and low is not None:
        result = quantity(low, unit, assembly)
        if comparator in {"<", ">", "<=", ">="}:
            result["comparator"] = comparator
        return {"valueQuantity": result}
    return {"valueString": as_text} if as_text else None


def _time(raw: str, location: str) -> str:
    match = re.match(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$", raw)
    if (
        not match
        or int(match.group(1)) > 23
        or int(match.group(2) or 0) > 59
        or int(match.group(3) or 0) > 59
    ):
        raise ConversionError("not a valid HL7 v2 time", location)
    return f"{match.group(1)}:{match.group(2) or '00'}:{match.group(3) or '00'}"


def _value_of(
    kind: str, rep: Repetition, unit: Repetition | None, assembly: Assembly, location: str
) -> Resource | None:
    if kind == "NM":
        return _numeric(whole_text(rep), unit, assembly)
    if kind == "SN":
        return _structured_numeric(rep, unit, assembly)
    if kind in _CODED_TYPES:
        concept = codeable_concept(rep, assembly)
        return {"valueCodeableConcept": concept} if concept else None
    if kind in {"DT", "DTM", "TS"}:
        return {"valueDateTime": assembly.date_time(component(rep, 1), location)}
    if kind == "TM":
        return {"valueTime": _time(component(rep, 1), location)}
    if kind == "NR":
        low, high = number(component(rep, 1)), number(component(rep, 2))
        return {
            "valueRange": {
                "low": quantity(low, unit, assembly) if low is not None else None,
                "high": quantity(high, unit, assembly) if high is not None else None,
            }
        }
    if kind == "DR":
        return {
            "valuePeriod": {
                "start": assembly.date_time(component(rep, 1, 1), location),
                "end": assembly.date_time(component(rep, 2, 1), location),
            }
        }
    raw = whole_text(rep)
    return {"valueString": raw} if raw else None


def _interpretations(obx: Segment, assembly: Assembly) -> list[Resource | None]:
    found: list[Resource | None] = []
    for rep in repetitions(obx, 8):
        target = mapped(component(rep, 1), INTERPRETATION)
        if target is not None:
            found.append({"coding": [coding_of(target)], "text": component_text(rep, 2)})
        else:
            found.append(codeable_concept(rep, assembly, table="0078"))
    return found


def _reference_range(obx: Segment, kind: str, assembly: Assembly) -> list[Resource]:
    raw = " ".join(whole_text(rep) for rep in repetitions(obx, 7))
    if not raw:
        return []
    reference: Resource = {"text": raw}
    if kind in {"NM", "SN"}:
        unit = obx.first(6)
        bounds = _RANGE.match(raw)
        low: int | float | None
        high: int | float | None
        if bounds:
            low, high = number(bounds.group(1)), number(bounds.group(2))
        else:
            compared = _COMPARATOR.match(raw)
            low = high = None
            if compared:
                limit = number(compared.group(2))
                if compared.group(1).startswith("<"):
                    high = limit
                else:
                    low = limit
        if low is not None:
            reference["low"] = quantity(low, unit, assembly)
        if high is not None:
            reference["high"] = quantity(high, unit, assembly)
    return [reference]


@dataclass
class ResultGroup:
    """One ORDER_OBSERVATION group of an ORU: its ORC/OBR, and what has been written for it."""

    orc: Segment | None
    obr: Segment
    patient_ref: PatientRef
    encounter: str | None
    assembly: Assembly
    notes: list[Segment] = field(default_factory=list)
    service_request: str = ""
    report: str = ""
    key_system: str = ""
    key_value: str = ""
    _report_resource: Resource = field(default_factory=dict)
    # The text Observation the previous OBX wrote: (OBX-3 code key, OBX-4, its placeholder).
    _text_run: tuple[str, str, str] | None = None

    def open(self) -> None:
        """Write the order (a conditional create) and the report; called at the OBR."""
        obr, assembly = self.obr, self.assembly
        numbers = order_numbers(self.orc, obr, assembly, obr_first=True)
        key = numbers.filler or numbers.placer
        if key is None:
            raise ConversionError("no filler or placer order number", "OBR-3")
        self.key_system, self.key_value = str(key["system"]), str(key["value"])
        self.service_request = service_request(
            self.orc, obr, (), self.patient_ref, self.encounter, assembly, owner=False
        )
        code = codeable_concept(obr.first(4), assembly)
        if code is None:
            raise ConversionError("the report has no code", "OBR-4")
        start = assembly.date_time(value(obr, 7), "OBR-7")
        end = assembly.date_time(value(obr, 8), "OBR-8")
        category = mapped(value(obr, 24), SERVICE_SECTION)
        self._report_resource = {
            "identifier": [numbers.placer, numbers.filler],
            "basedOn": [{"reference": self.service_request}],
            "status": report_status(value(obr, 25)),
            "category": [{"coding": [coding_of(category)]}] if category else [],
            "code": code,
            "subject": self.patient_ref.reference,
            "encounter": {"reference": self.encounter} if self.encounter else None,
            "effectiveDateTime": start if not end else None,
            "effectivePeriod": {"start": start, "end": end} if end else None,
            "issued": assembly.instant(value(obr, 22), "OBR-22"),
            "result": [],
            "presentedForm": [],
        }
        self.report = assembly.put(
            "DiagnosticReport",
            {"system": self.key_system, "value": self.key_value},
            self._report_resource,
            location="OBR-3" if numbers.filler else "OBR-2",
        )

    def add_notes(self, notes: Sequence[Segment]) -> None:
        """OBR-level NTEs go to the order (IG NTE[ServiceRequest]) when this message creates
        it; R4's DiagnosticReport has no note."""
        target = self.assembly.resource_of(self.service_request)
        if target is not None:
            target.setdefault("note", []).extend(note_annotations(notes, self.assembly))

    def observation(self, obx: Segment, notes: Sequence[Segment]) -> str | None:
        """Write one OBX (with its NTEs) as an Observation of this report; ED/RP content goes
        to the report's presentedForm instead. Returns the Observation's placeholder."""
        assembly = self.assembly
        kind = value(obx, 2).upper()
        values = repetitions(obx, 5)
        if kind in {"ED", "RP"}:
            self._text_run = None
            code_rep = obx.first(3)
            for rep in values:
                form = attachment(rep, "OBX-5") if kind == "ED" else _reference_pointer(rep)
                if form is not None:
                    form["title"] = component_text(code_rep, 2) if code_rep else None
                    self._report_resource["presentedForm"].append(form)
            return None
        code_rep = obx.first(3)
        code = codeable_concept(code_rep, assembly)
        code_key = (
            normalise_code(component_text(code_rep, 1) or component_text(code_rep, 2))
            if code_rep
            else ""
        )
        if code is None or not code_key:
            raise ConversionError("the observation has no code", "OBX-3")
        if kind in _TEXT_TYPES:
            continued = self._continue_text(obx, code_key, values, notes)
            if continued is not None:
                return continued
        sub_id = value(obx, 4) or value(obx, 1) or "1"
        key_value = f"{self.key_value}-{sub_id}-{code_key}"
        if value(obx, 4) and assembly.has_key("Observation", self.key_system, key_value):
            # Two results with the same code and sub-id (feeds that send OBX-4 ``1`` on every
            # OBX) that are not one text: both kept, the later one keyed by its set id too
            # (deterministic, so a resend updates it). The same set id as well is refused.
            key_value = f"{key_value}-{value(obx, 1)}"
        unit = obx.first(6)
        status_code = value(obx, 11)
        status = observation_status(status_code)
        resource: Resource = {
            "identifier": [
                identifier
                for rep in repetitions(obx, 21)
                if (identifier := identifier_from_ei(rep, assembly, "OBX-21", type_code="FILL"))
                is not None
            ],
            "basedOn": [{"reference": self.service_request}],
            "status": status,
            "code": code,
            "subject": self.patient_ref.reference,
            "encounter": {"reference": self.encounter} if self.encounter else None,
            "effectiveDateTime": assembly.date_time(value(obx, 14), "OBX-14")
            or assembly.date_time(value(self.obr, 7), "OBR-7"),
            "issued": assembly.instant(value(self.obr, 22), "OBR-22"),
            "performer": [
                reference
                for rep in repetitions(obx, 16)
                if (reference := practitioner_reference(rep, assembly, "OBX-16")) is not None
            ],
            "interpretation": _interpretations(obx, assembly),
            "note": note_annotations(notes, assembly),
            "method": codeable_concept(obx.first(17), assembly),
            "bodySite": codeable_concept(obx.first(20), assembly),
            "referenceRange": _reference_range(obx, kind, assembly),
        }
        if kind in _TEXT_TYPES:
            text = formatted_text(values)
            if text:
                resource["valueString"] = text
        elif len(values) == 1:
            resource.update(_value_of(kind, values[0], unit, assembly, "OBX-5") or {})
        elif values:
            resource["component"] = [
                {"code": code, **(_value_of(kind, rep, unit, assembly, "OBX-5") or {})}
                for rep in values
            ]
        if not any(key.startswith("value") for key in resource) and not values:
            absent = {"N": "not-asked", "X": "error"}.get(status_code.upper())
            if absent:
                resource["dataAbsentReason"] = {
                    "coding": [{"system": _DATA_ABSENT, "code": absent}]
                }
        full_url = assembly.put(
            "Observation",
            {"system": self.key_system, "value": key_value},
            resource,
            location=location_of(obx, 4 if value(obx, 4) else 1),
        )
        self._report_resource["result"].append({"reference": full_url})
        self._text_run = (code_key, value(obx, 4), full_url) if kind in _TEXT_TYPES else None
        return full_url

    def _continue_text(
        self, obx: Segment, code_key: str, values: Sequence[Repetition], notes: Sequence[Segment]
    ) -> str | None:
        """Continuation lines: a text OBX right after a text OBX of the same code (OBX-3) and
        sub-id (OBX-4, both possibly empty) is the next line of the same result, as report
        feeds send a narrative (``OBX|1|TX|RPT|1|line one``, ``OBX|2|TX|RPT|1|line two``…).
        Its text (a blank line kept as such) and notes go to the Observation the first line
        wrote; returns that Observation's placeholder, or None when this OBX starts a result."""
        run = self._text_run
        if run is None or run[0] != code_key or run[1] != value(obx, 4):
            return None
        target = self.assembly.resource_of(run[2])
        if target is None:
            return None
        line = formatted_text(values)
        target["valueString"] = f"{target.get('valueString') or ''}\n{line}"
        if notes:
            target.setdefault("note", []).extend(note_annotations(notes, self.assembly))
        return run[2]
