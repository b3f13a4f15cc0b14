"""The RxNorm table files, as both producers write them (:mod:`.rxnorm_build`,
:mod:`.rxnorm_release`), and the errors they raise.

One format (``concepts.tsv.gz``, ``ndc.tsv.gz``, ``release.json``; read by
:class:`~.rxnorm_table.RxNormTable`), deterministic: rows sorted (RxCUI numerically, NDC
lexically), gzip with mtime 0 and no file name, ``release.json`` with sorted keys and no
timestamps. Each file is replaced atomically (written beside it, then renamed).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ehr.modules.medication_safety.knowledge.rxnorm_table import (
    CONCEPTS_FILE,
    CONCEPTS_HEADER,
    NDC_FILE,
    NDC_HEADER,
    RELEASE_FILE,
)

__all__ = [
    "NDC11",
    "RXCUI",
    "TABLE_FORMAT",
    "ConceptRow",
    "RxNormBuildError",
    "RxNormImportError",
    "sorted_ids",
    "write_table",
]

RXCUI: Final = re.compile(r"^[0-9]{1,8}$")
NDC11: Final = re.compile(r"^[0-9]{11}$")
TABLE_FORMAT: Final = 1


class RxNormBuildError(ValueError):
    """The inputs of the table build are inconsistent (the message names the row)."""


class RxNormImportError(ValueError):
    """The NLM release cannot be imported (refused archive, missing file, bad row)."""


@dataclass(frozen=True, slots=True)
class ConceptRow:
    rxcui: str
    tty: str
    name: str
    ingredients: tuple[str, ...]  # IN RxCUIs, sorted numerically


def sorted_ids(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ids), key=int))


# ---- Writing --------------------------------------------------------------------------------


def _gzip_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    # filename="" and mtime=0: the bytes depend on the content only.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(text.encode("utf-8"))
    return buffer.getvalue()


def _check_field(value: str, what: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise RxNormBuildError(f"{what}: tab or line break in {value!r}")
    return value


def _replace(path: Path, data: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


def write_table(
    out_dir: Path,
    concepts: Iterable[ConceptRow],
    ndc: Mapping[str, str],
    release: Mapping[str, object],
) -> dict[str, int]:
    """Write the table files into ``out_dir`` (created if needed); returns their sizes in bytes."""
    rows = sorted(concepts, key=lambda row: int(row.rxcui))
    lines = ["\t".join(CONCEPTS_HEADER)]
    for row in rows:
        lines.append(
            "\t".join(
                (
                    row.rxcui,
                    row.tty,
                    _check_field(row.name, row.rxcui),
                    ",".join(row.ingredients),
                )
            )
        )
    concepts_data = _gzip_bytes("\n".join(lines) + "\n")
    ndc_lines = ["\t".join(NDC_HEADER)] + [f"{code}\t{ndc[code]}" for code in sorted(ndc)]
    ndc_data = _gzip_bytes("\n".join(ndc_lines) + "\n")
    release_data = (json.dumps(release, indent=2, sort_keys=True) + "\n").encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Concepts before NDCs: a reader between the two renames sees a superset of the NDCs' rxcuis
    # only when concepts grow; the server loads once at start-up, so this is a best effort.
    _replace(out_dir / CONCEPTS_FILE, concepts_data)
    _replace(out_dir / NDC_FILE, ndc_data)
    _replace(out_dir / RELEASE_FILE, release_data)
    return {
        CONCEPTS_FILE: len(concepts_data),
        NDC_FILE: len(ndc_data),
        RELEASE_FILE: len(release_data),
    }
