"""Ingredients read from an RxNorm concept's name: how the table build completes a row whose
ingredient list the derived source lost (an A-initial ingredient, :mod:`.rxnorm_build`).

``ingredients_from_name(tty, name, name_index, salt_bases)`` is ``None`` unless every component of
the name is exactly a known IN/PIN name, or a known IN followed only by salt/hydrate words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ehr.modules.medication_safety.knowledge.dose_forms import pack_components
from ehr.modules.medication_safety.knowledge.rxnorm_files import sorted_ids

__all__ = ["SALT_WORDS", "ingredients_from_name"]


# Leading words before the first substance: a quantity factor ("12 HR", "0.5 ML") and/or a
# qualitative distinction ("3-Bead", "Abuse-Deterrent", "40/60 Release"); substance names start
# with a lower-case letter (a few start with a capital, e.g. "Bordetella": the unstripped name is
# tried first).
_PREFIX = re.compile(r"^(?:[A-Z0-9][^ ]* )+")
# The strength: the first "<number> <UNIT>" whose unit starts with a capital or "%"; the
# substance is what comes before (non-greedy, so "polyethylene glycol 3350 100000 MG" keeps
# "3350" in the substance because "100000" is not a unit).
_STRENGTH = re.compile(
    r"^(?P<substance>.+?) [0-9][0-9.]* (?:[A-Z%][A-Za-z%]*)(?:/[A-Za-z0-9.%]+)*(?: |$)"
)
_BRAND_SUFFIX = re.compile(r"\s*\[[^\[\]]*\]\s*$")


def _drug_substances(name: str) -> list[list[str]]:
    """Readings of an SCD/SBD/SCDC name as substance names (as written, then without prefix)."""
    text = _BRAND_SUFFIX.sub("", name).strip()
    readings: list[list[str]] = []
    for candidate in dict.fromkeys((text, _PREFIX.sub("", text))):
        substances: list[str] = []
        for component in candidate.split(" / "):
            match = _STRENGTH.match(component.strip())
            if match is None:
                break
            substances.append(match.group("substance"))
        else:
            readings.append(substances)
    return readings


# Salt and hydrate words that RxNorm appends to an ingredient name to form a precise ingredient
# (PIN) name: "amphetamine aspartate monohydrate", "atorvastatin calcium".
SALT_WORDS: Final = frozenset(
    {
        "acetate", "aspartate", "benzoate", "besylate", "bitartrate", "bromide", "calcium",
        "citrate", "dihydrate", "fumarate", "gluconate", "hydrobromide", "hydrochloride",
        "hydrate", "lactate", "magnesium", "malate", "maleate", "mesylate", "monohydrate",
        "phosphate", "potassium", "saccharate", "sodium", "succinate", "sulfate", "tartrate",
        "trihydrate",
    }
)  # fmt: skip


def _lookup(substance: str, index: Mapping[str, str], salt_bases: Mapping[str, str]) -> str | None:
    key = substance.lower()
    found = index.get(key)
    if found is not None:
        return found
    words = key.split()
    for cut in range(len(words) - 1, 0, -1):
        base = " ".join(words[:cut])
        if base in salt_bases and all(word in SALT_WORDS for word in words[cut:]):
            return salt_bases[base]
    return None


def ingredients_from_name(
    tty: str,
    name: str,
    name_index: Mapping[str, str],
    salt_bases: Mapping[str, str] | None = None,
) -> tuple[str, ...] | None:
    """The IN RxCUIs named by a concept's name, or ``None`` unless every component is known.

    ``name_index``: lower-case IN/PIN name → IN RxCUI (unambiguous names only): a component must
    be exactly one of these names, or (``salt_bases``: lower-case IN name → RxCUI) one of those
    INs followed only by salt/hydrate words (:data:`SALT_WORDS`). MIN names list ingredient
    names (``amlodipine / benazepril``); drug names carry strengths and a dose form; pack names
    list drugs (``{n (drug) / ...} Pack``).
    """
    if tty == "MIN":
        return _resolve_all([[part.strip() for part in name.split(" / ")]], name_index, salt_bases)
    if tty in {"GPCK", "BPCK"}:
        components = pack_components(name)
        if not components:
            return None
        found: set[str] = set()
        for component in components:
            drug = _resolve_all(_drug_substances(component), name_index, salt_bases)
            if drug is None:
                return None
            found.update(drug)
        return sorted_ids(found)
    if tty in {"SCDC", "SCD", "SBD"}:
        return _resolve_all(_drug_substances(name), name_index, salt_bases)
    return None


def _resolve_all(
    readings: list[list[str]],
    name_index: Mapping[str, str],
    salt_bases: Mapping[str, str] | None,
) -> tuple[str, ...] | None:
    """The ingredients of the first reading whose every substance is known."""
    for substances in readings:
        ingredients: set[str] = set()
        for substance in substances:
            rxcui = _lookup(substance, name_index, salt_bases or {})
            if rxcui is None:
                break
            ingredients.add(rxcui)
        else:
            if ingredients:
                return sorted_ids(ingredients)
    return None
