"""``ehr medication-safety``: the RxNorm tables behind code normalisation.

ehr medication-safety build-rxnorm-subset --from DIR [--out DIR] [--sources DIR] [--supplement F]
    rebuild the compact table shipped in the package (data/rxnorm) from the derived TSVs of the
    RxNorm Current Prescribable Content (rxnorm_concepts.tsv, rxnorm_ingredients.tsv,
    rxnorm_ingredients_partial.tsv, rxnorm_ndc.tsv) + data/rxnorm/supplement.tsv, restricted to
    the ingredients named in data/sources/*.yaml; deterministic (same inputs → same bytes)
ehr medication-safety import-rxnorm RxNorm_full_prescribe_MMDDYYYY.zip [--out DIR]
    import a full release downloaded from NLM into settings.medication_safety.rxnorm_dir
    (EHR_MEDICATION_SAFETY__RXNORM_DIR), which the resolver then prefers to the shipped subset
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
    build_subset,
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
DEFAULT_RELEASE_LABEL: Final = (
    "RxNorm Current Prescribable Content 10/2025 (RxNorm_full_prescribe_10062025, inferred)"
)


@app.command("build-rxnorm-subset")
def build_rxnorm_subset(
    from_dir: Annotated[
        Path,
        typer.Option(
            "--from",
            exists=True,
            file_okay=False,
            help="Directory of the derived TSVs (rxnorm_concepts.tsv, ...).",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the table.")] = SHIPPED_DIR,
    sources: Annotated[
        Path, typer.Option(exists=True, file_okay=False, help="The KB's YAML sources.")
    ] = SOURCES_DIR,
    supplement: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Hand-verified rows.")
    ] = SUPPLEMENT,
    release_label: Annotated[
        str, typer.Option(help="The RxNorm release the TSVs were derived from.")
    ] = DEFAULT_RELEASE_LABEL,
) -> None:
    """Rebuild the shipped compact RxNorm table (deterministic)."""
    try:
        report = build_subset(
            from_dir,
            out,
            sources_dir=sources,
            supplement_path=supplement,
            release_label=release_label,
        )
    except RxNormBuildError as exc:
        typer.echo(f"build failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    counts = ", ".join(f"{tty} {n}" for tty, n in sorted(report.concepts.items()))
    typer.echo(f"concepts: {sum(report.concepts.values())} ({counts}); NDCs: {report.ndc}")
    typer.echo(
        f"KB ingredients: {report.kb_ingredients}; supplement rows: {report.supplement_rows}; "
        f"partial rows completed by name: {report.partial_completed} "
        f"(left out: {report.partial_left_out})"
    )
    if report.kb_ingredients_without_concept:
        typer.echo(
            "KB ingredients with no IN row (unknown RxCUI or A-gap not in the supplement): "
            + ", ".join(report.kb_ingredients_without_concept)
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
    """Import a full NLM RxNorm release; the resolver prefers it to the shipped subset."""
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
