# ruff: noqa: E501, RUF001  -- transcribed IG text (long displays, typographic dashes) kept verbatim
"""The HL7 v2-to-FHIR IG vocabulary ConceptMaps this conversion applies, transcribed from the
IG's CSV sheets (``mappings/codesystems/HL7 Concept Map_ <name> - Sheet1.csv``, HL7/v2-to-fhir).

Each map is v2 code -> :class:`MappedCode` (FHIR code, display, system). A v2 code the IG leaves
unmapped is absent; callers decide the fallback (documented where they do).

Generated from the CSVs; regenerate rather than edit by hand.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class MappedCode(NamedTuple):
    """One target of a ConceptMap: a FHIR code with its display and code system."""

    code: str
    display: str
    system: str


ConceptMap = dict[str, MappedCode]

# AdministrativeSex_-_Sheet1.csv (v2 table 0001)
ADMINISTRATIVE_SEX: Final[ConceptMap] = {
    "F": MappedCode("female", "Female", "http://hl7.org/fhir/administrative-gender"),
    "M": MappedCode("male", "Male", "http://hl7.org/fhir/administrative-gender"),
    "O": MappedCode("other", "Other", "http://hl7.org/fhir/administrative-gender"),
    "U": MappedCode("unknown", "Unknown", "http://hl7.org/fhir/administrative-gender"),
    "A": MappedCode("other", "Other", "http://hl7.org/fhir/administrative-gender"),
    "N": MappedCode("other", "Other", "http://hl7.org/fhir/administrative-gender"),
}

# NameType_-_Sheet1.csv (v2 table 0200)
NAME_TYPE: Final[ConceptMap] = {
    "BAD": MappedCode("old", "Old", "http://hl7.org/fhir/name-use"),
    "D": MappedCode("usual", "Usual", "http://hl7.org/fhir/name-use"),
    "L": MappedCode("official", "Official", "http://hl7.org/fhir/name-use"),
    "M": MappedCode("maiden", "Name changed for Marriage", "http://hl7.org/fhir/name-use"),
    "MSK": MappedCode("anonymous", "Anonymous", "http://hl7.org/fhir/name-use"),
    "N": MappedCode("nickname", "Nickname", "http://hl7.org/fhir/name-use"),
    "NAV": MappedCode("temp", "temp", "http://hl7.org/fhir/name-use"),
    "R": MappedCode("official", "Official", "http://hl7.org/fhir/name-use"),
    "TEMP": MappedCode("temp", "Temp", "http://hl7.org/fhir/name-use"),
}

# AddressType_Use__-_Sheet1.csv (v2 table 0190)
ADDRESS_USE: Final[ConceptMap] = {
    "BA": MappedCode("old", "Old / Incorrect", "http://hl7.org/fhir/address-use"),
    "BI": MappedCode("billing", "Billing", "http://hl7.org/fhir/address-use"),
    "C": MappedCode("temp", "Temporary", "http://hl7.org/fhir/address-use"),
    "B": MappedCode("work", "Work", "http://hl7.org/fhir/address-use"),
    "H": MappedCode("home", "Home", "http://hl7.org/fhir/address-use"),
    "O": MappedCode("work", "Work", "http://hl7.org/fhir/address-use"),
}

# AddressType_Type__-_Sheet1.csv (v2 table 0190)
ADDRESS_TYPE: Final[ConceptMap] = {
    "M": MappedCode("postal", "Postal", "http://hl7.org/fhir/address-type"),
    "SH": MappedCode("postal", "Postal", "http://hl7.org/fhir/address-type"),
}

# TelecommunicationUseCode_-_Sheet1.csv (v2 table 0201)
TELECOM_USE: Final[ConceptMap] = {
    "PRN": MappedCode("home", "Home", "http://hl7.org/fhir/contact-point-use"),
    "WPN": MappedCode("work", "Work", "http://hl7.org/fhir/contact-point-use"),
    "PRS": MappedCode("mobile", "Mobile", "http://hl7.org/fhir/contact-point-use"),
}

# TelecommunicationEquipmentType_-_Sheet1.csv (v2 table 0202)
TELECOM_EQUIPMENT: Final[ConceptMap] = {
    "PH": MappedCode("phone", "Phone", "http://hl7.org/fhir/contact-point-system"),
    "FX": MappedCode("fax", "Fax", "http://hl7.org/fhir/contact-point-system"),
    "MD": MappedCode("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "CP": MappedCode("mobile", "Mobile", "http://hl7.org/fhir/contact-point-use"),
    "SAT": MappedCode("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "BP": MappedCode("pager", "Pager", "http://hl7.org/fhir/contact-point-system"),
    "Internet": MappedCode("email", "email", "http://hl7.org/fhir/contact-point-system"),
    "X.400": MappedCode("email", "email", "http://hl7.org/fhir/contact-point-system"),
    "TDD": MappedCode("other", "Other", "http://hl7.org/fhir/contact-point-system"),
    "TTY": MappedCode("other", "Other", "http://hl7.org/fhir/contact-point-system"),
}

# PatientClass_EncounterClass__-_Sheet1.csv (v2 table 0004)
PATIENT_CLASS: Final[ConceptMap] = {
    "E": MappedCode("EMER", "emergency", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "I": MappedCode(
        "IMP", "inpatient encounter", "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    ),
    "O": MappedCode("AMB", "ambulatory", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "P": MappedCode("PRENC", "pre-admission", "http://terminology.hl7.org/CodeSystem/v3-ActCode"),
    "R": MappedCode("R", "Recurring patient", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "B": MappedCode("B", "Obstetrics", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "C": MappedCode("C", "Commercial Account", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "N": MappedCode("N", "Not Applicable", "http://terminology.hl7.org/CodeSystem/v2-0004"),
    "U": MappedCode("U", "Unknown", "http://terminology.hl7.org/CodeSystem/v2-0004"),
}

# PatientClass_EncounterStatus__-_Sheet1.csv (v2 table 0004)
PATIENT_CLASS_STATUS: Final[ConceptMap] = {
    "E": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "I": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "O": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "P": MappedCode("planned", "", "http://hl7.org/fhir/encounter-status"),
    "R": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "B": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "C": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "N": MappedCode("in-progress", "", "http://hl7.org/fhir/encounter-status"),
    "U": MappedCode("unknown", "", "http://hl7.org/fhir/encounter-status"),
}

# Event_EncounterStatus__-_Sheet1.csv (v2 table 0003)
EVENT_ENCOUNTER_STATUS: Final[ConceptMap] = {
    "A01": MappedCode("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
    "A02": MappedCode("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
    "A03": MappedCode("finished", "Finished", "http://hl7.org/fhir/encounter-status"),
    "A04": MappedCode("planned", "Planned", "http://hl7.org/fhir/encounter-status"),
    "A05": MappedCode("planned", "Planned", "http://hl7.org/fhir/encounter-status"),
    "A08": MappedCode("unknown", "Unknown", "http://hl7.org/fhir/encounter-status"),
    "A11": MappedCode("cancelled", "Cancelled", "http://hl7.org/fhir/encounter-status"),
    "A13": MappedCode("in-progress", "In Progress", "http://hl7.org/fhir/encounter-status"),
}

# IdentifierType_-_Sheet1.csv (v2 table 0203)
IDENTIFIER_TYPE: Final[ConceptMap] = {
    "ACSN": MappedCode("ACSN", "Accession ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "AM": MappedCode("AM", "American Express", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "AMA": MappedCode(
        "AMA",
        "American Medical Association Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "AN": MappedCode("AN", "Account number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ANON": MappedCode(
        "ANON", "Anonymous identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "ANC": MappedCode(
        "ANC", "Account number Creditor", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "AND": MappedCode(
        "AND", "Account number debitor", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "ANT": MappedCode(
        "ANT", "Temporary Account Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "APRN": MappedCode(
        "APRN",
        "Advanced Practice Registered Nurse number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "ASID": MappedCode(
        "ASID", "Ancestor Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "BA": MappedCode("BA", "Bank Account Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BC": MappedCode("BC", "Bank Card Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BCT": MappedCode("BCT", "Birth Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "BR": MappedCode(
        "BR", "Birth registry number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "BRN": MappedCode(
        "BRN", "Breed Registry Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "BSNR": MappedCode(
        "BSNR", "Primary physician office number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "CC": MappedCode("CC", "Cost Center number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "CONM": MappedCode(
        "CONM", "Change of Name Document", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "CZ": MappedCode("CZ", "Citizenship Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "CY": MappedCode("CY", "County number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DDS": MappedCode(
        "DDS", "Dentist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "DEA": MappedCode(
        "DEA",
        "Drug Enforcement Administration registration number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "DI": MappedCode("DI", "Diner’s Club card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DFN": MappedCode(
        "DFN",
        "Drug Furnishing or prescriptive authority Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "DL": MappedCode(
        "DL", "Driver’s license number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "DN": MappedCode("DN", "Doctor number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DO": MappedCode(
        "DO", "Osteopathic License number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "DP": MappedCode("DP", "Diplomatic Passport", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "DPM": MappedCode(
        "DPM", "Podiatrist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "DR": MappedCode(
        "DR", "Donor Registration Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "DS": MappedCode("DS", "Discover Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "EI": MappedCode("EI", "Employee number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "EN": MappedCode("EN", "Employer number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "ESN": MappedCode(
        "ESN", "Staff Enterprise Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "FI": MappedCode("FI", "Facility ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "GI": MappedCode(
        "GI", "Guarantor internal identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "GL": MappedCode(
        "GL", "General ledger number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "GN": MappedCode(
        "GN", "Guarantor external identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "HC": MappedCode("HC", "Health Card Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "JHN": MappedCode(
        "JHN",
        "Jurisdictional health number (Canada)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "IND": MappedCode(
        "IND", "Indigenous/Aboriginal", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "LACSN": MappedCode(
        "LACSN", "Laboratory Accession ID", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "LANR": MappedCode(
        "LANR", "Lifelong physician number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "LI": MappedCode(
        "LI", "Labor and industries number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "LN": MappedCode("LN", "License number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "LR": MappedCode("LR", "Local Registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MA": MappedCode(
        "MA", "Patient Medicaid number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MB": MappedCode("MB", "Member Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MC": MappedCode(
        "MC", "Patient’s Medicare number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MCD": MappedCode(
        "MCD", "Practitioner Medicaid number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MCN": MappedCode("MCN", "Microchip Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MCR": MappedCode(
        "MCR", "Practitioner Medicare number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MCT": MappedCode(
        "MCT", "Marriage Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MD": MappedCode(
        "MD", "Medical License number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MI": MappedCode("MI", "Military ID number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "MR": MappedCode(
        "MR", "Medical record number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MRT": MappedCode(
        "MRT", "Temporary Medical Record Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "MS": MappedCode("MS", "MasterCard", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "NBSNR": MappedCode(
        "NBSNR",
        "Secondary physician office number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NCT": MappedCode(
        "NCT", "Naturalization Certificate", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "NE": MappedCode(
        "NE", "National employer identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "NH": MappedCode(
        "NH", "National Health Plan Identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "NI": MappedCode(
        "NI",
        "National unique individual identifier",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NII": MappedCode(
        "NII",
        "National Insurance Organization Identifier",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NIIP": MappedCode(
        "NIIP",
        "National Insurance Payor Identifier (Payor)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NNxxx": MappedCode(
        "NNxxx",
        "National Person Identifier where the xxx is the ISO table 3166 3-character (alphabetic) country code",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "NP": MappedCode(
        "NP", "Nurse practitioner number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "NPI": MappedCode(
        "NPI", "National provider identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "OD": MappedCode(
        "OD", "Optometrist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PA": MappedCode(
        "PA", "Physician Assistant number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PC": MappedCode("PC", "Parole Card", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PCN": MappedCode(
        "PCN",
        "Penitentiary/correctional institution Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PE": MappedCode(
        "PE", "Living Subject Enterprise Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PEN": MappedCode("PEN", "Pension Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PI": MappedCode(
        "PI", "Patient internal identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PN": MappedCode("PN", "Person number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PNT": MappedCode(
        "PNT", "Temporary Living Subject Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PPIN": MappedCode(
        "PPIN",
        "Medicare/CMS Performing Provider Identification Number",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "PPN": MappedCode("PPN", "Passport number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PRC": MappedCode(
        "PRC", "Permanent Resident Card Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "PRN": MappedCode("PRN", "Provider number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "PT": MappedCode(
        "PT", "Patient external identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "QA": MappedCode("QA", "QA number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RI": MappedCode("RI", "Resource identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "RPH": MappedCode(
        "RPH", "Pharmacist license number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "RN": MappedCode(
        "RN", "Registered Nurse Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "RR": MappedCode(
        "RR", "Railroad Retirement number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "RRI": MappedCode(
        "RRI", "Regional registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "RRP": MappedCode(
        "RRP", "Railroad Retirement Provider", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "SID": MappedCode("SID", "Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SL": MappedCode("SL", "State license", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SN": MappedCode("SN", "Subscriber Number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SP": MappedCode("SP", "Study Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SR": MappedCode("SR", "State registry ID", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "SS": MappedCode(
        "SS", "Social Security number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "TAX": MappedCode("TAX", "Tax ID number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "TN": MappedCode(
        "TN", "Treaty Number/ (Canada)", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "TPR": MappedCode(
        "TPR",
        "Temporary Permanent Resident (Canada)",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "U": MappedCode("U", "Unspecified identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "UPIN": MappedCode(
        "UPIN",
        "Medicare/CMS (formerly HCFA)’s Universal Physician Identification numbers",
        "http://terminology.hl7.org/CodeSystem/v2-0203",
    ),
    "USID": MappedCode(
        "USID", "Unique Specimen ID", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "VN": MappedCode("VN", "Visit number", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "VP": MappedCode("VP", "Visitor Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "VS": MappedCode("VS", "VISA", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "WC": MappedCode("WC", "WIC identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "WCN": MappedCode(
        "WCN", "Workers’ Comp Number", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
    "WP": MappedCode("WP", "Work Permit", "http://terminology.hl7.org/CodeSystem/v2-0203"),
    "XX": MappedCode(
        "XX", "Organization identifier", "http://terminology.hl7.org/CodeSystem/v2-0203"
    ),
}

# MaritalStatus_-_Sheet1.csv (v2 table 0002)
MARITAL_STATUS: Final[ConceptMap] = {
    "A": MappedCode(
        "L", "Legally Separated", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    ),
    "D": MappedCode("D", "Divorced", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "M": MappedCode("M", "Married", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "S": MappedCode("S", "Never Married", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "W": MappedCode("W", "Widowed", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "C": MappedCode("C", "Common Law", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "G": MappedCode(
        "T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    ),
    "P": MappedCode(
        "T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    ),
    "R": MappedCode(
        "T", "Domestic partner", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    ),
    "E": MappedCode(
        "L", "Legally Separated", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
    ),
    "N": MappedCode("A", "Annulled", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "I": MappedCode("I", "Interlocutory", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "B": MappedCode("U", "unmarried", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"),
    "U": MappedCode("UNK", "Unknown", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
    "O": MappedCode("OTH", "Other", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
    "T": MappedCode("NAVU", "Not available", "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"),
}

# Relationship_-_Sheet1.csv (v2 table 0063)
RELATIONSHIP: Final[ConceptMap] = {
    "SEL": MappedCode("ONESELF", "self", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SPO": MappedCode("SPS", "spouse", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "DOM": MappedCode(
        "SIGOTHR", "significant other", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "CHD": MappedCode("CHILD", "child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "GCH": MappedCode(
        "GRNDCHILD", "grandchild", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "NCH": MappedCode(
        "NCHILD", "natural child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "SCH": MappedCode("STPCHLD", "step child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FCH": MappedCode(
        "CHLDFOST", "foster child", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "DEP": MappedCode(
        "DEP", "Handicapped dependent", "http://terminology.hl7.org/CodeSystem/v2-0063"
    ),
    "WRD": MappedCode("WRD", "Ward of court", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "PAR": MappedCode("PRN", "parent", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "MTH": MappedCode("MTH", "mother", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FTH": MappedCode("FTH", "father", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "CGV": MappedCode("CGV", "Care giver", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "GRD": MappedCode("GRD", "Guardian", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "GRP": MappedCode("GRPRN", "grandparent", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "EXF": MappedCode(
        "EXT", "extended family member", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "SIB": MappedCode("SIB", "sibling", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "BRO": MappedCode("BRO", "brother", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "SIS": MappedCode("SIS", "sister", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"),
    "FND": MappedCode(
        "FRND", "unrelated friend", "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    ),
    "OAD": MappedCode("OAD", "Other adult", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "EME": MappedCode("EME", "Employee", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "EMR": MappedCode("E", "Employer", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "ASC": MappedCode("ASC", "Associate", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "EMC": MappedCode("C", "Emergency Contact", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "OWN": MappedCode("OWN", "Owner", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "TRA": MappedCode("TRA", "Trainer", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "MGR": MappedCode("MGR", "Manager", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "NON": MappedCode("NON", "None", "http://terminology.hl7.org/CodeSystem/v2-0063"),
    "UNK": MappedCode("U", "Unknown", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "OTH": MappedCode("O", "Other", "http://terminology.hl7.org/CodeSystem/v2-0131"),
}

# ContactRole_-_Sheet1.csv (v2 table 0131)
CONTACT_ROLE: Final[ConceptMap] = {
    "E": MappedCode("E", "Employer", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "C": MappedCode("C", "Emergency Contact", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "F": MappedCode("F", "Federal Agency", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "I": MappedCode("I", "Insurance Company", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "N": MappedCode("N", "Next-of-Kin", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "S": MappedCode("S", "State Agency", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "O": MappedCode("O", "Other", "http://terminology.hl7.org/CodeSystem/v2-0131"),
    "U": MappedCode("U", "Unknown", "http://terminology.hl7.org/CodeSystem/v2-0131"),
}

# ObservationResultStatusCodesInterpretation_-_Sheet1.csv (v2 table 0085)
OBSERVATION_STATUS: Final[ConceptMap] = {
    "A": MappedCode("amended", "Amended", "http://hl7.org/fhir/observation-status"),
    "C": MappedCode("corrected", "Corrected", "http://hl7.org/fhir/observation-status"),
    "D": MappedCode(
        "entered-in-error", "Entered in Error", "http://hl7.org/fhir/observation-status"
    ),
    "F": MappedCode("final", "Final", "http://hl7.org/fhir/observation-status"),
    "P": MappedCode("preliminary", "Preliminary", "http://hl7.org/fhir/observation-status"),
    "X": MappedCode("cancelled", "", "http://hl7.org/fhir/observation-status"),
    "W": MappedCode(
        "entered-in-error", "Entered in Error", "http://hl7.org/fhir/observation-status"
    ),
}

# ResultStatus_Non-Queries__-_Sheet1.csv (v2 table 0123)
RESULT_STATUS: Final[ConceptMap] = {
    "O": MappedCode("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "I": MappedCode("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "S": MappedCode("registered", "Registered", "http://hl7.org/fhir/diagnostic-report-status"),
    "P": MappedCode("preliminary", "Preliminary", "http://hl7.org/fhir/diagnostic-report-status"),
    "C": MappedCode("corrected", "Corrected", "http://hl7.org/fhir/diagnostic-report-status"),
    "R": MappedCode("partial", "Partial", "http://hl7.org/fhir/diagnostic-report-status"),
    "F": MappedCode("final", "Final", "http://hl7.org/fhir/diagnostic-report-status"),
    "X": MappedCode("cancelled", "Cancelled", "http://hl7.org/fhir/diagnostic-report-status"),
}

# OrderControlCode_ServiceRequest.status__-_Sheet1.csv (v2 table 0119)
ORDER_CONTROL_STATUS: Final[ConceptMap] = {
    "AF": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "CA": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "CR": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DC": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DF": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "DR": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "FU": MappedCode("completed", "Completed", "http://hl7.org/fhir/request-status"),
    "HD": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "HR": MappedCode("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "NW": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "OC": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "OD": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "OH": MappedCode("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "OK": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "PR": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "PY": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "RL": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "RO": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "RQ": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
}

# OrderStatus_-_Sheet1.csv (v2 table 0038)
ORDER_STATUS: Final[ConceptMap] = {
    "CA": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "CM": MappedCode("completed", "Completed", "http://hl7.org/fhir/request-status"),
    "DC": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "ER": MappedCode("entered-in-error", "Entered in Error", "http://hl7.org/fhir/request-status"),
    "HD": MappedCode("on-hold", "On Hold", "http://hl7.org/fhir/request-status"),
    "IP": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
    "RP": MappedCode("revoked", "Revoked", "http://hl7.org/fhir/request-status"),
    "SC": MappedCode("active", "Active", "http://hl7.org/fhir/request-status"),
}

# InterpretationCodes_-_Sheet1.csv (v2 table 0078)
INTERPRETATION: Final[ConceptMap] = {
    "<": MappedCode(
        "<", "Off scale low", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    ">": MappedCode(
        ">", "Off scale high", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "A": MappedCode(
        "A", "Abnormal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "AA": MappedCode(
        "AA",
        "Critical abnormal",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "B": MappedCode(
        "B", "Better", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "CAR": MappedCode(
        "CAR", "Carrier", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "D": MappedCode(
        "D",
        "Significant change down",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "DET": MappedCode(
        "DET", "Detected", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "E": MappedCode(
        "E", "Equivocal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "EX": MappedCode(
        "EX",
        "outside threshold",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "EXP": MappedCode(
        "EXP", "Expected", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "H": MappedCode(
        "H", "High", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "HH": MappedCode(
        "HH", "Critical high", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "HU": MappedCode(
        "HU",
        "Significantly high",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "I": MappedCode(
        "I", "Intermediate", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "IE": MappedCode(
        "IE",
        "Insufficient evidence",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "IND": MappedCode(
        "IND", "Indeterminate", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "L": MappedCode(
        "L", "Low", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "LL": MappedCode(
        "LL", "Critical low", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "LU": MappedCode(
        "LU",
        "Significantly low",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "MS": MappedCode(
        "MS",
        "moderately susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "N": MappedCode(
        "N", "Normal", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "NCL": MappedCode(
        "NCL",
        "No CLSI defined breakpoint",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "ND": MappedCode(
        "ND", "Not detected", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "NEG": MappedCode(
        "NEG", "Negative", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "NR": MappedCode(
        "NR", "Non-reactive", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "NS": MappedCode(
        "NS",
        "Non-susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "POS": MappedCode(
        "POS", "Positive", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "R": MappedCode(
        "R", "Resistant", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "RR": MappedCode(
        "RR", "Reactive", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "S": MappedCode(
        "S", "Susceptible", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "SDD": MappedCode(
        "SDD",
        "Susceptible-dose dependent",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "SYN-R": MappedCode(
        "SYN-R",
        "Synergy - resistant",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "SYN-S": MappedCode(
        "SYN-S",
        "Synergy - susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "U": MappedCode(
        "U",
        "Significant change up",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "VS": MappedCode(
        "VS",
        "very susceptible",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
    "UNE": MappedCode(
        "UNE", "Unexpected", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "W": MappedCode(
        "W", "Worse", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    ),
    "WR": MappedCode(
        "WR",
        "Weakly reactive",
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    ),
}

# CompletionStatus_-_Sheet1.csv (v2 table 0322)
COMPLETION_STATUS: Final[ConceptMap] = {
    "CP": MappedCode("completed", "Completed", "http://hl7.org/fhir/event-status"),
    "RE": MappedCode("not-done", "Not Done", "http://hl7.org/fhir/event-status"),
    "NA": MappedCode("not-done", "Not Done", "http://hl7.org/fhir/event-status"),
    "PA": MappedCode("completed", "Completed", "http://hl7.org/fhir/event-status"),
}

# FillerStatusCodes_Appointment__-_Sheet1.csv (v2 table 0278)
FILLER_STATUS: Final[ConceptMap] = {
    "Pending": MappedCode("pending", "Pending", "http://hl7.org/fhir/appointmentstatus"),
    "Waitlist": MappedCode("waitlist", "Waitlisted", "http://hl7.org/fhir/appointmentstatus"),
    "Booked": MappedCode("booked", "Booked", "http://hl7.org/fhir/appointmentstatus"),
    "Started": MappedCode("checked-in", "Checked In", "http://hl7.org/fhir/appointmentstatus"),
    "Complete": MappedCode("fulfilled", "Fulfilled", "http://hl7.org/fhir/appointmentstatus"),
    "Cancelled": MappedCode("cancelled", "Cancelled", "http://hl7.org/fhir/appointmentstatus"),
    "Deleted": MappedCode(
        "entered-in-error", "Entered In Error", "http://hl7.org/fhir/appointmentstatus"
    ),
    "Noshow": MappedCode("noshow", "No Show", "http://hl7.org/fhir/appointmentstatus"),
}

# AllergyType_-_Sheet1.csv (v2 table 0127)
ALLERGY_TYPE: Final[ConceptMap] = {
    "DA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "FA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "MA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "EA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "AA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "PA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
    "LA": MappedCode("allergy", "Allergy", "http://hl7.org/fhir/allergy-intolerance-type"),
}

# AllergenType_AllergyIntoleranceCategory__-_Sheet1.csv (v2 table 0127)
ALLERGEN_CATEGORY: Final[ConceptMap] = {
    "DA": MappedCode(
        "medication", "Medication", "http://hl7.org/fhir/allergy-intolerance-category"
    ),
    "FA": MappedCode("food", "Food", "http://hl7.org/fhir/allergy-intolerance-category"),
    "EA": MappedCode(
        "environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"
    ),
    "AA": MappedCode("biologic", "Biologic", "http://hl7.org/fhir/allergy-intolerance-category"),
    "PA": MappedCode(
        "environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"
    ),
    "LA": MappedCode(
        "environment", "Environment", "http://hl7.org/fhir/allergy-intolerance-category"
    ),
}

# AllergySeverity_AllergyIntolerance.criticality__-_Sheet1.csv (v2 table 0128)
ALLERGY_CRITICALITY: Final[ConceptMap] = {
    "SV": MappedCode("high", "High Risk", "http://hl7.org/fhir/allergy-intolerance-criticality"),
    "MI": MappedCode("low", "Low Risk", "http://hl7.org/fhir/allergy-intolerance-criticality"),
}

# AllergySeverity_AllergyIntolerance.reaction.severity__-_Sheet1.csv (v2 table 0128)
REACTION_SEVERITY: Final[ConceptMap] = {
    "SV": MappedCode("severe", "Severe", "http://hl7.org/fhir/reaction-event-severity"),
    "MO": MappedCode("moderate", "Moderate", "http://hl7.org/fhir/reaction-event-severity"),
    "MI": MappedCode("mild", "Mild", "http://hl7.org/fhir/reaction-event-severity"),
}

# DiagnosisType_-_Sheet1.csv (v2 table 0052)
DIAGNOSIS_TYPE: Final[ConceptMap] = {
    "A": MappedCode(
        "AD", "Admission Diagnosis", "http://terminology.hl7.org/CodeSystem/diagnosis-role"
    ),
}

# YesNoIndicator_-_Sheet1.csv (v2 table 0136)
YES_NO: Final[ConceptMap] = {
    "Y": MappedCode("true", "", "http://terminology.hl7.org/CodeSystem/special-values"),
    "N": MappedCode("false", "", "http://terminology.hl7.org/CodeSystem/special-values"),
}

# ExtendedPriorityCodes_-_Sheet1.csv (v2 table 0485)
PRIORITY: Final[ConceptMap] = {
    "S": MappedCode("stat", "STAT", "http://hl7.org/fhir/request-priority"),
    "A": MappedCode("asap", "ASAP", "http://hl7.org/fhir/request-priority"),
    "R": MappedCode("routine", "Routine", "http://hl7.org/fhir/request-priority"),
}

# RouteOfAdministration_-_Sheet1.csv (v2 table 0162)
ROUTE: Final[ConceptMap] = {
    "AP": MappedCode("AP", "Apply Externally", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "B": MappedCode("B", "Buccal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "DT": MappedCode("DT", "Dental", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "EP": MappedCode("EP", "Epidural", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "ET": MappedCode("ET", "Endotrachial Tube", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "GTT": MappedCode("GTT", "Gastrostomy Tube", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "GU": MappedCode("GU", "GU Irrigant", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IMR": MappedCode(
        "IMR", "Immerse (Soak) Body Part", "http://terminology.hl7.org/CodeSystem/v2-0162"
    ),
    "IA": MappedCode("IA", "Intra-arterial", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IB": MappedCode("IB", "Intrabursal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IC": MappedCode("IC", "Intracardiac", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "ICV": MappedCode(
        "ICV", "Intracervical (uterus)", "http://terminology.hl7.org/CodeSystem/v2-0162"
    ),
    "ID": MappedCode(
        "IDINJ",
        "Injection, intradermal",
        "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    ),
    "IH": MappedCode("IH", "Inhalation", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IHA": MappedCode(
        "IHA", "Intrahepatic Artery", "http://terminology.hl7.org/CodeSystem/v2-0162"
    ),
    "IM": MappedCode(
        "IM",
        "Injection, intramuscular",
        "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    ),
    "IN": MappedCode("IN", "Intranasal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IO": MappedCode("IO", "Intraocular", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IP": MappedCode("IP", "Intraperitoneal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IS": MappedCode("IS", "Intrasynovial", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IT": MappedCode("IT", "Intrathecal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IU": MappedCode("IU", "Intrauterine", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "IV": MappedCode(
        "IVINJ",
        "Injection, intravenous",
        "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    ),
    "MTH": MappedCode("MTH", "Mouth/Throat", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "MM": MappedCode("MM", "Mucous Membrane", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "NS": MappedCode("NS", "Nasal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "NG": MappedCode("NG", "Nasogastric", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "NP": MappedCode("NP", "Nasal Prongs", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "NT": MappedCode("NT", "Nasotrachial Tube", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "OP": MappedCode("OP", "Ophthalmic", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "OT": MappedCode("OT", "Otic", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "OTH": MappedCode(
        "OTH", "Other/Miscellaneous", "http://terminology.hl7.org/CodeSystem/v2-0162"
    ),
    "PF": MappedCode("PF", "Perfusion", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "PO": MappedCode(
        "PO", "Swallow, oral", "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
    ),
    "PR": MappedCode("PR", "Rectal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "RM": MappedCode("RM", "Rebreather Mask", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "SD": MappedCode("SD", "Soaked Dressing", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "SC": MappedCode(
        "SQ",
        "Injection, subcutaneous",
        "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    ),
    "SL": MappedCode("SL", "Sublingual", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "TP": MappedCode("TP", "Topical", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "TRA": MappedCode("TRA", "Tracheostomy", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "TD": MappedCode(
        "TRNSDERM", "Transdermal", "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
    ),
    "TL": MappedCode("TL", "Translingual", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "UR": MappedCode("UR", "Urethral", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "VG": MappedCode("VG", "Vaginal", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "VM": MappedCode("VM", "Ventimask", "http://terminology.hl7.org/CodeSystem/v2-0162"),
    "WND": MappedCode("WND", "Wound", "http://terminology.hl7.org/CodeSystem/v2-0162"),
}

# BodyParts_-_Sheet1.csv (v2 table 0163)
BODY_PART: Final[ConceptMap] = {
    "JUGE": MappedCode(
        "JUGE", "Jugular, External", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "ADB": MappedCode("ADB", "Abdomen", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ACET": MappedCode("ACET", "Acetabulum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ACHIL": MappedCode("ACHIL", "Achilles", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ADE": MappedCode("ADE", "Adenoids", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ADR": MappedCode("ADR", "Adrenal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AMN": MappedCode("AMN", "Amniotic fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AMS": MappedCode("AMS", "Amniotic Sac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ANAL": MappedCode("ANAL", "Anal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ANKL": MappedCode("ANKL", "Ankle", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ANTEC": MappedCode("ANTEC", "Antecubital", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ANTECF": MappedCode(
        "ANTECF", "Antecubital Fossa", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "ANTR": MappedCode("ANTR", "Antrum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ANUS": MappedCode("ANUS", "Anus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AORTA": MappedCode("AORTA", "Aorta", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AR": MappedCode("AR", "Aortic Rim", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AV": MappedCode("AV", "Aortic Valve", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "APDX": MappedCode("APDX", "Appendix", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AREO": MappedCode("AREO", "Areola", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ARM": MappedCode("ARM", "Arm", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ARTE": MappedCode("ARTE", "Artery", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ASCIT": MappedCode("ASCIT", "Ascites", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ASCT": MappedCode("ASCT", "Ascitic Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ATR": MappedCode("ATR", "Atrium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AURI": MappedCode("AURI", "Auricular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "AXI": MappedCode("AXI", "Axilla", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BACK": MappedCode("BACK", "Back", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BARTD": MappedCode("BARTD", "Bartholin Duct", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BARTG": MappedCode(
        "BARTG", "Bartholin Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "BRTGF": MappedCode(
        "BRTGF", "Bartholin Gland Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "BPH": MappedCode("BPH", "Basophils", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BID": MappedCode("BID", "Bile Duct", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BIFL": MappedCode("BIFL", "Bile fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLAD": MappedCode("BLAD", "Bladder", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLOOD": MappedCode("BLOOD", "Blood", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLDA": MappedCode("BLDA", "Blood, Arterial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLDC": MappedCode("BLDC", "Blood, Capillary", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLDV": MappedCode("BLDV", "Blood, Venous", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CBLD": MappedCode("CBLD", "Blood, Cord", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BLD": MappedCode("BLD", "Blood, Whole", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BDY": MappedCode("BDY", "Body, Whole", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BON": MappedCode("BON", "Bone", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BMAR": MappedCode("BMAR", "Bone marrow", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BOWEL": MappedCode("BOWEL", "Bowel", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BOWLA": MappedCode("BOWLA", "Bowel, Large", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BOWSM": MappedCode("BOWSM", "Bowel, Small", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BRA": MappedCode("BRA", "Brachial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BRAIN": MappedCode("BRAIN", "Brain", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BCYS": MappedCode("BCYS", "Brain Cyst Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BRST": MappedCode("BRST", "Breast", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BRSTFL": MappedCode("BRSTFL", "Breast fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BRO": MappedCode("BRO", "Bronchial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BROCH": MappedCode(
        "BROCH", "Bronchiole/Bronchiolar", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "BRONC": MappedCode(
        "BRONC", "Bronchus/Bronchial", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "BRV": MappedCode("BRV", "Broviac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BUCCA": MappedCode("BUCCA", "Buccal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BURSA": MappedCode("BURSA", "Bursa", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BURSF": MappedCode("BURSF", "Bursa Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BUTT": MappedCode("BUTT", "Buttocks", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CALF": MappedCode("CALF", "Calf", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CANAL": MappedCode("CANAL", "Canal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CANLI": MappedCode("CANLI", "Canaliculis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CNL": MappedCode("CNL", "Cannula", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CANTH": MappedCode("CANTH", "Canthus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CDM": MappedCode("CDM", "Cardiac Muscle", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CARO": MappedCode("CARO", "Carotid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CARP": MappedCode("CARP", "Carpal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CAVIT": MappedCode("CAVIT", "Cavity", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CHE": MappedCode("CHE", "Cavity, Chest", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CECUM": MappedCode("CECUM", "Cecum/Cecal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CSF": MappedCode(
        "CSF", "Cerebral Spinal Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CVX": MappedCode("CVX", "Cervix", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CERVUT": MappedCode(
        "CERVUT", "Cervix/Uterus", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CHEEK": MappedCode("CHEEK", "Cheek", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CHES": MappedCode("CHES", "Chest", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CHESTÂ": MappedCode("CHESTÂ", "Chest Tube", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CHIN": MappedCode("CHIN", "Chin", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CIRCU": MappedCode(
        "CIRCU", "Circumcision Site", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CLAVI": MappedCode(
        "CLAVI", "Clavicle/Clavicular", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CLITO": MappedCode("CLITO", "Clitoral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CLIT": MappedCode("CLIT", "Clitoris", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COCCG": MappedCode("COCCG", "Coccygeal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COCCY": MappedCode("COCCY", "Coccyx", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COLON": MappedCode("COLON", "Colon", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COLOS": MappedCode("COLOS", "Colostomy", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COS": MappedCode("COS", "Colostomy Stoma", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CDUCT": MappedCode("CDUCT", "Common Duct", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CONJ": MappedCode("CONJ", "Conjunctiva", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CORAL": MappedCode("CORAL", "Coral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "COR": MappedCode("COR", "Cord", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CORD": MappedCode("CORD", "Cord Blood", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CORN": MappedCode("CORN", "Cornea", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CRANE": MappedCode(
        "CRANE", "Cranium, ethmoid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CRANF": MappedCode(
        "CRANF", "Cranium, frontal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CRANO": MappedCode(
        "CRANO", "Cranium, occipital", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CRANP": MappedCode(
        "CRANP", "Cranium, parietal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CRANS": MappedCode(
        "CRANS", "Cranium, sphenoid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CRANT": MappedCode(
        "CRANT", "Cranium, temporal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "CUBIT": MappedCode("CUBIT", "Cubitus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CUFF": MappedCode("CUFF", "Cuff", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CULD": MappedCode("CULD", "Cul De Sac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "CULDO": MappedCode("CULDO", "Culdocentesis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DELT": MappedCode("DELT", "Deltoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DENTA": MappedCode("DENTA", "Dental", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DEN": MappedCode("DEN", "Dental Gingiva", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DIAF": MappedCode("DIAF", "Dialysis Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DPH": MappedCode("DPH", "Diaphragm", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DIGIT": MappedCode("DIGIT", "Digit", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DISC": MappedCode("DISC", "Disc", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DORS": MappedCode("DORS", "Dorsum/Dorsal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DUFL": MappedCode("DUFL", "Duodenal Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "DUODE": MappedCode(
        "DUODE", "Duodenum/Duodenal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "DUR": MappedCode("DUR", "Dura", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EAR": MappedCode("EAR", "Ear", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EARBI": MappedCode(
        "EARBI", "Ear bone, incus", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "EARBM": MappedCode(
        "EARBM", "Ear bone, malleus", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "EARBS": MappedCode(
        "EARBS", "Ear bone,stapes", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "EARLO": MappedCode("EARLO", "Ear Lobe", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ELBOW": MappedCode("ELBOW", "Elbow", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ELBOWJ": MappedCode("ELBOWJ", "Elbow Joint", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ENDC": MappedCode("ENDC", "Endocardium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EC": MappedCode("EC", "Endocervical", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EOLPH": MappedCode("EOLPH", "endolpthamitis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ENDM": MappedCode("ENDM", "Endometrium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ET": MappedCode("ET", "Endotracheal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EUR": MappedCode("EUR", "Endourethral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EOS": MappedCode("EOS", "Eosinophils", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EPICA": MappedCode("EPICA", "Epicardial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EPICM": MappedCode("EPICM", "Epicardium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EPD": MappedCode("EPD", "Epididymis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EPIDU": MappedCode("EPIDU", "Epidural", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EPIGL": MappedCode("EPIGL", "Epiglottis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ESOPG": MappedCode("ESOPG", "Esophageal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ESO": MappedCode("ESO", "Esophagus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ETHMO": MappedCode("ETHMO", "Ethmoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "Â": MappedCode("Â", "External Jugular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EYE": MappedCode("EYE", "Eye", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "BROW": MappedCode("BROW", "Eyebrow", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "EYELI": MappedCode("EYELI", "Eyelid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FACE": MappedCode("FACE", "Face", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FBINC": MappedCode(
        "FBINC",
        "Facial bone, inferior nasal concha",
        "http://terminology.hl7.org/CodeSystem/v2-0550",
    ),
    "FBLAC": MappedCode(
        "FBLAC", "Facial bone, lacrimal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FBMAX": MappedCode(
        "FBMAX", "Facial bone, maxilla", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FBNAS": MappedCode(
        "FBNAS", "Facial bone, nasal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FBPAL": MappedCode(
        "FBPAL", "Facial bone, palatine", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FBVOM": MappedCode(
        "FBVOM", "Facial bone, vomer", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FBZYG": MappedCode(
        "FBZYG", "Facial bone, zygomatic", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "FALLT": MappedCode("FALLT", "Fallopian Tube", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FEMOR": MappedCode("FEMOR", "Femoral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FMH": MappedCode("FMH", "Femoral Head", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FEMUR": MappedCode("FEMUR", "Femur", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FET": MappedCode("FET", "Fetus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FIBU": MappedCode("FIBU", "Fibula", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FING": MappedCode("FING", "Finger", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FINGN": MappedCode("FINGN", "Finger Nail", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FOL": MappedCode("FOL", "Follicle", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FOOT": MappedCode("FOOT", "Foot", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FOREA": MappedCode("FOREA", "Forearm", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FOREH": MappedCode("FOREH", "Forehead", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FORES": MappedCode("FORES", "Foreskin", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "FOURC": MappedCode("FOURC", "Fourchette", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GB": MappedCode("GB", "Gall Bladder", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GEN": MappedCode("GEN", "Genital", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GVU": MappedCode("GVU", "Genital - Vulva", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GENC": MappedCode("GENC", "Genital Cervix", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GL": MappedCode("GL", "Genital Lesion", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GENL": MappedCode("GENL", "Genital Lochia", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GLAND": MappedCode("GLAND", "Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GLANS": MappedCode("GLANS", "Glans", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GLUTE": MappedCode("GLUTE", "Gluteal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GLUT": MappedCode("GLUT", "Gluteus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GLUTM": MappedCode("GLUTM", "Gluteus Medius", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GROIN": MappedCode("GROIN", "Groin", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "GUM": MappedCode("GUM", "Gum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HAR": MappedCode("HAR", "Hair", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HAL": MappedCode("HAL", "Hallux", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HAND": MappedCode("HAND", "Hand", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HEAD": MappedCode("HEAD", "Head", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HART": MappedCode("HART", "Heart", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HV": MappedCode("HV", "Heart Valve", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HVB": MappedCode(
        "HVB", "Heart Valve, Bicuspid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "HVT": MappedCode(
        "HVT", "Heart Valve, Tricuspid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "HEEL": MappedCode("HEEL", "Heel", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HEM": MappedCode("HEM", "Hemorrhoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HIP": MappedCode("HIP", "Hip", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HIPJ": MappedCode("HIPJ", "Hip Joint", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HUMER": MappedCode("HUMER", "Humerus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "HYMEN": MappedCode("HYMEN", "Hymen", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILC": MappedCode("ILC", "Ileal Conduit", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILE": MappedCode("ILE", "Ileal Loop", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILEOS": MappedCode("ILEOS", "Ileostomy", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILEUM": MappedCode("ILEUM", "Ileum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILIAC": MappedCode("ILIAC", "Iliac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILCR": MappedCode("ILCR", "Iliac Crest", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ILCON": MappedCode("ILCON", "Ilical Conduit", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INGUI": MappedCode("INGUI", "Inguinal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "JUGI": MappedCode(
        "JUGI", "Jugular, Internal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "INT": MappedCode("INT", "Intestine", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ICX": MappedCode("ICX", "Intracervical", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INASA": MappedCode("INASA", "Intranasal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INTRU": MappedCode("INTRU", "Intrauterine", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INTRO": MappedCode("INTRO", "Introitus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ISCHI": MappedCode("ISCHI", "Ischium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "JAW": MappedCode("JAW", "Jaw", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "KIDNÂ": MappedCode("KIDNÂ", "Kidney", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "KNEE": MappedCode("KNEE", "Knee", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "KNEEF": MappedCode("KNEEF", "Knee Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "KNEEJ": MappedCode("KNEEJ", "Knee Joint", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LABIA": MappedCode("LABIA", "Labia", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LABMA": MappedCode("LABMA", "Labia Majora", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LABMI": MappedCode("LABMI", "Labia Minora", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LACRI": MappedCode("LACRI", "Lacrimal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LAM": MappedCode("LAM", "Lamella", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INSTL": MappedCode(
        "INSTL", "Intestine, Large", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "LARYN": MappedCode("LARYN", "Larynx", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LEG": MappedCode("LEG", "Leg", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LENS": MappedCode("LENS", "Lens", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "WBC": MappedCode("WBC", "Leukocytes", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LING": MappedCode("LING", "Lingual", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LINGU": MappedCode("LINGU", "Lingula", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LIP": MappedCode("LIP", "Lip", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "STOOLL": MappedCode("STOOLL", "Liquid Stool", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LIVER": MappedCode("LIVER", "Liver", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LOBE": MappedCode("LOBE", "Lobe", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LOCH": MappedCode("LOCH", "Lochia", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ISH": MappedCode("ISH", "Loop, Ishial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LUMBA": MappedCode("LUMBA", "Lumbar", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LMN": MappedCode("LMN", "Lumen", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LUNG": MappedCode("LUNG", "Lung", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LN": MappedCode("LN", "Lymph Node", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LNG": MappedCode("LNG", "Lymph Node, Groin", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "LYM": MappedCode("LYM", "Lymphocytes", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MAC": MappedCode("MAC", "Macrophages", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MALLE": MappedCode("MALLE", "Malleolus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MANDI": MappedCode(
        "MANDI", "Mandible/Mandibular", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "MAR": MappedCode("MAR", "Marrow", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MAST": MappedCode("MAST", "Mastoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MAXIL": MappedCode(
        "MAXIL", "Maxilla/Maxillary", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "MAXS": MappedCode("MAXS", "Maxillary Sinus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MEATU": MappedCode("MEATU", "Meatus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MEC": MappedCode("MEC", "Meconium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MEDST": MappedCode("MEDST", "Mediastinum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MEDU": MappedCode("MEDU", "Medullary", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MOU": MappedCode("MOU", "Membrane", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MPB": MappedCode("MPB", "Meninges", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "METAC": MappedCode("METAC", "Metacarpal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "METAT": MappedCode("METAT", "Metatarsal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MILK": MappedCode("MILK", "Milk, Breast", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MITRL": MappedCode("MITRL", "Mitral Valve", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MOLAR": MappedCode("MOLAR", "Molar", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MP": MappedCode("MP", "Mons Pubis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MONSU": MappedCode("MONSU", "Mons Ureteris", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MONSV": MappedCode(
        "MONSV", "Mons Veneris(Mons Pubis)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "MOUTH": MappedCode("MOUTH", "Mouth", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MRSA2": MappedCode("MRSA2", "Mrsa:", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "MYO": MappedCode("MYO", "Myocardium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NAIL": MappedCode("NAIL", "Nail", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NAILB": MappedCode("NAILB", "Nail Bed", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NAILF": MappedCode("NAILF", "Nail, Finger", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NAILT": MappedCode("NAILT", "Nail, Toe", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NARES": MappedCode("NARES", "Nares", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NASL": MappedCode("NASL", "Nasal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NSS": MappedCode("NSS", "Nasal Septum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NLACR": MappedCode("NLACR", "Nasolacrimal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NP": MappedCode(
        "NP", "Nasopharyngeal/Nasopharynx", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "NTRAC": MappedCode("NTRAC", "Nasotracheal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NAVEL": MappedCode("NAVEL", "Navel", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NECK": MappedCode("NECK", "Neck", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NERVE": MappedCode("NERVE", "Nerve", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NIPPL": MappedCode("NIPPL", "Nipple", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "NOS": MappedCode(
        "NOS", "Nose (Nasal Passage)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "NOSE": MappedCode(
        "NOSE", "Nose/Nose(outside)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "NOSTR": MappedCode("NOSTR", "Nostril", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "OCCIP": MappedCode("OCCIP", "Occipital", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "OLECR": MappedCode("OLECR", "Olecranon", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "OMEN": MappedCode("OMEN", "Omentum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ORBIT": MappedCode("ORBIT", "Orbit/Orbital", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ORO": MappedCode("ORO", "Oropharynx", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "OSCOX": MappedCode(
        "OSCOX", "Os coxa (pelvic girdle)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "OVARY": MappedCode("OVARY", "Ovary", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PALAT": MappedCode("PALAT", "Palate", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLATH": MappedCode("PLATH", "Palate, Hard", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLATS": MappedCode("PLATS", "Palate, Soft", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PALM": MappedCode("PALM", "Palm", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PANCR": MappedCode("PANCR", "Pancreas", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PAFL": MappedCode("PAFL", "Pancreatic Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PAS": MappedCode("PAS", "Parasternal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PARAT": MappedCode("PARAT", "Paratracheal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PARIE": MappedCode("PARIE", "Parietal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PARON": MappedCode("PARON", "Paronychia", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PAROT": MappedCode(
        "PAROT", "Parotid/Parotid Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PATEL": MappedCode("PATEL", "Patella", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PELV": MappedCode("PELV", "Pelvis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PENSH": MappedCode("PENSH", "Penile Shaft", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PENIS": MappedCode("PENIS", "Penis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PANAL": MappedCode(
        "PANAL", "Perianal/Perirectal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PERI": MappedCode(
        "PERI", "Pericardial Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PCARD": MappedCode("PCARD", "Pericardium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PCLIT": MappedCode("PCLIT", "Periclitoral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIH": MappedCode("PERIH", "Perihepatic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PNEAL": MappedCode("PNEAL", "Perineal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIN": MappedCode(
        "PERIN", "Perineal Abscess", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PNEPH": MappedCode("PNEPH", "Perinephric", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PNM": MappedCode("PNM", "Perineum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PORBI": MappedCode("PORBI", "Periorbital", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERRA": MappedCode("PERRA", "Perirectal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIS": MappedCode("PERIS", "Perisplenic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PER": MappedCode("PER", "Peritoneal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERT": MappedCode("PERT", "Peritoneal Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIT": MappedCode("PERIT", "Peritoneum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PTONS": MappedCode("PTONS", "Peritonsillar", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIU": MappedCode("PERIU", "Periurethal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PERIV": MappedCode("PERIV", "Perivesicular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PHALA": MappedCode("PHALA", "Phalanyx", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PILO": MappedCode("PILO", "Pilonidal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PINNA": MappedCode("PINNA", "Pinna", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLC": MappedCode("PLC", "Placenta", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLACF": MappedCode(
        "PLACF", "Placenta (Fetal Side)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PLACM": MappedCode(
        "PLACM", "Placenta (Maternal Side)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "PLANT": MappedCode("PLANT", "Plantar", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLEUR": MappedCode("PLEUR", "Pleura", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLEU": MappedCode("PLEU", "Pleural Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PLR": MappedCode(
        "PLR", "Pleural Fluid (Thoracentesis Fld)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "POPLI": MappedCode("POPLI", "Popliteal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PREAU": MappedCode("PREAU", "Preauricular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PRERE": MappedCode("PRERE", "Prerenal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PRST": MappedCode("PRST", "Prostate Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PROS": MappedCode("PROS", "Prostatic Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PUBIC": MappedCode("PUBIC", "Pubic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "PUL": MappedCode("PUL", "Pulmonary Artery", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RADI": MappedCode("RADI", "Radial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RADIUS": MappedCode("RADIUS", "Radius", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RECTL": MappedCode("RECTL", "Rectal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RECTU": MappedCode("RECTU", "Rectum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RBC": MappedCode("RBC", "Red Blood Cells", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RENL": MappedCode("RENL", "Renal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RNP": MappedCode("RNP", "Renal Pelvis", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "RPERI": MappedCode(
        "RPERI", "Retroperitoneal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "RIB": MappedCode("RIB", "Rib", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SACRA": MappedCode("SACRA", "Sacral", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SACRO": MappedCode("SACRO", "Sacrococcygeal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SACIL": MappedCode("SACIL", "Sacroiliac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SACRU": MappedCode("SACRU", "Sacrum", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SALGL": MappedCode("SALGL", "Salivary Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SCALP": MappedCode("SCALP", "Scalp", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SCAPU": MappedCode(
        "SCAPU", "Scapula/Scapular", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "SCLER": MappedCode("SCLER", "Sclera", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SCROT": MappedCode(
        "SCROT", "Scrotum/Scrotal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "SEMN": MappedCode("SEMN", "Semen", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SEM": MappedCode("SEM", "Seminal Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SEPTU": MappedCode("SEPTU", "Septum/Septal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SEROM": MappedCode("SEROM", "Seroma", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SHIN": MappedCode("SHIN", "Shin", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SHOLJ": MappedCode("SHOLJ", "Sholder Joint", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SHOL": MappedCode("SHOL", "Shoulder", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SIGMO": MappedCode("SIGMO", "Sigmoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SINUS": MappedCode("SINUS", "Sinus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SKM": MappedCode("SKM", "Skeletal Muscle", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SKENE": MappedCode("SKENE", "Skene's Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SKULL": MappedCode("SKULL", "Skull", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "INSTS": MappedCode(
        "INSTS", "Intestine, Small", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "SOLE": MappedCode("SOLE", "Sole", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SPRM": MappedCode("SPRM", "Spermatozoa", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SPHEN": MappedCode("SPHEN", "Sphenoid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SPCOR": MappedCode("SPCOR", "Spinal Cord", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SPLN": MappedCode("SPLN", "Spleen", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "STER": MappedCode("STER", "Sternum/Sternal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "STOM": MappedCode("STOM", "Stoma", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "USTOM": MappedCode("USTOM", "Stoma, Urinary", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "STOMA": MappedCode("STOMA", "Stomach", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "STUMP": MappedCode("STUMP", "Stump", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SCLV": MappedCode("SCLV", "Sub Clavian", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SDP": MappedCode("SDP", "Subdiaphramatic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUB": MappedCode("SUB", "Subdural", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUBD": MappedCode("SUBD", "Subdural Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SGF": MappedCode("SGF", "Subgaleal Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUBM": MappedCode("SUBM", "Submandibular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUBX": MappedCode("SUBX", "Submaxillary", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUBME": MappedCode("SUBME", "Submental", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUBPH": MappedCode("SUBPH", "Subphrenic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SPX": MappedCode("SPX", "Supra Cervical", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SCLAV": MappedCode(
        "SCLAV", "Supraclavicle/Supraclavicular", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "SUPRA": MappedCode("SUPRA", "Suprapubic", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SUPB": MappedCode(
        "SUPB", "Suprapubic Specimen", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "SWT": MappedCode("SWT", "Sweat", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SWTG": MappedCode("SWTG", "Sweat Gland", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SYNOL": MappedCode("SYNOL", "Synovial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SYN": MappedCode("SYN", "Synovial Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SYNOV": MappedCode("SYNOV", "Synovium", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TARS": MappedCode("TARS", "Tarsal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TDUCT": MappedCode("TDUCT", "Tear Duct", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TEAR": MappedCode("TEAR", "Tears", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TEMPL": MappedCode("TEMPL", "Temple", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TEMPO": MappedCode("TEMPO", "Temporal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TML": MappedCode("TML", "Temporal Lobe", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TESTI": MappedCode(
        "TESTI", "Testicle(Testis)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "THIGH": MappedCode("THIGH", "Thigh", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "THORA": MappedCode(
        "THORA", "Thorax/Thoracic/Thoracentesis", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "THRB": MappedCode("THRB", "Throat", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "THUMB": MappedCode("THUMB", "Thumb", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TNL": MappedCode("TNL", "Thumbnail", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "THM": MappedCode("THM", "Thymus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "THYRD": MappedCode("THYRD", "Thyroid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TIBIA": MappedCode("TIBIA", "Tibia", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TOE": MappedCode("TOE", "Toe", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TOEN": MappedCode("TOEN", "Toe Nail", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TONG": MappedCode("TONG", "Tongue", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TONS": MappedCode("TONS", "Tonsil", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TOOTH": MappedCode("TOOTH", "Tooth", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TSK": MappedCode("TSK", "Tooth Socket", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TRCHE": MappedCode(
        "TRCHE", "Trachea/Tracheal", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "TBRON": MappedCode("TBRON", "Transbronchial", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "TCN": MappedCode("TCN", "Transcarina Asp", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "ULNA": MappedCode("ULNA", "Ulna/Ulnar", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "UMB": MappedCode("UMB", "Umbilical Blood", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "UMBL": MappedCode(
        "UMBL", "Umbilicus/Umbilical", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "URET": MappedCode("URET", "Ureter", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "URTH": MappedCode("URTH", "Urethra", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "UTERI": MappedCode("UTERI", "Uterine", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "SAC": MappedCode("SAC", "Uterine Cul/De/Sac", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "UTER": MappedCode("UTER", "Uterus", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VAGIN": MappedCode("VAGIN", "Vagina/Vaginal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VCUFF": MappedCode("VCUFF", "Vaginal Cuff", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VGV": MappedCode("VGV", "Vaginal Vault", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VAL": MappedCode("VAL", "Valve", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VAS": MappedCode("VAS", "Vas Deferens", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VASTL": MappedCode(
        "VASTL", "Vastus Lateralis", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VAULT": MappedCode("VAULT", "Vault", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VEIN": MappedCode("VEIN", "Vein", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VENTG": MappedCode("VENTG", "Ventragluteal", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VCSF": MappedCode("VCSF", "Ventricular CSF", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VERMI": MappedCode(
        "VERMI", "Vermis Cerebelli", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VERTC": MappedCode(
        "VERTC", "Vertebra, cervical", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VERTL": MappedCode(
        "VERTL", "Vertebra, lumbar", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VERTT": MappedCode(
        "VERTT", "Vertebra, thoracic", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VESI": MappedCode("VESI", "Vesicle", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VESCL": MappedCode("VESCL", "Vesicular", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VESFLD": MappedCode(
        "VESFLD", "Vesicular Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VESTI": MappedCode(
        "VESTI", "Vestibule(Genital)", "http://terminology.hl7.org/CodeSystem/v2-0550"
    ),
    "VITR": MappedCode("VITR", "Vitreous Fluid", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VOC": MappedCode("VOC", "Vocal Cord", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "VULVA": MappedCode("VULVA", "Vulva", "http://terminology.hl7.org/CodeSystem/v2-0550"),
    "WRIST": MappedCode("WRIST", "Wrist", "http://terminology.hl7.org/CodeSystem/v2-0550"),
}

# DiagnosticServiceSectionID_-_Sheet1.csv (v2 table 0074)
SERVICE_SECTION: Final[ConceptMap] = {
    "AU": MappedCode("AU", "Audiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "BG": MappedCode("BG", "Blood Gases", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "BLB": MappedCode("BLB", "Blood Bank", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CG": MappedCode("CG", "Cytogenetics", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CUS": MappedCode("CUS", "Cardiac Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CTH": MappedCode(
        "CTH", "Cardiac Catheterization", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "CT": MappedCode("CT", "CAT Scan", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CH": MappedCode("CH", "Chemistry", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "CP": MappedCode("CP", "Cytopathology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "EC": MappedCode(
        "EC",
        "Electrocardiac (e.g., EKG,  EEC, Holter)",
        "http://terminology.hl7.org/CodeSystem/v2-0074",
    ),
    "EN": MappedCode(
        "EN", "Electroneuro (EEG, EMG,EP,PSG)", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "GE": MappedCode("GE", "Genetics", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "HM": MappedCode("HM", "Hematology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "ICU": MappedCode(
        "ICU", "Bedside ICU Monitoring", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "IMM": MappedCode("IMM", "Immunology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "LAB": MappedCode("LAB", "Laboratory", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MB": MappedCode("MB", "Microbiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MCB": MappedCode("MCB", "Mycobacteriology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "MYC": MappedCode("MYC", "Mycology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "NMS": MappedCode(
        "NMS", "Nuclear Medicine Scan", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "NMR": MappedCode(
        "NMR", "Nuclear Magnetic Resonance", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "NRS": MappedCode(
        "NRS", "Nursing Service Measures", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "OUS": MappedCode("OUS", "OB Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OT": MappedCode("OT", "Occupational Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OTH": MappedCode("OTH", "Other", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "OSL": MappedCode("OSL", "Outside Lab", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PHR": MappedCode("PHR", "Pharmacy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PT": MappedCode("PT", "Physical Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "PHY": MappedCode(
        "PHY",
        "Physician (Hx. Dx, admission note, etc.)",
        "http://terminology.hl7.org/CodeSystem/v2-0074",
    ),
    "PF": MappedCode("PF", "Pulmonary Function", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RAD": MappedCode("RAD", "Radiology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RX": MappedCode("RX", "Radiograph", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "RUS": MappedCode(
        "RUS", "Radiology Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "RC": MappedCode(
        "RC", "Respiratory Care (therapy)", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "RT": MappedCode("RT", "Radiation Therapy", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "SR": MappedCode("SR", "Serology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "SP": MappedCode("SP", "Surgical Pathology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "TX": MappedCode("TX", "Toxicology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "VUS": MappedCode(
        "VUS", "Vascular Ultrasound", "http://terminology.hl7.org/CodeSystem/v2-0074"
    ),
    "VR": MappedCode("VR", "Virology", "http://terminology.hl7.org/CodeSystem/v2-0074"),
    "XRC": MappedCode("XRC", "Cineradiograph", "http://terminology.hl7.org/CodeSystem/v2-0074"),
}

# AppointmentTypeCodes_-_Sheet1.csv (v2 table 0277)
APPOINTMENT_TYPE: Final[ConceptMap] = {
    "Normal": MappedCode(
        "Normal",
        "Routine schedule request type – default if not valued",
        "http://terminology.hl7.org/CodeSystem/v2-0277",
    ),
    "Tentative": MappedCode(
        "Tentative",
        "A request for a tentative (e.g., “penciled in”) appointment",
        "http://terminology.hl7.org/CodeSystem/v2-0277",
    ),
    "Complete": MappedCode(
        "Complete",
        "A request to add a completed appointment, used to maintain records of completed appointments that did not appear in the schedule (e.g., STAT, walk-in, etc.)",
        "http://terminology.hl7.org/CodeSystem/v2-0277",
    ),
}

# AppointmentReasonCodes_-_Sheet1.csv (v2 table 0276)
APPOINTMENT_REASON: Final[ConceptMap] = {
    "ROUTINE": MappedCode(
        "3780001", "Routine patient disposition, no follow-up planned", "http://snomed.info/sct"
    ),
    "CHECKUP": MappedCode("866149003", "Annual visit (procedure)", "http://snomed.info/sct"),
    "FOLLOWUP": MappedCode("185389009", "Follow-up visit (procedure)", "http://snomed.info/sct"),
    "EMERGENCY": MappedCode(
        "373110003", "Emergency procedure (procedure)", "http://snomed.info/sct"
    ),
}

# DocumentConfidentialityStatus_-_Sheet1.csv (v2 table 0272)
DOCUMENT_CONFIDENTIALITY: Final[ConceptMap] = {
    "V": MappedCode("V", "Very restricted", "http://terminology.hl7.org/CodeSystem/v2-0272"),
    "R": MappedCode("R", "Restricted", "http://terminology.hl7.org/CodeSystem/v2-0272"),
    "U": MappedCode("U", "Usual control", "http://terminology.hl7.org/CodeSystem/v2-0272"),
}
