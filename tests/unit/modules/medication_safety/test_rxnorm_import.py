"""The RxNorm table builders: the NLM RRF import, the shipped-subset build, their commands."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from support.rxnorm_sources import RXNORM_A_SUPPLEMENT, RXNORM_BASE, needs_rxnorm_sources
from typer.testing import CliRunner

from ehr.entrypoints.cli import app
from ehr.modules.medication_safety.knowledge import (
    CONCEPTS_FILE,
    NDC_FILE,
    NDC_SYSTEM,
    RELEASE_FILE,
    RXNORM_SYSTEM,
    RxNormBuildError,
    RxNormImportError,
    RxNormTable,
    build_table,
    import_rrf_zip,
    shipped_table_dir,
)

# ---- A tiny NLM release: pipe-delimited RRF with the real column layout ---------------------


def conso(rxcui: str, tty: str, name: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    # RXCUI LAT TS LUI STT SUI ISPREF RXAUI SAUI SCUI SDUI SAB TTY CODE STR SRL SUPPRESS CVF
    fields = [rxcui, "ENG", "", "", "", "", "", f"A{rxcui}{tty}", "", "", "", sab, tty, rxcui]
    fields += [name, "", suppress, "4096"]
    assert len(fields) == 18
    return "|".join(fields) + "|\n"


def rel(rxcui1: str, rela: str, rxcui2: str, *, sab: str = "RXNORM") -> str:
    # RXCUI1 RXAUI1 STYPE1 REL RXCUI2 RXAUI2 STYPE2 RELA RUI SRUI SAB SL DIR RG SUPPRESS CVF
    fields = [rxcui1, "", "CUI", "RO", rxcui2, "", "CUI", rela, "", "", sab, sab, "", "", "N", ""]
    assert len(fields) == 16
    return "|".join(fields) + "|\n"


def sat(rxcui: str, atn: str, atv: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    # RXCUI LUI SUI RXAUI STYPE CODE ATUI SATUI ATN SAB ATV SUPPRESS CVF
    fields = [rxcui, "", "", f"A{rxcui}", "AUI", rxcui, "", "", atn, sab, atv, suppress, "4096"]
    assert len(fields) == 13
    return "|".join(fields) + "|\n"


# RxNorm stores each relationship in both directions: "RXCUI2 <RELA> RXCUI1".
CONSO = "".join(
    [
        conso("11289", "IN", "warfarin"),
        conso("723", "IN", "amoxicillin"),
        conso("48203", "IN", "clavulanate"),
        conso("224920", "PIN", "warfarin sodium"),
        conso("19711", "MIN", "amoxicillin / clavulanate"),
        conso("318245", "SCDC", "warfarin sodium 5 MG"),
        conso("316100", "SCDC", "amoxicillin 875 MG"),
        conso("316101", "SCDC", "clavulanate 125 MG"),
        conso("855332", "SCD", "warfarin sodium 5 MG Oral Tablet"),
        conso("562508", "SCD", "amoxicillin 875 MG / clavulanate 125 MG Oral Tablet"),
        conso("855336", "SBD", "warfarin sodium 5 MG Oral Tablet [Jantoven]"),
        conso("900100", "GPCK", "{20 (amoxicillin 875 MG / clavulanate 125 MG Oral Tablet) } Pack"),
        conso("900101", "BPCK", "{30 (warfarin sodium 5 MG Oral Tablet [Jantoven]) } Pack [Kit]"),
        # Left out: another source, a suppressed atom, a synonym TTY, a brand name.
        conso("11289", "IN", "Coumadin ingredient", sab="MTHSPL"),
        conso("999001", "SCD", "obsolete 1 MG Oral Tablet", suppress="O"),
        conso("855332", "SY", "Warfarin Sodium 5mg tab"),
        conso("202421", "BN", "Jantoven"),
    ]
)
REL = "".join(
    [
        rel("11289", "form_of", "224920"),
        rel("224920", "has_form", "11289"),
        rel("723", "part_of", "19711"),
        rel("48203", "part_of", "19711"),
        rel("11289", "ingredient_of", "318245"),
        rel("723", "ingredient_of", "316100"),
        rel("316101", "has_ingredient", "48203"),  # only one direction stored: still linked
        rel("318245", "constitutes", "855332"),
        rel("316100", "constitutes", "562508"),
        rel("316101", "constitutes", "562508"),
        rel("855332", "tradename_of", "855336"),
        rel("562508", "contained_in", "900100"),
        rel("855336", "contained_in", "900101"),
        rel("11289", "ingredient_of", "999001"),  # to a suppressed concept: ignored
        rel("11289", "has_tradename", "202421", sab="MTHSPL"),  # other source: ignored
    ]
)
SAT = "".join(
    [
        sat("855332", "NDC", "00093111310"),
        sat("855336", "NDC", "00555083102"),
        sat("562508", "NDC", "12345067801"),
        sat("900100", "NDC", "54321123405"),
        sat("855332", "NDC", "00093111399", sab="VANDF"),  # not SAB=RXNORM: ignored
        sat("855332", "NDC", "00093111398", suppress="O"),  # suppressed: ignored
        sat("855332", "NDC", "11111111111"),  # claimed by two concepts: dropped
        sat("562508", "NDC", "11111111111"),
        sat("855332", "RXN_HUMAN_DRUG", "US"),
    ]
)


def make_zip(path: Path, members: dict[str, str | bytes], *, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


@pytest.fixture
def release_zip(tmp_path: Path) -> Path:
    return make_zip(
        tmp_path / "RxNorm_full_prescribe_10062025.zip",
        {
            "Readme_Full_Prescribe_10062025.txt": "readme",
            "rrf/RXNCONSO.RRF": CONSO,
            "rrf/RXNREL.RRF": REL,
            "rrf/RXNSAT.RRF": SAT,
            "rrf/RXNSTY.RRF": "",
        },
    )


def test_import_builds_a_table_that_resolves_every_tty(release_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "operator"
    seen: list[str] = []
    report = import_rrf_zip(
        release_zip, out, progress=lambda label, done, total: seen.append(label)
    )
    assert {"RXNCONSO.RRF", "RXNREL.RRF", "RXNSAT.RRF"} <= set(seen)
    table = RxNormTable.from_directory(out)
    expected = {
        "11289": ("IN", {"11289"}),
        "224920": ("PIN", {"11289"}),
        "19711": ("MIN", {"723", "48203"}),
        "318245": ("SCDC", {"11289"}),
        "855332": ("SCD", {"11289"}),
        "562508": ("SCD", {"723", "48203"}),
        "855336": ("SBD", {"11289"}),
        "900100": ("GPCK", {"723", "48203"}),
        "900101": ("BPCK", {"11289"}),
    }
    for rxcui, (tty, ingredients) in expected.items():
        resolution = table.resolve(RXNORM_SYSTEM, rxcui)
        assert resolution is not None, rxcui
        assert (resolution.tty, set(resolution.ingredients)) == (tty, ingredients)
    assert table.resolve(RXNORM_SYSTEM, "999001") is None  # suppressed
    assert table.resolve(RXNORM_SYSTEM, "202421") is None  # BN: not a resolvable TTY
    name = table.resolve(RXNORM_SYSTEM, "11289")
    assert name is not None
    assert name.name == "warfarin"  # the RXNORM atom, not another source's
    for code, rxcui in [
        ("00093-1113-10", "855332"),
        ("0555-0831-02", "855336"),
        ("12345-678-01", "562508"),
        ("54321-1234-5", "900100"),
    ]:
        resolution = table.resolve(NDC_SYSTEM, code)
        assert resolution is not None
        assert resolution.rxcui == rxcui
    for ignored in ("00093111399", "00093111398", "11111111111"):
        assert table.resolve(NDC_SYSTEM, ignored) is None
    assert report.ndc == 4
    assert report.ndc_conflicts == 1
    assert table.release["kind"] == "full"
    assert table.release["rxnorm_release"] == release_zip.name


def test_import_is_deterministic(release_zip: Path, tmp_path: Path) -> None:
    import_rrf_zip(release_zip, tmp_path / "a")
    import_rrf_zip(release_zip, tmp_path / "b")
    for name in (CONCEPTS_FILE, NDC_FILE, RELEASE_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    "hostile",
    ["../RXNCONSO.RRF", "rrf/../../etc/passwd", "/etc/passwd", "C:/windows/x", "rrf\\..\\x"],
)
def test_import_refuses_path_traversal(tmp_path: Path, hostile: str) -> None:
    archive = make_zip(
        tmp_path / "hostile.zip",
        {"rrf/RXNCONSO.RRF": CONSO, "rrf/RXNREL.RRF": REL, "rrf/RXNSAT.RRF": SAT, hostile: "x"},
    )
    with pytest.raises(RxNormImportError, match="unsafe path"):
        import_rrf_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_refuses_a_member_over_the_size_cap(release_zip: Path, tmp_path: Path) -> None:
    with pytest.raises(RxNormImportError, match="would unpack to"):
        import_rrf_zip(release_zip, tmp_path / "out", max_member_bytes=100)


def test_import_refuses_a_zip_bomb(tmp_path: Path) -> None:
    bomb = b"0" * (8 * 1024 * 1024)  # compresses > 1000:1
    archive = make_zip(
        tmp_path / "bomb.zip",
        {"rrf/RXNCONSO.RRF": bomb, "rrf/RXNREL.RRF": REL, "rrf/RXNSAT.RRF": SAT},
    )
    with pytest.raises(RxNormImportError, match="compression ratio"):
        import_rrf_zip(archive, tmp_path / "out")


def test_import_refuses_a_zip_without_the_rrf_files(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "x.zip", {"rrf/RXNCONSO.RRF": CONSO})
    with pytest.raises(RxNormImportError, match=r"RXNREL\.RRF, RXNSAT\.RRF missing"):
        import_rrf_zip(archive, tmp_path / "out")


def test_import_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "not.zip"
    path.write_text("hello")
    with pytest.raises(RxNormImportError, match="not a readable zip"):
        import_rrf_zip(path, tmp_path / "out")


def test_import_refuses_rows_with_the_wrong_column_count(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "bad.zip",
        {"rrf/RXNCONSO.RRF": "1|ENG|x|\n", "rrf/RXNREL.RRF": REL, "rrf/RXNSAT.RRF": SAT},
    )
    with pytest.raises(RxNormImportError, match="expected 18"):
        import_rrf_zip(archive, tmp_path / "out")


def test_import_rxnorm_command(release_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    result = CliRunner().invoke(
        app, ["medication-safety", "import-rxnorm", str(release_zip), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "NDCs: 4" in result.output
    assert RxNormTable.from_directory(out).resolve(RXNORM_SYSTEM, "900101") is not None


def test_import_rxnorm_command_reports_a_refused_archive(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "h.zip", {"../x": "x"})
    result = CliRunner().invoke(
        app, ["medication-safety", "import-rxnorm", str(archive), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "unsafe path" in result.output


# ---- The shipped-table build ----------------------------------------------------------------

DERIVED = {
    "rxnorm_concepts.tsv": "rxcui\ttty\tname\n"
    "11289\tIN\twarfarin\n"
    "5640\tIN\tibuprofen\n"
    "4278\tIN\tfamotidine\n"
    "48203\tIN\tclavulanate\n"
    "7052\tIN\tmorphine\n"
    "224920\tPIN\twarfarin sodium\n"
    "855332\tSCD\twarfarin sodium 5 MG Oral Tablet\n"
    "197696\tSCD\tibuprofen 400 MG Oral Tablet\n"
    "1100066\tSCD\tfamotidine 26.6 MG / ibuprofen 800 MG Oral Tablet\n"
    "562508\tSCD\tamoxicillin 875 MG / clavulanate 125 MG Oral Tablet\n"
    "617296\tSCD\tamlodipine 5 MG / benazepril 10 MG Oral Capsule\n"
    "892582\tSCD\tmorphine sulfate 15 MG Oral Tablet\n"
    "202421\tBN\tJantoven\n",
    "rxnorm_ingredients.tsv": "rxcui\ttty\tingredient_rxcuis\n"
    "224920\tPIN\t11289\n"
    "855332\tSCD\t11289\n"
    "197696\tSCD\t5640\n"
    "1100066\tSCD\t4278,5640\n"
    "892582\tSCD\t7052\n",
    "rxnorm_ingredients_partial.tsv": "rxcui\ttty\tknown_ingredient_rxcuis\tstatus\tname\n"
    "562508\tSCD\t48203\tincomplete_A_gap\tamoxicillin 875 MG / clavulanate 125 MG Oral Tablet\n"
    "617296\tSCD\t\tincomplete_A_gap\tamlodipine 5 MG / benazepril 10 MG Oral Capsule\n",
    "rxnorm_ndc.tsv": "ndc11\trxcui\n00093111310\t855332\n00000000001\t892582\n"
    "00000000002\t617296\n",
}
# A supplement directory in the same format: an A-initial IN and product, and the completion
# of one of the base's partial rows.
A_SUPPLEMENT = {
    "rxnorm_concepts.tsv": "rxcui\ttty\tname\n"
    "17767\tIN\tamlodipine\n"
    "18867\tIN\tbenazepril\n"
    "308135\tSCD\tamlodipine 10 MG Oral Tablet\n",
    "rxnorm_ingredients.tsv": "rxcui\ttty\tingredient_rxcuis\n"
    "308135\tSCD\t17767\n"
    "617296\tSCD\t17767,18867\n",
    "rxnorm_ingredients_partial.tsv": "rxcui\ttty\tknown_ingredient_rxcuis\tstatus\tname\n",
    "rxnorm_ndc.tsv": "ndc11\trxcui\n",
}
SUPPLEMENT = (
    "rxcui\ttty\tname\tingredient_rxcuis\tndc11s\tsource\n"
    "723\tIN\tamoxicillin\t723\t\ttest fixture\n"
    "308191\tSCD\tamoxicillin 500 MG Oral Capsule\t723\t12345678901\ttest fixture\n"
)
NOT_PRESCRIBABLE = "rxcui\tname\treason\n99999999\tunknown\tnot marketed (test fixture)\n"
SOURCES_YAML = """
classes:
  - id: ehr:class/x
    label: test class
    members:
      - {rxcui: "11289", name: warfarin}
      - {rxcui: "5640", name: ibuprofen}
      - {rxcui: "723", name: amoxicillin}
      - {rxcui: "99999999", name: unknown}
    citations: [c]
citations:
  - {id: c, text: a test citation}
"""


def _write_dir(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def derived(tmp_path: Path) -> Path:
    directory = _write_dir(tmp_path / "derived", DERIVED)
    _write_dir(tmp_path / "a-supplement", A_SUPPLEMENT)
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "a.yaml").write_text(SOURCES_YAML)
    (tmp_path / "supplement.tsv").write_text(SUPPLEMENT)
    (tmp_path / "not_prescribable.tsv").write_text(NOT_PRESCRIBABLE)
    return directory


def _build(derived: Path, out: Path) -> None:
    build_table(
        [derived, derived.parent / "a-supplement"],
        out,
        sources_dir=derived.parent / "sources",
        supplement_path=derived.parent / "supplement.tsv",
        not_prescribable_path=derived.parent / "not_prescribable.tsv",
        release_label="test",
    )


def test_build_covers_the_formulary_supplements_and_partial_completion(
    derived: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _build(derived, out)
    table = RxNormTable.from_directory(out)

    def ingredients(rxcui: str) -> set[str] | None:
        resolution = table.resolve(RXNORM_SYSTEM, rxcui)
        return None if resolution is None else set(resolution.ingredients)

    assert ingredients("855332") == {"11289"}
    assert ingredients("224920") == {"11289"}
    assert ingredients("1100066") == {"4278", "5640"}
    assert ingredients("562508") == {"723", "48203"}  # completed by name (supplement IN)
    assert ingredients("308191") == {"723"}  # a supplement.tsv product
    # The whole formulary, not only what the knowledge base names.
    assert ingredients("892582") == {"7052"}
    assert ingredients("7052") == {"7052"}
    # The supplement directory: its own products and its completion of a partial row.
    assert ingredients("308135") == {"17767"}
    assert ingredients("617296") == {"17767", "18867"}
    assert table.resolve(NDC_SYSTEM, "00093111310") is not None
    assert table.resolve(NDC_SYSTEM, "12345678901") is not None  # supplement.tsv's NDC
    assert table.resolve(NDC_SYSTEM, "00000000001") is not None  # a non-KB drug's NDC
    assert table.resolve(NDC_SYSTEM, "00000000002") is not None  # completed row's NDC
    assert table.release["kind"] == "formulary"
    assert table.release["partial_rows_completed_by_name"] == 1
    assert table.release["partial_rows_completed_by_supplement"] == 1
    assert table.release["kb_ingredients_not_prescribable"] == {
        "99999999": {"name": "unknown", "reason": "not marketed (test fixture)"}
    }
    assert "import-rxnorm" in str(table.release["cannot_resolve"])


def test_a_partial_row_that_cannot_be_completed_is_left_out_with_its_ndc(
    derived: Path, tmp_path: Path
) -> None:
    (derived.parent / "a-supplement" / "rxnorm_ingredients.tsv").write_text(
        "rxcui\ttty\tingredient_rxcuis\n308135\tSCD\t17767\n"
    )
    (derived.parent / "a-supplement" / "rxnorm_concepts.tsv").write_text(
        "rxcui\ttty\tname\n17767\tIN\tamlodipine\n308135\tSCD\tamlodipine 10 MG Oral Tablet\n"
    )
    out = tmp_path / "out"
    _build(derived, out)
    table = RxNormTable.from_directory(out)
    # benazepril is unknown: an incomplete ingredient set would hide its interactions.
    assert table.resolve(RXNORM_SYSTEM, "617296") is None
    assert table.resolve(NDC_SYSTEM, "00000000002") is None
    assert table.release["partial_rows_left_out"] == {"SCD": 1}


def test_build_fails_when_a_kb_ingredient_has_no_single_ingredient_drug(
    derived: Path, tmp_path: Path
) -> None:
    yaml_text = SOURCES_YAML.replace(
        '      - {rxcui: "99999999", name: unknown}',
        '      - {rxcui: "99999999", name: unknown}\n      - {rxcui: "4278", name: famotidine}',
    )
    (derived.parent / "sources" / "a.yaml").write_text(yaml_text)
    with pytest.raises(RxNormBuildError, match="4278: no single-ingredient clinical drug"):
        _build(derived, tmp_path / "out")
    # ... and when the not-prescribable list goes stale (or names what the KB does not).
    (derived.parent / "not_prescribable.tsv").write_text(
        NOT_PRESCRIBABLE + "4278\tfamotidine\tonly in combination here (test)\n"
        "5640\tibuprofen\tlisted though it resolves (test)\n"
    )
    with pytest.raises(RxNormBuildError, match="5640: listed as not prescribable but it resolves"):
        _build(derived, tmp_path / "out")
    (derived.parent / "sources" / "a.yaml").write_text(SOURCES_YAML)
    (derived.parent / "not_prescribable.tsv").write_text(NOT_PRESCRIBABLE + "7052\tm\tunneeded x\n")
    with pytest.raises(RxNormBuildError, match="7052: listed as not prescribable but the KB"):
        _build(derived, tmp_path / "out")


def test_build_is_byte_for_byte_reproducible(derived: Path, tmp_path: Path) -> None:
    _build(derived, tmp_path / "a")
    _build(derived, tmp_path / "b")
    for name in (CONCEPTS_FILE, NDC_FILE, RELEASE_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # gzip header: mtime 0 and no file name, so the bytes depend on the content only
    header = (tmp_path / "a" / CONCEPTS_FILE).read_bytes()[:10]
    assert header[3] & 0x08 == 0  # FNAME flag unset
    assert header[4:8] == b"\x00\x00\x00\x00"


def test_build_refuses_a_supplement_that_contradicts_the_source(
    derived: Path, tmp_path: Path
) -> None:
    (derived.parent / "supplement.tsv").write_text(
        SUPPLEMENT + "855332\tSCD\twarfarin sodium 5 MG Oral Tablet\t5640\t\tbad\n"
    )
    with pytest.raises(RxNormBuildError, match="disagrees"):
        _build(derived, tmp_path / "out")


def test_build_refuses_supplement_directories_that_disagree(derived: Path, tmp_path: Path) -> None:
    (derived.parent / "a-supplement" / "rxnorm_ingredients.tsv").write_text(
        "rxcui\ttty\tingredient_rxcuis\n308135\tSCD\t17767\n1100066\tSCD\t5640\n"
    )
    with pytest.raises(RxNormBuildError, match="1100066 ingredients"):
        _build(derived, tmp_path / "out")


def test_build_refuses_a_supplement_row_without_source(derived: Path, tmp_path: Path) -> None:
    (derived.parent / "supplement.tsv").write_text(SUPPLEMENT + "733\tIN\tampicillin\t733\t\t\n")
    with pytest.raises(RxNormBuildError, match="source are required"):
        _build(derived, tmp_path / "out")


def test_build_command(derived: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "medication-safety",
            "build-rxnorm-table",
            "--from",
            str(derived),
            "--from",
            str(derived.parent / "a-supplement"),
            "--out",
            str(out),
            "--sources",
            str(derived.parent / "sources"),
            "--supplement",
            str(derived.parent / "supplement.tsv"),
            "--not-prescribable",
            str(derived.parent / "not_prescribable.tsv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "KB ingredients: 4 (not prescribable, listed: 1)" in result.output
    assert (out / CONCEPTS_FILE).is_file()


SHARED_DERIVED = RXNORM_BASE
SHARED_A_SUPPLEMENT = RXNORM_A_SUPPLEMENT


@needs_rxnorm_sources
def test_the_shipped_table_is_reproducible_from_the_derived_tsvs(tmp_path: Path) -> None:
    shipped = Path(str(shipped_table_dir()))
    out = tmp_path / "rebuilt"
    build_table(
        [SHARED_DERIVED, SHARED_A_SUPPLEMENT],
        out,
        sources_dir=shipped.parent / "sources",
        supplement_path=shipped / "supplement.tsv",
        not_prescribable_path=shipped / "not_prescribable.tsv",
        release_label=_shipped_release_label(shipped),
    )
    for name in (CONCEPTS_FILE, NDC_FILE, RELEASE_FILE):
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), (
            f"{name} is stale: run `ehr medication-safety build-rxnorm-table --from "
            f"{SHARED_DERIVED} --from {SHARED_A_SUPPLEMENT}` and commit the result"
        )


def _shipped_release_label(shipped: Path) -> str:
    import json

    label = json.loads((shipped / RELEASE_FILE).read_text())["rxnorm_release"]
    assert isinstance(label, str)
    return label


def test_zip_fixture_helpers_write_valid_rrf() -> None:
    # Guard for the fixtures themselves: every RRF line has its trailing "|".
    for text, columns in ((CONSO, 18), (REL, 16), (SAT, 13)):
        for line in io.StringIO(text):
            assert line.rstrip("\n").count("|") == columns
