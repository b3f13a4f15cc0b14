"""Code normalisation: any RxCUI (IN, PIN, MIN, SCDC, SCD, SBD, GPCK, BPCK) or NDC → ingredients.

Contract (implemented by the RxNorm table work; the engine depends only on this surface):

- ``RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"``,
  ``NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"``.
- ``CodeResolver.resolve(system, code) -> Resolution | None``: ``None`` = unknown code
  (the caller reports it as unresolved).
- ``Resolution``: ``rxcui`` (the concept the code resolved to), ``tty``, ``name``,
  ``ingredients`` (frozenset of IN RxCUIs), ``route`` (a ``RouteCategory`` parsed from the
  dose form in the name, or ``None`` when the concept carries no dose form, e.g. IN/PIN/MIN).
- ``load_resolver() -> CodeResolver``: the shipped compact table (cached; cheap to call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from ehr.modules.medication_safety.kb_sources import RouteCategory

__all__ = ["NDC_SYSTEM", "RXNORM_SYSTEM", "CodeResolver", "Resolution"]

RXNORM_SYSTEM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC_SYSTEM: Final = "http://hl7.org/fhir/sid/ndc"


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a medication code means for safety checking."""

    rxcui: str
    tty: str
    name: str
    ingredients: frozenset[str]
    route: RouteCategory | None


class CodeResolver(Protocol):
    def resolve(self, system: str, code: str) -> Resolution | None:
        """The ingredients behind ``code``; ``None`` when the code is unknown."""
        ...
