"""The route of administration of an RxNorm concept, parsed from the dose form in its name.

Clinical and branded drugs (SCD, SBD) end their name with an RxNorm dose form (``... Oral
Tablet [Brand]``); packs list their drugs in braces. When in doubt between a local and a systemic
reading the route is ``systemic`` (systemic rules then fire); an unrecognised dose form gives
``None`` (the engine treats an unknown route as matching).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ehr.modules.medication_safety.knowledge.sources import RouteCategory

__all__ = ["pack_components", "route_of"]

_NO_DOSE_FORM: Final = frozenset({"IN", "PIN", "MIN", "SCDC"})
_PACKS: Final = frozenset({"GPCK", "BPCK"})

_S = RouteCategory.SYSTEMIC
_T = RouteCategory.TOPICAL
_E = RouteCategory.OPHTHALMIC
_O = RouteCategory.OTIC
_N = RouteCategory.NASAL
_I = RouteCategory.INHALED
_V = RouteCategory.VAGINAL
_R = RouteCategory.RECTAL_LOCAL

# RxNorm dose forms (lower case, as they end an SCD/SBD name) → route category. The choices that
# are not obvious, all towards "systemic" when part of the dose is absorbed or the form is used
# for systemically acting drugs (so systemic rules keep firing):
# - oral-cavity forms that are swallowed or absorbed (oral gel/paste/spray, lozenges, buccal,
#   sublingual, chewing gum): systemic (miconazole oral gel, fentanyl lozenge, nicotine gum);
#   mouthwash and toothpaste: topical;
# - rectal suppository and rectal gel (diazepam): systemic; rectal cream/foam/ointment/enema/
#   solution/spray: rectal-local;
# - vaginal system (rings: ethinyl estradiol/etonogestrel, estradiol acetate) and intrauterine
#   system: systemic; other vaginal forms: vaginal;
# - gas for inhalation (nitrous oxide, oxygen, anaesthetic gases): systemic; other inhalation
#   forms and inhalers: inhaled; nasal inhalant: nasal;
# - medicated patch (lidocaine, diclofenac epolamine, capsaicin): topical; transdermal system:
#   systemic;
# - intravesical, intraperitoneal, intratracheal, irrigation into body cavities, implants,
#   injections of any kind: systemic (irrigation solution: topical).
_DOSE_FORMS: Final[Mapping[str, RouteCategory]] = {
    # oral and other enteral
    "oral tablet": _S,
    "oral capsule": _S,
    "oral solution": _S,
    "oral suspension": _S,
    "oral granules": _S,
    "oral powder": _S,
    "oral pellet": _S,
    "oral film": _S,
    "oral wafer": _S,
    "oral lozenge": _S,
    "oral gel": _S,
    "oral paste": _S,
    "oral cream": _S,
    "oral ointment": _S,
    "oral foam": _S,
    "oral spray": _S,
    "oral strip": _S,
    "oral emulsion": _S,
    "oral liquid": _S,
    "oral syrup": _S,
    "oral elixir": _S,
    "oral tincture": _S,
    "oral product": _S,
    "oral flakes": _S,
    "chewable tablet": _S,
    "chewable bar": _S,
    "chewing gum": _S,
    "buccal film": _S,
    "buccal tablet": _S,
    "sublingual tablet": _S,
    "sublingual film": _S,
    "sublingual powder": _S,
    "sublingual spray": _S,
    "disintegrating oral tablet": _S,
    "effervescent oral tablet": _S,
    "extended release oral tablet": _S,
    "extended release oral capsule": _S,
    "extended release suspension": _S,
    "extended release oral suspension": _S,
    "chewable extended release oral tablet": _S,
    "delayed release oral tablet": _S,
    "delayed release oral capsule": _S,
    "delayed release oral granules": _S,
    "granules for oral solution": _S,
    "granules for oral suspension": _S,
    "powder for oral solution": _S,
    "powder for oral suspension": _S,
    "tablet for oral suspension": _S,
    "mucosal spray": _S,
    # parenteral, implants, other systemic
    "injection": _S,
    "injectable solution": _S,
    "injectable suspension": _S,
    "injectable foam": _S,
    "extended release injectable suspension": _S,
    "injectable product": _S,
    "prefilled syringe": _S,
    "pen injector": _S,
    "auto-injector": _S,
    "cartridge": _S,
    "jet injector": _S,
    "drug implant": _S,
    "transdermal system": _S,
    "rectal suppository": _S,
    "rectal gel": _S,
    "vaginal system": _S,
    "intrauterine system": _S,
    "gas for inhalation": _S,
    "intraperitoneal solution": _S,
    "intravesical solution": _S,
    "intravesical suspension": _S,
    "powder for intravesical solution": _S,
    "powder for intravesical suspension": _S,
    "powder for pyelocalyceal solution": _S,
    "intratracheal suspension": _S,
    # topical (skin and mouth rinses)
    "topical cream": _T,
    "topical gel": _T,
    "topical solution": _T,
    "topical lotion": _T,
    "topical ointment": _T,
    "topical foam": _T,
    "topical spray": _T,
    "topical powder": _T,
    "topical oil": _T,
    "topical suspension": _T,
    "topical liquefied gas": _T,
    "topical emulsion": _T,
    "topical stick": _T,
    "topical swab": _T,
    "topical shampoo": _T,
    "mucous membrane topical solution": _T,
    "medicated patch": _T,
    "medicated pad": _T,
    "medicated shampoo": _T,
    "medicated bar soap": _T,
    "medicated liquid soap": _T,
    "medicated tape": _T,
    "medicated nail polish": _T,
    "powder spray": _T,
    "paste": _T,
    "mouthwash": _T,
    "toothpaste": _T,
    "irrigation solution": _T,
    # eye, ear, nose, lung
    "ophthalmic solution": _E,
    "ophthalmic suspension": _E,
    "ophthalmic gel": _E,
    "ophthalmic ointment": _E,
    "ophthalmic spray": _E,
    "ophthalmic irrigation solution": _E,
    "ophthalmic insert": _E,
    "ophthalmic emulsion": _E,
    "otic solution": _O,
    "otic suspension": _O,
    "otic ointment": _O,
    "nasal spray": _N,
    "metered dose nasal spray": _N,
    "nasal solution": _N,
    "nasal gel": _N,
    "nasal ointment": _N,
    "nasal powder": _N,
    "nasal inhalant": _N,
    "powder for nasal solution": _N,
    "inhalation powder": _I,
    "inhalation solution": _I,
    "inhalation spray": _I,
    "inhalation suspension": _I,
    "inhalant solution": _I,
    "metered dose inhaler": _I,
    "dry powder inhaler": _I,
    # vaginal, rectal
    "vaginal cream": _V,
    "vaginal gel": _V,
    "vaginal insert": _V,
    "vaginal ointment": _V,
    "vaginal film": _V,
    "vaginal foam": _V,
    "vaginal suppository": _V,
    "vaginal tablet": _V,
    "vaginal ring": _S,
    "douche": _V,
    "rectal cream": _R,
    "rectal foam": _R,
    "rectal ointment": _R,
    "rectal solution": _R,
    "rectal spray": _R,
    "rectal suspension": _R,
    "enema": _R,
}
_LONGEST_DOSE_FORM: Final = max(len(form.split()) for form in _DOSE_FORMS)

# Fallback for a dose form missing above (a newer RxNorm release): the first keyword that starts
# one of the last four words wins ("otic" must not match "exotic").
_KEYWORDS: Final[tuple[tuple[str, RouteCategory], ...]] = (
    ("ophthalmic", _E),
    ("otic", _O),
    ("transdermal", _S),
    ("inject", _S),
    ("syringe", _S),
    ("vaginal", _V),
    ("nasal", _N),
    ("inhal", _I),
    ("suppository", _S),
    ("rectal", _R),
    ("enema", _R),
    ("topical", _T),
    ("cutaneous", _T),
    ("shampoo", _T),
    ("soap", _T),
    ("oral", _S),
    ("sublingual", _S),
    ("buccal", _S),
    ("tablet", _S),
    ("capsule", _S),
)
_BRAND: Final = re.compile(r"\s*\[[^\[\]]*\]\s*$")
_PACK_QUANTITY: Final = re.compile(r"^[0-9][0-9.]* [A-Z]+$")


def _dose_form_route(name: str) -> RouteCategory | None:
    """The route of a clinical/branded drug name (``... Oral Tablet [Brand]``)."""
    words = _BRAND.sub("", name).lower().split()
    for size in range(min(_LONGEST_DOSE_FORM, len(words)), 0, -1):
        route = _DOSE_FORMS.get(" ".join(words[-size:]))
        if route is not None:
            return route
    tail = words[-4:]
    for keyword, route in _KEYWORDS:
        if any(word.startswith(keyword) for word in tail):
            return route
    return None


def pack_components(name: str) -> list[str]:
    """The drug names inside a pack name ``{n (drug) / m (drug) } Pack [Brand]``."""
    start, end = name.find("{"), name.rfind("}")
    if start < 0 or end < start:
        return []
    components: list[str] = []
    depth = 0
    begin = 0
    for index in range(start + 1, end):
        char = name[index]
        if char == "(":
            depth += 1
            if depth == 1:
                begin = index + 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                component = name[begin:index].strip()
                if not _PACK_QUANTITY.match(component):  # "1 (118 ML) (drug)": a size, not a drug
                    components.append(component)
            elif depth < 0:
                return []
    return components if depth == 0 else []


def route_of(tty: str, name: str) -> RouteCategory | None:
    """The route category of a concept, parsed from the dose form in its name.

    IN/PIN/MIN/SCDC carry no dose form → ``None``. A pack is ``systemic`` when any component
    is; otherwise the components' common route, or ``None`` when they differ or are unknown.
    """
    if tty in _NO_DOSE_FORM:
        return None
    if tty in _PACKS:
        routes = {_dose_form_route(component) for component in pack_components(name)}
        if _S in routes:
            return _S
        if len(routes) == 1:
            return routes.pop()
        return None
    return _dose_form_route(name)
