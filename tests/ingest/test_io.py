"""Reading raw tables: every bad cell is named by file, row and column."""

import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.ingest import io

HEADER = "year,school_id,school_name,municipality,settlement_type,school_type,enrollment"


def write(tmp_path, text, name="schools.csv"):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_reads_canonical_csv_with_types_and_source_rows(tmp_path):
    write(tmp_path, HEADER + ",share_low_income\n2025,007,СОШ № 7,МО,city,secondary,512,0.25\n")
    df = io.read_table(tmp_path, "schools")
    assert df.loc[0, "school_id"] == "007"
    assert df.loc[0, "enrollment"] == 512 and df.loc[0, "share_low_income"] == 0.25
    assert df.loc[0, "source_row"] == 2 and df.loc[0, "source_file"] == "schools.csv"


def test_all_problems_are_reported_at_once(tmp_path):
    write(tmp_path, HEADER + ",share_low_income\n"
          "2025,1,A,M,city,secondary,12.5,0.2\n"
          "2025,2,B,M,metropolis,secondary,100,1.4\n")
    with pytest.raises(InputError) as err:
        io.read_table(tmp_path, "schools")
    lines = str(err.value).splitlines()
    assert len(lines) == 4
    assert lines[0] == "The input data cannot be used (3 problems):"
    assert any("schools.csv, row 2, column 'enrollment': got '12.5'; expected a whole number" in x
               for x in lines)
    assert any("row 3, column 'settlement_type': got 'metropolis'; expected one of city" in x
               for x in lines)
    assert any("row 3, column 'share_low_income': got '1.4'; expected a share from 0 to 1"
               in x for x in lines)


def test_missing_required_column_is_named(tmp_path):
    write(tmp_path, "year,school_id\n2025,1\n")
    with pytest.raises(InputError,
                       match="column 'school_name'; expected a column for 'school_name'"):
        io.read_table(tmp_path, "schools")


def test_missing_table_and_ambiguous_table(tmp_path):
    with pytest.raises(InputError, match="schools.csv, schools.xlsx or schools.parquet"):
        io.read_table(tmp_path, "schools")
    assert io.read_table(tmp_path, "students", required=False) is None
    write(tmp_path, HEADER + "\n")
    pd.DataFrame({"year": [2025]}).to_parquet(tmp_path / "schools.parquet")
    with pytest.raises(InputError, match="found 2"):
        io.read_table(tmp_path, "schools")


def test_parquet_and_csv_give_the_same_table(tmp_path):
    write(tmp_path, HEADER + "\n2025,010001,A,M,village,basic,40\n")
    a = io.read_table(tmp_path, "schools").drop(columns="source_file")
    (tmp_path / "schools.csv").unlink()
    pd.DataFrame({"year": [2025], "school_id": ["010001"], "school_name": ["A"],
                  "municipality": ["M"], "settlement_type": ["village"],
                  "school_type": ["basic"], "enrollment": [40]}).to_parquet(
        tmp_path / "schools.parquet")
    b = io.read_table(tmp_path, "schools").drop(columns="source_file")
    pd.testing.assert_frame_equal(a, b)


def test_empty_file_is_a_clear_error(tmp_path):
    write(tmp_path, "")
    with pytest.raises(InputError, match="schools.csv; expected a header row and at least one"):
        io.read_table(tmp_path, "schools")
