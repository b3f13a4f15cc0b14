"""The project's own import-linter contract type: public module surfaces (``make lint``).

A business module's ``__init__.py`` is its public API. Code outside the module imports that and
nothing else: ``from ehr.modules.medication_safety import check_orders`` is fine,
``from ehr.modules.medication_safety.engine import Issue`` from anywhere outside
``ehr.modules.medication_safety`` breaks the contract. Inside the module its files import each
other freely. Configured in ``.importlinter`` (see docs/conventions.md)::

    [importlinter:contract:public-surfaces]
    name = Modules are used only through their public surface
    type = public_surface
    packages = ehr.modules.*
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter import Contract, ContractCheck, fields, output

__all__ = ["PublicSurfaceContract"]


def _packages(graph: grimp.ImportGraph, expressions: set[str]) -> list[str]:
    """The packages named by ``expressions`` (``a.b`` or ``a.b.*`` for each child of ``a.b``)."""
    found: set[str] = set()
    for expression in expressions:
        if expression.endswith(".*"):
            parent = expression[:-2]
            found.update(
                child for child in graph.find_children(parent) if graph.find_children(child)
            )
        else:
            found.add(expression)
    return sorted(found)


class PublicSurfaceContract(Contract):
    """Modules below each listed package may only be imported from inside that package."""

    type_name = "public_surface"

    packages = fields.SetField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        expressions: set[str] = self.packages  # type: ignore[assignment]
        illegal: list[dict[str, Any]] = []
        for package in _packages(graph, expressions):
            internals = graph.find_descendants(package)
            for internal in sorted(internals):
                for importer in sorted(graph.find_modules_that_directly_import(internal)):
                    if importer == package or importer.startswith(package + "."):
                        continue
                    details = graph.get_import_details(importer=importer, imported=internal)
                    illegal.append(
                        {
                            "package": package,
                            "importer": importer,
                            "imported": internal,
                            "lines": sorted({detail["line_number"] for detail in details}),
                        }
                    )
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["illegal"]:
            lines = ", ".join(str(line) for line in item["lines"])
            output.print_error(
                f"{item['importer']} -> {item['imported']} (l.{lines}): import "
                f"{item['package']} (its public surface) instead",
                bold=False,
            )
        output.new_line()
