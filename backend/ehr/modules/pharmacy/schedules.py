"""DEA controlled-substance schedules (ADR 0034): the cited table of scheduled ingredients.

``data/dea_schedules.tsv`` lists RxNorm ingredients with their single-entity schedule (21 CFR
1308.12 to 1308.15). A product's derived schedule is the strictest of its ingredients' — the
conservative default; a combination product the regulation places lower (acetaminophen with
codeine, CIII) is registered with its own schedule by the operator.

    schedule_for({"7804", "161"})      # "CII" (oxycodone with acetaminophen)
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Final

__all__ = ["SCHEDULES", "schedule_for", "scheduled_ingredients"]

# Strictest first.
SCHEDULES: Final = ("CII", "CIII", "CIV", "CV")


@functools.cache
def scheduled_ingredients() -> Mapping[str, str]:
    """Ingredient RxCUI → schedule, read once."""
    text = files("ehr.modules.pharmacy").joinpath("data", "dea_schedules.tsv").read_text("utf-8")
    rows = csv.DictReader(
        (line for line in text.splitlines() if line and not line.startswith("#")),
        delimiter="\t",
    )
    table: dict[str, str] = {}
    for row in rows:
        if row["schedule"] not in SCHEDULES:
            raise ValueError(f"dea_schedules.tsv: unknown schedule {row['schedule']!r}")
        table[row["rxcui"]] = row["schedule"]
    return table


def schedule_for(ingredients: Iterable[str]) -> str | None:
    """The strictest schedule among ``ingredients`` (RxCUIs), or None when none is scheduled."""
    table = scheduled_ingredients()
    found = {table[rxcui] for rxcui in ingredients if rxcui in table}
    return min(found, key=SCHEDULES.index) if found else None
