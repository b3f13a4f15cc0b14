"""SNOMED CT concept ids, which problems, allergy substances and reaction manifestations all use.

A shape check, not a terminology lookup: SNOMED CT's identifier rules (6 to 18 digits, partition
"concept", Verhoeff check digit) catch a mistyped digit. The systems each record kind takes, and
the other systems' grammars (ICD-10-CM, RxNorm), stay with that kind.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SNOMED_SYSTEM", "is_snomed_ct_concept", "verhoeff_ok"]

SNOMED_SYSTEM: Final = "http://snomed.info/sct"

_SNOMED_ID: Final = re.compile(r"^[1-9][0-9]{5,17}$")

_VERHOEFF_D: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P: Final = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_ok(digits: str) -> bool:
    """The Verhoeff check over ``digits`` (the last digit is the check digit)."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def is_snomed_ct_concept(code: str) -> bool:
    """A SNOMED CT concept id: 6 to 18 digits, partition ``00``/``10`` (concept), Verhoeff digit."""
    return bool(_SNOMED_ID.match(code)) and code[-3:-1] in ("00", "10") and verhoeff_ok(code)
