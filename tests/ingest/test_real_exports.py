"""The same region as an analyst's export: Russian headers, Windows-1251, ';', decimal
commas, percent shares (CSV), or an XLSX with a title row -- gives the same tidy tables."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.files import FILES
from analysis.ingest import schema, stage
from helpers.exports import PERCENT, RU_RESULTS, RU_SCHOOLS, export, mapping_yaml
from helpers.project import make_project


def canonical_run(tmp_path, region, name):
    root = make_project(tmp_path / name, region)
    keep_s = list(schema.SCHOOLS_REQUIRED) + list(PERCENT)
    region_s = region.schools[keep_s]
    region_s.to_csv(root / "data/raw/schools.csv", index=False)
    region.results[list(RU_RESULTS)].to_csv(root / "data/raw/results.csv", index=False)
    return root, region_s


def run_prepare(root):
    return stage.run_prepare(root, year=2025, raw_dir="data/raw", mapping=None, sheet=None,
                             header_row=None, quality_procedures=["VPR", "OGE"],
                             quality_subjects=["rus", "math"], quality_grades=[5, 6, 9])


def same(a, b, row_offset=0):
    """Equal tables; rows keep the analyst's row numbers (shifted by title rows)."""
    for name in ("schools", "results", "school_year"):
        x, y = getattr(a, name), getattr(b, name)
        if "source_row" in y:
            y = y.assign(source_row=y["source_row"] - row_offset)
        pd.testing.assert_frame_equal(x.drop(columns="source_file", errors="ignore"),
                                      y.drop(columns="source_file", errors="ignore"))


@pytest.fixture
def canonical(tmp_path, tiny_region):
    root, schools = canonical_run(tmp_path, tiny_region, "canonical")
    return run_prepare(root), schools


def test_windows_1251_semicolon_decimal_comma_percent_export(tmp_path, tiny_region, canonical):
    expected, schools = canonical
    root = make_project(tmp_path / "cp1251", None)
    raw = root / "data" / "raw"
    for df, names, stem in ((schools, RU_SCHOOLS, "schools"),
                            (tiny_region.results, RU_RESULTS, "results")):
        export(df, names).to_csv(raw / f"{stem}.csv", sep=";", decimal=",", index=False,
                                 encoding="cp1251")
    (raw / "mapping.yaml").write_text(mapping_yaml(), encoding="utf-8")
    assert ";" in (raw / "schools.csv").read_bytes().decode("cp1251").splitlines()[0]
    same(expected, run_prepare(root))
    # same file names and rows as the canonical files: the processed data are byte-identical
    canonical_root = tmp_path / "canonical"
    for name in ("schools", "results", "school_year"):
        path = FILES[name]
        assert (root / path).read_bytes() == (canonical_root / path).read_bytes(), name


def test_xlsx_with_a_title_row_and_russian_headers(tmp_path, tiny_region, canonical):
    expected, schools = canonical
    root = make_project(tmp_path / "xlsx", None)
    raw = root / "data" / "raw"
    for df, names, stem in ((schools, RU_SCHOOLS, "schools"),
                            (tiny_region.results, RU_RESULTS, "results")):
        with pd.ExcelWriter(raw / f"{stem}.xlsx") as xl:
            pd.DataFrame([["Выгрузка РСОКО, 2025"]]).to_excel(xl, index=False, header=False)
            export(df, names).to_excel(xl, index=False, startrow=2)
    (raw / "mapping.yaml").write_text(mapping_yaml(), encoding="utf-8")
    same(expected, run_prepare(root), row_offset=2)  # header in row 3 under a title
