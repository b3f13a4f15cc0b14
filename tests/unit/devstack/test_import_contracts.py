"""The import contract catches what it is there to catch (``make lint`` runs ``lint-imports``).

A throwaway package ``fakeehr`` (core, modules a and b) is linted with the contract types the
repository's ``.importlinter`` uses: layers, the project's public surfaces
(``ehr.devstack.import_contracts.PublicSurfaceContract``) and acyclic siblings. Each breakage is
reported as broken, names the offending import, and leaves the other contracts kept. Last, the
repository's own contract is kept.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[3] / "backend"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

CONTRACT = """\
[importlinter]
root_package = fakeehr
contract_types =
    public_surface: ehr.devstack.import_contracts.PublicSurfaceContract

[importlinter:contract:layers]
name = Fake layers
type = layers
layers =
    fakeehr.modules
    fakeehr.core

[importlinter:contract:surfaces]
name = Fake surfaces
type = public_surface
packages =
    fakeehr.modules.*

[importlinter:contract:acyclic]
name = Fake acyclic
type = acyclic_siblings
ancestors =
    fakeehr
"""
CONTRACTS = ("Fake layers", "Fake surfaces", "Fake acyclic")


def surface(module: str, name: str) -> str:
    """A module's ``__init__.py``: ``name`` from ``module``, in ``__all__``."""
    return f"from fakeehr.modules.{module} import {name}\n\n__all__ = [{name!r}]\n"


# Module b's public surface is its __init__; module a uses b through it.
PACKAGE = {
    "__init__.py": "",
    "core/__init__.py": "",
    "core/config.py": "VALUE = 1\n",
    "modules/__init__.py": "",
    "modules/a/__init__.py": surface("a.service", "run"),
    "modules/a/service.py": "from fakeehr.modules.b import thing\n\nrun = thing\n",
    "modules/b/__init__.py": surface("b.internal", "thing"),
    "modules/b/internal.py": "def thing():\n    return 1\n",
}


def lint(root: Path, changes: dict[str, str] | None = None) -> tuple[int, str]:
    """Write ``fakeehr`` (with ``changes``) and the contract under ``root``; run lint-imports.

    The exit status and the output with its line wrapping undone.
    """
    for name, source in {**PACKAGE, **(changes or {})}.items():
        path = root / "fakeehr" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    config = root / ".importlinter"
    config.write_text(CONTRACT)
    result = run_lint_imports(config, cwd=root, pythonpath=[root, BACKEND])
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def run_lint_imports(
    config: Path, *, cwd: Path, pythonpath: list[Path]
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
        "COLUMNS": "200",  # long module names on one line
    }
    return subprocess.run(  # noqa: S603 - the venv's own lint-imports on our own files
        [str(LINT_IMPORTS), str(config), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verdicts(text: str) -> dict[str, str]:
    """Each fake contract's verdict in the output: KEPT or BROKEN."""
    found = re.findall(r"(Fake \w+) (KEPT|BROKEN)", text)
    return dict(found)


def kept_but(broken: str | None = None) -> dict[str, str]:
    return {name: "BROKEN" if name == broken else "KEPT" for name in CONTRACTS}


def test_a_module_used_through_its_surface_keeps_every_contract(tmp_path: Path) -> None:
    code, text = lint(tmp_path)
    assert (code, verdicts(text)) == (0, kept_but()), text
    assert "3 kept, 0 broken" in text


def test_a_module_importing_its_own_files_keeps_the_public_surface(tmp_path: Path) -> None:
    code, text = lint(tmp_path, {"modules/b/__init__.py": surface("b", "internal")})
    assert (code, verdicts(text)) == (0, kept_but()), text


def test_importing_another_modules_internal_file_breaks_the_public_surface(tmp_path: Path) -> None:
    code, text = lint(
        tmp_path, {"modules/a/service.py": "from fakeehr.modules.b.internal import x\n"}
    )
    assert (code, verdicts(text)) == (1, kept_but("Fake surfaces")), text
    assert "fakeehr.modules.a.service -> fakeehr.modules.b.internal (l.1)" in text
    assert "import fakeehr.modules.b (its public surface) instead" in text


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tmp_path: Path) -> None:
    code, text = lint(tmp_path, {"core/config.py": "from fakeehr.modules.b import thing\n"})
    assert (code, verdicts(text)) == (1, kept_but("Fake layers")), text
    assert "fakeehr.core.config -> fakeehr.modules.b" in text


def test_sibling_modules_importing_each_other_through_their_surfaces_break_acyclic(
    tmp_path: Path,
) -> None:
    code, text = lint(tmp_path, {"modules/b/internal.py": "from fakeehr.modules.a import run\n"})
    assert (code, verdicts(text)) == (1, kept_but("Fake acyclic")), text
    # The cycle is named by the dependency that would break it: b -> a (a -> b is the older one).
    assert "No cycles are allowed in fakeehr.modules." in text
    assert "- .b -> .a (1 import)" in text


def test_the_repository_contract_is_kept() -> None:
    result = run_lint_imports(BACKEND.parent / ".importlinter", cwd=BACKEND, pythonpath=[BACKEND])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout
