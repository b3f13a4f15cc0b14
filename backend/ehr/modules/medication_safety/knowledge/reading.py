"""Reading the knowledge-base sources: every ``*.yaml`` of a directory, validated.

Each file is loaded with PyYAML's safe loader (sorted by file name) and validated as a
:class:`~.sources.KnowledgeFile`; what is wrong is collected as :class:`CompileProblem` s (file +
offending entry id), not raised on the first one. :class:`KnowledgeBaseInvalid` carries them all.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from ehr.core.errors import AppError
from ehr.modules.medication_safety.knowledge.base import SourceFile
from ehr.modules.medication_safety.knowledge.sources import KnowledgeFile

__all__ = ["CompileProblem", "KnowledgeBaseInvalid", "LoadedSources", "load_sources"]

# libyaml's safe loader when PyYAML was built with it (~10x faster), else the pure-Python one.
_SAFE_LOADER: Final[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class CompileProblem:
    """One thing wrong with the sources: the file, the offending entry id (if any), what."""

    file: str
    entry_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry_id}" if self.entry_id else self.file
        return f"{where}: {self.message}"


class KnowledgeBaseInvalid(AppError):  # noqa: N818 - the domain's words, like ehr.core.errors
    """The knowledge-base sources do not compile (a deployment defect, never a caller's)."""

    status_code = 500
    code = "medication_knowledge_invalid"
    title = "The medication-safety knowledge base is invalid"

    def __init__(self, problems: Iterable[CompileProblem]) -> None:
        self.problems: tuple[CompileProblem, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the knowledge base:\n{lines}")


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class LoadedSources:
    """The validated files, each entry tagged with the file it came from."""

    files: list[tuple[str, KnowledgeFile]] = field(default_factory=list)
    sources: list[SourceFile] = field(default_factory=list)
    problems: list[CompileProblem] = field(default_factory=list)

    def entries(self, section: str) -> list[tuple[str, Any]]:
        return [(name, e) for name, kf in self.files for e in getattr(kf, section)]


def _entry_id(raw: Any, loc: tuple[int | str, ...]) -> str | None:
    """The ``id`` of the raw entry an error location points into (``section[i]...``)."""
    if len(loc) >= 2 and isinstance(raw, dict) and isinstance(loc[1], int):
        section = raw.get(loc[0])
        if isinstance(section, list) and loc[1] < len(section):
            entry = section[loc[1]]
            if isinstance(entry, dict) and entry.get("id") is not None:
                return str(entry["id"])
            return f"{loc[0]}[{loc[1]}]"
    return None


def load_sources(sources_dir: Path) -> LoadedSources:
    loaded = LoadedSources()
    paths = sorted(sources_dir.glob("*.yaml"))
    if not paths:
        loaded.problems.append(CompileProblem(str(sources_dir), None, "no *.yaml source files"))
    for path in paths:
        data = path.read_bytes()
        loaded.sources.append(SourceFile(path.name, hashlib.sha256(data).hexdigest()))
        try:
            raw = yaml.load(data.decode("utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - safe loader
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            loaded.problems.append(CompileProblem(path.name, None, f"not valid YAML: {exc}"))
            continue
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            loaded.problems.append(CompileProblem(path.name, None, "top level is not a mapping"))
            continue
        if isinstance(raw.get("release"), datetime.date):  # an unquoted ISO date in YAML
            raw["release"] = raw["release"].isoformat()
        try:
            loaded.files.append((path.name, KnowledgeFile.model_validate(raw)))
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                message = f"{'.'.join(str(p) for p in loc)}: {error['msg']}"
                if error["type"] == "string_type" and isinstance(error.get("input"), int):
                    message += ' (quote codes and RxCUIs in YAML, e.g. rxcui: "11289")'
                loaded.problems.append(CompileProblem(path.name, _entry_id(raw, loc), message))
    return loaded
