"""``ehr medication-safety``: the RxNorm tables behind code normalisation.

ehr medication-safety build-rxnorm-table --from DIR [--from DIR ...] [--out DIR] [--sources DIR]
        [--supplement F] [--not-prescribable F]
    rebuild the table shipped in the package (data/rxnorm) from the derived TSVs of the RxNorm
    Current Prescribable Content (rxnorm_concepts.tsv, rxnorm_ingredients.tsv,
    rxnorm_ingredients_partial.tsv, rxnorm_ndc.tsv: the base directory first, then supplement
    directories in the same format) + data/rxnorm/supplement.tsv: every concept with a complete
    ingredient set; fails when a knowledge-base ingredient has no single-ingredient clinical drug
    and data/rxnorm/not_prescribable.tsv does not say why; deterministic (same inputs → same
    bytes)
ehr medication-safety import-rxnorm RxNorm_full_prescribe_MMDDYYYY.zip [--out DIR]
    import a full release downloaded from NLM into settings.medication_safety.rxnorm_dir
    (EHR_MEDICATION_SAFETY__RXNORM_DIR), which the resolver then prefers to the shipped table
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from ehr.modules.medication_safety import (
    DEFAULT_MAX_MEMBER_BYTES,
    RXNORM_DIR,
    SOURCES_DIR,
    RxNormBuildError,
    RxNormImportError,
    build_table,
    import_rrf_zip,
)

__all__ = ["app"]

app = typer.Typer(
    name="medication-safety",
    help="Medication safety: the RxNorm tables used for code normalisation.",
    no_args_is_help=True,
)

SHIPPED_DIR: Final = RXNORM_DIR
SUPPLEMENT: Final = SHIPPED_DIR / "supplement.tsv"
NOT_PRESCRIBABLE: Final = SHIPPED_DIR / "not_prescribable.tsv"
DEFAULT_RELEASE_LABEL: Final = (
    "RxNorm Current Prescribable Content 10/2025 (RxNorm_full_prescribe_10062025, inferred)"
)


@app.command("build-rxnorm-table")
def build_rxnorm_table(
    from_dirs: Annotated[
        list[Path],
        typer.Option(
            "--from",
            exists=True,
            file_okay=False,
            help="Directory of derived TSVs (rxnorm_concepts.tsv, ...): the base first, then "
            "supplement directories; repeat the option.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the table.")] = SHIPPED_DIR,
    sources: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="The KB's YAML sources.")
    ] = SOURCES_DIR,
    supplement: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Hand-verified rows.")
    ] = SUPPLEMENT,
    not_prescribable: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="KB ingredients with no single-ingredient product in the table, with why.",
        ),
    ] = NOT_PRESCRIBABLE,
    release_label: Annotated[
        str, typer.Option(help="The RxNorm release the TSVs were derived from.")
    ] = DEFAULT_RELEASE_LABEL,
) -> None:
    """Rebuild the shipped RxNorm table (deterministic)."""
    try:
        report = build_table(
            from_dirs,
            out,
            sources_dir=sources,
            supplement_path=supplement,
            not_prescribable_path=not_prescribable,
            release_label=release_label,
        )
    except RxNormBuildError as exc:
        typer.echo(f"build failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    counts = ", ".join(f"{tty} {n}" for tty, n in sorted(report.concepts.items()))
    typer.echo(f"concepts: {sum(report.concepts.values())} ({counts}); NDCs: {report.ndc}")
    left_out = ", ".join(f"{tty} {n}" for tty, n in sorted(report.partial_left_out.items()))
    typer.echo(
        f"KB ingredients: {report.kb_ingredients} (not prescribable, listed: "
        f"{len(report.not_prescribable)}); supplement rows: {report.supplement_rows}; "
        f"partial rows completed by a supplement: {report.completed_by_supplement}, by name: "
        f"{report.partial_completed}; left out: {left_out or 'none'}"
    )
    for name, size in sorted(report.sizes.items()):
        typer.echo(f"wrote {out / name} ({size} bytes)")


def _operator_dir() -> Path:
    from ehr.core.config import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(str(exc.code), err=True)
        raise typer.Exit(code=2) from None
    configured = settings.medication_safety.rxnorm_dir
    if configured is None:
        typer.echo(
            "no output directory: pass --out or set EHR_MEDICATION_SAFETY__RXNORM_DIR", err=True
        )
        raise typer.Exit(code=2)
    return configured


@app.command("import-rxnorm")
def import_rxnorm(
    release_zip: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="RxNorm_full_prescribe_MMDDYYYY.zip from NLM."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Output directory (default: EHR_MEDICATION_SAFETY__RXNORM_DIR)."),
    ] = None,
    max_member_bytes: Annotated[
        int, typer.Option(help="Refuse an RRF file that unpacks to more than this.")
    ] = DEFAULT_MAX_MEMBER_BYTES,
) -> None:
    """Import a full NLM RxNorm release; the resolver prefers it to the shipped table."""
    target = out if out is not None else _operator_dir()
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=False
    ) as progress:

        def report_progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        try:
            report = import_rrf_zip(
                release_zip,
                target,
                progress=report_progress,
                max_member_bytes=max_member_bytes,
            )
        except RxNormImportError as exc:
            progress.stop()
            typer.echo(f"import failed: {exc}", err=True)
            raise typer.Exit(code=1) from None
    counts = ", ".join(f"{tty} {n}" for tty, n in sorted(report.concepts.items()))
    typer.echo(f"concepts: {sum(report.concepts.values())} ({counts}); NDCs: {report.ndc}")
    typer.echo(
        f"left out: {report.without_ingredients} concepts without ingredients, "
        f"{report.ndc_conflicts} NDCs claimed by two concepts"
    )
    typer.echo(f"wrote {target}; restart the API to use it")
