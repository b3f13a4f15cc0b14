"""Test data builders: HL7 v2 messages in the styles real interfaces send (no tests here).

Synthetic people only (``TESTPATIENT``, ``DOCTOR^GENERAL``…), synthetic identifiers. The
styles: Epic/Cerner/Meditech-like ADT (PD1, ROL, NK1 repetitions, PV1/PV2, Z-segments,
IN1/IN2/GT1, DG1, AL1 with free text), lab ORU with several ORDER_OBSERVATION groups, NTE
after OBR and OBX, SPM, every common OBX value type, continuation TX lines, ORM NW/CA/XO,
OML O21, SIU S12/S14/S15, VXU V04, MDM T02, A40 with MRG, A08 with several PID-3 authorities,
a Latin-1 message, an LF-separated one, a long one; versions 2.3 to 2.8.

Each builder returns the ER7 text (``bytes`` for the Latin-1 one); ``control_id`` and a few
values are parameters so that a test can send a resend or a correction.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

__all__ = [
    "PDF",
    "adt_a01_epic",
    "adt_a03_cerner_lf",
    "adt_a04_latin1",
    "adt_a04_version",
    "adt_a08_authorities",
    "adt_a40_merge",
    "mdm_t02",
    "oml_o21",
    "orm_o01",
    "oru_continuation_lines",
    "oru_lab",
    "oru_long",
    "seg",
    "siu",
    "vxu_v04",
]

PDF = base64.b64encode(
    b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
).decode()

NPI = "NPI&2.16.840.1.113883.4.6&ISO"
DOCTOR = f"1234567890^DOCTOR^GENERAL^^^DR^MD^^{NPI}"


def seg(name: str, fields: Mapping[int, str]) -> str:
    """One segment from field number -> ER7 text (the rest empty)."""
    return "|".join([name, *(fields.get(n, "") for n in range(1, max(fields) + 1))])


def _join(*segments: str, separator: str = "\r") -> str:
    return separator.join(segments)


def adt_a01_epic(control_id: str = "8675309001", *, family: str = "TESTPATIENT") -> str:
    """Epic-style ADT A01 (2.5.1): MSH-7 with fractional seconds and offset, enhanced mode,
    PD1, ROL, two NK1, PV1 with two attendings, PV2, Z-segments, OBX, AL1 (coded, free text,
    ``""``), DG1 (A and W), GT1, IN1, IN2."""
    return _join(
        "MSH|^~\\&|EPIC|MERCYHOSP^1.2.840.114350.1.13.999^ISO|RHAPSODY|EHR|"
        f"20240315143022.1234-0500||ADT^A01^ADT_A01|{control_id}|P|2.5.1|||AL|NE||UNICODE UTF-8",
        "EVN|A01|20240315143000-0500|||JSMITH^SMITH^JOHN|20240315142500-0500|MERCY",
        seg(
            "PID",
            {
                1: "1",
                3: "E1234567^^^EPI^MR~100200300^^^SSA^SS~MCR555^^^MERCY^AN",
                5: f"{family}^ALICE^MARIE^JR^^^L~{family}^ALLY^^^^^N",
                7: "19750704",
                8: "F",
                10: "2106-3^White^CDCREC",
                11: "123 ELM ST^^MADISON^WI^53703^USA^H^^DANE~PO BOX 12^^MADISON^WI^53701^USA^M",
                13: "(608)555-0101^PRN^PH^^1^608^5550101~^NET^Internet^alice.test@example.com",
                14: "(608)555-0199^WPN^PH^^1^608^5550199",
                15: "ENG^English^HL70296",
                16: "M^Married^HL70002",
                17: "CHR^Christian^HL70006",
                18: "MCR555^^^MERCY^AN",
                22: "2186-5^Not Hispanic or Latino^CDCREC",
                24: "N",
                30: "N",
            },
        ),
        f"PD1|||MERCY CLINIC^^12345|1234567890^DOCTOR^GENERAL^^^DR^MD^^{NPI}^^^^NPI",
        "ROL|1|AD|PP^Primary Care Provider^HL70443|1234567890^DOCTOR^GENERAL^^^DR^MD^^NPI",
        "NK1|1|TESTSPOUSE^ROBERT^^^^^L|SPO^Spouse^HL70063|123 ELM ST^^MADISON^WI^53703^USA|"
        "(608)555-0102^PRN^PH||EC^Emergency Contact^HL70131",
        "NK1|2|TESTKID^CARL|CHD^Child^HL70063||(608)555-0103^PRN^CP|||||||||||||||||||||||||||",
        seg(
            "PV1",
            {
                1: "1",
                2: "I",
                3: "4WEST^412^B^MERCY^^^^^4 West Med Surg",
                4: "E^Emergency^HL70007",
                7: f"{DOCTOR}~5555555555^RESIDENT^RITA^^^DR^^^{NPI}",
                8: "2222222222^REFER^RON^^^DR",
                10: "MED",
                14: "7",
                17: DOCTOR,
                18: "IP",
                19: "4000123456^^^MERCY^VN",
                20: "SELF",
                39: "MERCY",
                41: "ADM",
                44: "20240315142500-0500",
            },
        ),
        "PV2|||CHEST PAIN^Chest pain|||||||||||||||||||||N",
        "ZPV|1|SOMETHING^LOCAL|Y",
        "OBX|1|NM|8302-2^Body height^LN||165|cm^cm^UCUM|||||F",
        "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives~Shortness of breath|20100101",
        "AL1|2|FA|^Peanuts and tree nuts, free text|MO|Rash",
        'AL1|3|DA|""|||',
        "DG1|1|I10|R07.9^Chest pain, unspecified^I10|Chest pain, unspecified|20240315|A|||||||||1",
        "DG1|2|I10|I10^Essential (primary) hypertension^I10||20240315|W",
        "GT1|1||TESTPATIENT^ALICE||123 ELM ST^^MADISON^WI^53703",
        "IN1|1|BCBS01^Blue Cross PPO|BCBS^^^^NIIP|BLUE CROSS BLUE SHIELD|PO BOX 1^^CHICAGO^IL^60601"
        "||||GRP123|||||||TESTPATIENT^ALICE|01^Self|19750704|||||||||||||||||XYZ123456789",
        "IN2|1|||||||||||",
        "ZPI|1|VIP^N",
    )


def adt_a08_authorities(control_id: str = "A08001") -> str:
    """ADT A08 (2.3.1) whose PID-3 repeats with different assigning authorities (namespace
    only, namespace + OID, OID only), plus a PID-2 as 2.3 senders fill it."""
    return _join(
        f"MSH|^~\\&|EPIC|MERCY|EHR|EHR|20240322080000-0500||ADT^A08^ADT_A01|{control_id}|P|2.3.1",
        "EVN|A08|20240322080000-0500",
        seg(
            "PID",
            {
                1: "1",
                2: "E1234567",
                3: "E1234567^^^EPI^MR~X998877^^^CERNER&2.16.840.1.113883.3.13&ISO^MR"
                "~Z5550001^^^&2.16.840.1.113883.3.14&ISO^PI",
                5: "TESTPATIENT^ALICE^M",
                7: "19750704",
                8: "F",
                11: "456 OAK AVE^^MADISON^WI^53704",
                13: "(608)555-0111",
                16: "S",
            },
        ),
        seg(
            "PV1",
            {
                1: "1",
                2: "O",
                3: "CLINIC^^^MERCY",
                19: "4000124002^^^MERCY^VN",
                44: "20240322070000-0500",
            },
        ),
    )


def adt_a40_merge(control_id: str = "A40001") -> str:
    """ADT A40 (2.5, ADT_A39): the surviving PID and the MRG of the record merged into it."""
    return _join(
        f"MSH|^~\\&|EPIC|MERCY|EHR|EHR|20240321080000-0500||ADT^A40^ADT_A39|{control_id}|P|2.5",
        "EVN|A40|20240321080000-0500",
        "PID|1||E1234567^^^EPI^MR~MCR555^^^MERCY^AN||TESTPATIENT^ALICE||19750704|F",
        "PD1",
        "MRG|E7654321^^^EPI^MR~MCR999^^^MERCY^AN||MCR999^^^MERCY^AN||||TESTPATIENT^ALLIE",
    )


def adt_a04_latin1(control_id: str = "LAT0001") -> bytes:
    """Meditech-style ADT A04 (2.4) declared ``8859/1`` in MSH-18, sent as Latin-1 bytes."""
    return _join(
        "MSH|^~\\&|MEDITECH|HOPITAL|EHR|EHR|20240323080000+0100||ADT^A04^ADT_A01|"
        f"{control_id}|P|2.4|||||FRA|8859/1",
        "EVN|A04|20240323080000+0100",
        "PID|1||M000111^^^MT^MR||MÜLLERTEST^JOSÉ^FRANÇOIS||19600229|M|||"
        "12 RUE DE LA PAIX^^MONTRÉAL^QC^H2X 1Y4^CAN",
        seg(
            "PV1",
            {1: "1", 2: "O", 3: "ER^^^HOPITAL", 19: "V555^^^MT^VN", 44: "20240323075000+0100"},
        ),
    ).encode("latin-1")


def adt_a03_cerner_lf(control_id: str = "CER0001") -> str:
    """Cerner-style ADT A03 (2.3): LF-only separators and a trailing newline, CX.5 ``MRN``,
    2.3 telecom, no time zones anywhere."""
    return (
        _join(
            f"MSH|^~\\&|HNAM|CERNERHOSP|EHR|EHR|20240324101500||ADT^A03|{control_id}|P|2.3",
            "EVN|A03|20240324101500",
            seg(
                "PID",
                {
                    1: "1",
                    2: "1122334^^^CERNERMRN^MRN",
                    3: "1122334^^^CERNERMRN^MRN~3344556^^^CERNERCMRN^CMRN",
                    5: "TESTPATIENT^BOB^^^^^Current",
                    7: "19820101",
                    8: "M",
                    10: "White",
                    11: "99 PINE RD^^MADISON^WI^53705^^Home",
                    13: "6085551234^Home^Tel",
                    18: "555667777",
                },
            ),
            seg(
                "PV1",
                {
                    1: "1",
                    2: "E",
                    3: "ED^ED12^01^CERNERHOSP",
                    7: "9876^ERDOC^EDDIE^^^^MD",
                    10: "ER",
                    18: "Emergency",
                    19: "555667777^^^CERNERFIN^FIN NBR",
                    36: "01^Discharged to home",
                    44: "20240324080000",
                    45: "20240324101000",
                },
            ),
            separator="\n",
        )
        + "\n"
    )


def adt_a04_version(version: str, control_id: str = "VER0001") -> str:
    """The same registration in any version (2.7+ carry the phone in PID-40, not PID-13)."""
    modern = version.startswith(("2.7", "2.8"))
    return _join(
        f"MSH|^~\\&|REG|MERCY|EHR|EHR|20240325090000-0500||ADT^A04^ADT_A01|{control_id}|P|"
        f"{version}",
        "EVN|A04|20240325090000-0500",
        seg(
            "PID",
            {
                1: "1",
                3: "E2000001^^^EPI^MR",
                5: "TESTPATIENT^VERA",
                7: "19900101",
                8: "F",
                **({40: "^PRN^PH^^1^608^5550140"} if modern else {13: "^PRN^PH^^1^608^5550140"}),
            },
        ),
        seg("PV1", {1: "1", 2: "O", 19: f"V{control_id}^^^MERCY^VN", 44: "20240325085000-0500"}),
    )


PID_LAB = seg(
    "PID",
    {1: "1", 3: "LAB998877^^^QLAB^PI~E1234567^^^EPI^MR", 5: "TESTPATIENT^ALICE^M",
     7: "19750704", 8: "F", 11: "123 ELM ST^^MADISON^WI^53703", 13: "6085550101"},
)  # fmt: skip


def oru_lab(
    control_id: str = "QL000123", *, glucose: str = "105", glucose_status: str = "F"
) -> str:
    """Lab ORU R01 (2.5.1): two ORDER_OBSERVATION groups with ORC, NTE after OBR and OBX,
    OBX of types NM/ST/SN/CWE/TX/FT/TS/DT/CE/ED, OBX-4 sub-ids, repeating OBX-8, ``""``,
    escaped delimiters, ``\\.br\\``, an SPM with its NTE. ``glucose``/``glucose_status`` make a
    correction (``C``) of the first result."""
    return _join(
        "MSH|^~\\&|SUNQUEST|QLAB^2.16.840.1.113883.3.8888^ISO|EPIC|MERCY|20240316081533.25-0600||"
        f"ORU^R01^ORU_R01|{control_id}|P|2.5.1|||NE|NE|USA",
        PID_LAB,
        seg(
            "PV1",
            {
                1: "1",
                2: "O",
                3: "LAB^^^MERCY",
                7: "1234567890^DOCTOR^GENERAL^^^^^^NPI",
                19: "4000123999^^^MERCY^VN",
            },
        ),
        seg(
            "ORC",
            {
                1: "RE",
                2: "ORD111^EPIC",
                3: "LAB555^QLAB",
                5: "CM",
                9: "20240316070000-0600",
                12: "1234567890^DOCTOR^GENERAL^^^^^^NPI",
            },
        ),
        seg(
            "OBR",
            {
                1: "1",
                2: "ORD111^EPIC",
                3: "LAB555^QLAB",
                4: "80053^Comprehensive metabolic panel^CPT4^CMP^CMP^L",
                7: "20240316071500-0600",
                16: "1234567890^DOCTOR^GENERAL^^^^^^NPI",
                22: "20240316081500-0600",
                24: "CH",
                25: "C" if glucose_status == "C" else "F",
            },
        ),
        "NTE|1|L|Specimen slightly hemolyzed.",
        seg(
            "OBX",
            {
                1: "1",
                2: "NM",
                3: "2345-7^Glucose^LN^GLU^Glucose^L",
                5: glucose,
                6: "mg/dL^mg/dL^UCUM",
                7: "70-99",
                8: "H^High^HL70078",
                11: glucose_status,
                14: "20240316071500-0600",
                19: "20240316080000-0600",
            },
        ),
        "OBX|2|NM|2951-2^Sodium^LN||138|mmol/L|136-145|N|||F",
        "OBX|3|NM|2160-0^Creatinine^LN||1.25|mg/dL|0.57-1.00|H~A|||F",
        "NTE|1|L|Result verified by repeat analysis.\\.br\\Called to RN TEST at 0815.",
        "NTE|2|L|Second note line",
        "OBX|4|SN|33914-3^eGFR^LN||>^60|mL/min/{1.73_m2}^^UCUM|>59||||F",
        'OBX|5|NM|1751-7^Albumin^LN||""|g/dL|3.5-5.0||||X',
        "OBX|6|ST|2965-2^Specific gravity^LN||1.025||1.005-1.030||||F",
        seg("ORC", {1: "RE", 2: "ORD112^EPIC", 3: "LAB556^QLAB", 5: "CM"}),
        seg(
            "OBR",
            {
                1: "2",
                2: "ORD112^EPIC",
                3: "LAB556^QLAB",
                4: "24356-8^Urinalysis complete^LN",
                7: "20240316071500-0600",
                25: "F",
            },
        ),
        "OBX|1|CWE|5778-6^Color of Urine^LN|1|YEL^Yellow^L||||||F",
        "OBX|2|SN|5767-9^Appearance^LN|1|^1^:^2||||||F",
        "OBX|3|SN|20454-5^Protein^LN|1|<^5|mg/dL|<30|N|||F",
        "OBX|4|SN|5799-2^Leukocyte esterase^LN|1|^10^-^20|/[HPF]||A|||F",
        "OBX|5|TX|8251-1^Microscopic^LN|1|Few epithelial cells seen~Rare bacteria||||||F",
        "OBX|6|FT|11502-2^Lab report^LN|1|Line one\\.br\\Line two with \\F\\ pipe, \\S\\ caret, "
        "\\T\\ amp, \\H\\bold\\N\\ text||||||F",
        "OBX|7|TS|18769-0^Collected^LN|1|20240316071500.123-0600||||||F",
        "OBX|8|DT|11368-8^Illness onset^LN|1|20240310||||||F",
        "OBX|9|CE|600-7^Bacteria identified in Blood by Culture^LN|1|3092008^Staphylococcus "
        "aureus^SNM||||||P",
        "OBX|10|CE|600-7^Bacteria identified in Blood by Culture^LN|2|112283007^Escherichia "
        "coli^SCT||||||P",
        f"OBX|11|ED|PDF^PDF Report^L|1|QLAB^AP^PDF^Base64^{PDF}||||||F",
        "SPM|1|SP123^QLAB||122555007^Venous blood specimen^SCT|||||||||||||20240316071500-0600",
        "NTE|1|L|Specimen note (not converted)",
    )


def oru_continuation_lines(control_id: str = "MT0001") -> str:
    """Meditech/Cerner-style radiology ORU (2.3): the report as one TX line per OBX, with the
    same OBX-3 and OBX-4 (or no OBX-4) on every line; 2.3 CE; no time zones."""
    return _join(
        f"MSH|^~\\&|MEDITECH|RADHOSP|EHR|EHR|20240326110000||ORU^R01|{control_id}|P|2.3",
        "PID|1||M000222^^^MT^MR||TESTPATIENT^RAY||19700101|M",
        seg(
            "OBR",
            {
                1: "1",
                2: "RAD77^EPIC",
                3: "R990^MT",
                4: "71046^XR CHEST 2 VIEWS^C4",
                7: "20240326100000",
                25: "F",
                32: "7777^READER^RITA",
            },
        ),
        "OBX|1|TX|71046&IMP^Impression^C4|1|No acute cardiopulmonary process.||||||F",
        "OBX|2|TX|71046&IMP^Impression^C4|1|Heart size normal.||||||F",
        "OBX|3|TX|71046&IMP^Impression^C4|1|   ||||||F",
        "OBX|4|TX|71046&IMP^Impression^C4|1|Dictated by: READER, RITA||||||F",
        "OBX|5|TX|71046&FND^Findings^C4||Lungs clear.||||||F",
        "OBX|6|TX|71046&FND^Findings^C4||No effusion.||||||F",
        "OBX|7|CE|71046&DX^Diagnostic code^C4||1^Normal^L||||||F",
    )


def oru_long(control_id: str = "LONG0001", *, results: int = 250) -> str:
    """A long ORU: ``results`` OBX in one group, long FT notes and a ~200 KiB Base64 PDF."""
    big_pdf = base64.b64encode(b"%PDF-1.4\n" + b"0" * 150_000 + b"\n%%EOF\n").decode()
    obx = [
        f"OBX|{n}|NM|TEST{n:03d}^Analyte {n}^L||{n}.5|mg/dL|1-{n + 10}|||F"
        for n in range(1, results)
    ]
    return _join(
        f"MSH|^~\\&|LIS|BIGLAB|EHR|EHR|20240327120000-0500||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        "PID|1||BL0001^^^BIGLAB^MR||TESTPATIENT^LONG||19800101|F",
        seg(
            "OBR",
            {1: "1", 3: "BIG1^BIGLAB", 4: "PANEL^Big panel^L", 7: "20240327110000-0500", 25: "F"},
        ),
        "NTE|1|L|" + "\\.br\\".join(f"Comment line {n} of a long report." for n in range(200)),
        *obx,
        f"OBX|{results}|ED|PDF^Report^L||BIGLAB^AP^PDF^Base64^{big_pdf}||||||F",
    )


def orm_o01(control: str = "NW", control_id: str = "ORM0001") -> str:
    """Radiology ORM O01 (2.3) with ORC-1 ``control`` (NW, CA, XO…), TQ in ORC-7, OBR-31."""
    return _join(
        f"MSH|^~\\&|EPIC|MERCY|RAD|RADIS|20240317090000-0500||ORM^O01|{control_id}|P|2.3",
        "PID|1||E1234567^^^EPI^MR||TESTPATIENT^ALICE||19750704|F",
        seg("PV1", {1: "1", 2: "O", 3: "RAD^^^MERCY", 19: "4000124000^^^MERCY^VN"}),
        seg(
            "ORC",
            {
                1: control,
                2: "RADORD1^EPIC",
                4: "GRP1^EPIC",
                7: "^^^20240318080000-0500^^R",
                9: "20240317085500-0500",
                12: "1234567890^DOCTOR^GENERAL",
            },
        ),
        seg(
            "OBR",
            {
                1: "1",
                2: "RADORD1^EPIC",
                4: "71046^XR CHEST 2 VIEWS^CPT4",
                5: "R",
                6: "20240317085500-0500",
                16: "1234567890^DOCTOR^GENERAL",
                27: "^^^20240318080000-0500^^R",
                31: "R07.9^Chest pain^I10",
            },
        ),
        "DG1|1|I10|R07.9^Chest pain^I10",
        "NTE|1||Patient is pregnant? No",
    )


def oml_o21(control_id: str = "OML0001") -> str:
    """Lab order OML O21 (2.5.1): ORC with an OID-qualified placer number, TQ1 priority,
    ask-at-order-entry OBX and SPM (not converted)."""
    return _join(
        f"MSH|^~\\&|EPIC|MERCY|LIS|QLAB|20240317100000-0500||OML^O21^OML_O21|{control_id}|P|2.5.1",
        "PID|1||E1234567^^^EPI^MR||TESTPATIENT^ALICE||19750704|F",
        seg("PV1", {1: "1", 2: "O", 3: "CLINIC^^^MERCY", 19: "4000124001^^^MERCY^VN"}),
        seg(
            "ORC",
            {
                1: "NW",
                2: "LABORD9^EPIC^1.2.840.114350.1.13.999.2^ISO",
                5: "SC",
                9: "20240317095500-0500",
                12: f"1234567890^DOCTOR^GENERAL^^^^^^{NPI}",
            },
        ),
        "TQ1|1||||||20240317100000-0500||S^Stat^HL70485",
        seg(
            "OBR",
            {
                1: "1",
                2: "LABORD9^EPIC^1.2.840.114350.1.13.999.2^ISO",
                4: "2093-3^Cholesterol^LN",
                16: f"1234567890^DOCTOR^GENERAL^^^^^^{NPI}",
            },
        ),
        "NTE|1||Fasting specimen",
        "OBX|1|ST|FAST^Fasting?^L||Y",
        "SPM|1|||119297000^Blood^SCT",
    )


def siu(trigger: str = "S12", control_id: str = "SIU0001", *, start: str = "0900") -> str:
    """Cadence-style SIU (2.4) S12/S14/S15 with SCH, NTE, PID, PV1, RGS, AIS, AIG, AIL, AIP."""
    hour = int(start[:2])
    begin, end = f"20240320{start}00-0500", f"20240320{hour:02d}{int(start[2:]) + 30:02d}00-0500"
    cancelled = trigger == "S15"
    return _join(
        f"MSH|^~\\&|CADENCE|MERCY|EHR|EHR|20240318101010-0500||SIU^{trigger}^SIU_S12|"
        f"{control_id}|P|2.4",
        seg(
            "SCH",
            {
                1: "APPT100^EPIC",
                2: "APPT100^CADENCE",
                6: "PATCANC^Patient cancelled^L" if cancelled else "",
                7: "ROUTINE^Routine^HL70276",
                8: "FOLLOWUP^Follow up^HL70277",
                9: "30",
                10: "min",
                11: f"^^30^{begin}^{end}",
                16: "1234567890^DOCTOR^GENERAL",
                20: "1234567890^DOCTOR^GENERAL",
                25: "Cancelled" if cancelled else "Booked",
            },
        ),
        "NTE|1||Patient requests morning slot",
        "PID|1||E1234567^^^EPI^MR||TESTPATIENT^ALICE||19750704|F",
        "PV1|1|O|CLINIC^^^MERCY",
        "RGS|1|A",
        f"AIS|1|A|99213^Office visit^CPT4|{begin}|0|min|30|min",
        "AIG|1|A|1234567890^DOCTOR^GENERAL|D^Doctor",
        "AIL|1|A|CLINIC^EXAM3^^MERCY|^Clinic",
        f"AIP|1|A|1234567890^DOCTOR^GENERAL^^^^^^{NPI}|D^Doctor",
    )


def vxu_v04(control_id: str = "VXU0001") -> str:
    """CDC IIS-style VXU V04 (2.5.1): an administered dose with RXR (NCIT route), VFC
    eligibility OBX, a refusal (RXA-20 ``RE``), a historical dose and a not-administered one
    (``NA``)."""
    return _join(
        "MSH|^~\\&|EHRIZ|MERCY^2.16.840.1.113883.3.72.5.40.1^ISO|IIS|STATEIIS|"
        f"20240319140000-0500||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS",
        "PID|1||E3000001^^^EPI^MR||TESTPATIENT^CARLA^^^^^L||20230115|F||2106-3^White^CDCREC|"
        "1 MAIN ST^^MADISON^WI^53703^USA^L||^PRN^PH^^^608^5550101|||||||||"
        "2186-5^Not Hispanic^CDCREC",
        "PD1|||||||||||02^Reminder/Recall - any method^HL70215|N|20240319|||A|20230115|20240319",
        "NK1|1|TESTPATIENT^ALICE|MTH^Mother^HL70063",
        seg(
            "ORC",
            {
                1: "RE",
                3: "VX9001^EHRIZ",
                10: "7824^NURSE^NANCY^^^^^^MERCY",
                12: f"1234567890^DOCTOR^GENERAL^^^^^^{NPI}",
            },
        ),
        seg(
            "RXA",
            {
                1: "0",
                2: "1",
                3: "20240319133000-0500",
                4: "20240319133000-0500",
                5: "08^Hep B, adolescent or pediatric^CVX",
                6: "0.5",
                7: "mL^milliliters^UCUM",
                9: "00^New immunization record^NIP001",
                10: "7824^NURSE^NANCY^^^^^^MERCY",
                11: "^^^MERCYCLINIC",
                15: "LOT12345",
                16: "20251231",
                17: "MSD^Merck and Co^MVX",
                20: "CP",
                21: "A",
            },
        ),
        "RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163",
        "OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - "
        "Medicaid/Medicaid Managed Care^HL70064||||||F|||20240319|||VXC40^Eligibility captured "
        "at the immunization level^CDCPHINVS",
        "OBX|2|CE|30956-7^vaccine type^LN|2|45^Hep B, unspecified formulation^CVX||||||F",
        "OBX|3|TS|29768-9^Date vaccine information statement published^LN|2|20120202||||||F",
        seg("ORC", {1: "RE", 3: "VX9999^EHRIZ"}),
        seg(
            "RXA",
            {
                1: "0",
                2: "1",
                3: "20240319",
                4: "20240319",
                5: "998^No vaccine administered^CVX",
                6: "999",
                18: "00^Parental decision^NIP002",
                20: "RE",
            },
        ),
        seg("ORC", {1: "RE", 3: "VX9002^EHRIZ"}),
        seg(
            "RXA",
            {
                1: "0",
                2: "1",
                3: "20231010",
                4: "20231010",
                5: "141^Influenza, seasonal, injectable^CVX",
                6: "999",
                9: "01^Historical information - source unspecified^NIP001",
                20: "CP",
                21: "A",
            },
        ),
        seg("ORC", {1: "RE", 3: "VX9003^EHRIZ"}),
        seg(
            "RXA",
            {1: "0", 2: "1", 3: "20240319", 4: "20240319", 5: "20^DTaP^CVX", 6: "999", 20: "NA"},
        ),
    )


def mdm_t02(control_id: str = "MDM0001") -> str:
    """Discharge summary MDM T02 (2.6): TXA and TX OBX lines (one with an escaped ``&``)."""
    return _join(
        f"MSH|^~\\&|EPIC|MERCY|EHR|EHR|20240320120000-0500||MDM^T02^MDM_T02|{control_id}|P|2.6",
        "EVN|T02|20240320120000-0500",
        "PID|1||E1234567^^^EPI^MR||TESTPATIENT^ALICE||19750704|F",
        seg("PV1", {1: "1", 2: "I", 3: "4WEST^412^B^MERCY", 19: "4000123456^^^MERCY^VN"}),
        seg(
            "TXA",
            {
                1: "1",
                2: "DS^Discharge Summary^HL70270",
                3: "TX",
                4: "20240320110000-0500",
                5: "1234567890^DOCTOR^GENERAL",
                6: "20240320110000-0500",
                7: "20240320115000-0500",
                9: f"1234567890^DOCTOR^GENERAL^^^^^^{NPI}",
                12: "DOC778899^EPIC",
                17: "AU",
                19: "AV",
            },
        ),
        "OBX|1|TX|18842-5^Discharge summary^LN|1|DISCHARGE SUMMARY||||||F",
        "OBX|2|TX|18842-5^Discharge summary^LN|2|Patient admitted with chest pain.~Ruled out MI."
        "||||||F",
        "OBX|3|TX|18842-5^Discharge summary^LN|3|Follow up in 2 weeks \\T\\ call if worse.||||||F",
    )
