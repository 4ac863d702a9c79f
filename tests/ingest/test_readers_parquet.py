"""analysis.ingest.readers on Parquet files: typed values to text, value by value and in
bulk by dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.ingest.readers import ReadReport, common, file_sha256, read_parquet, read_text
from helpers.reader_files import data, problem

# --- Parquet --------------------------------------------------------------------------------


def test_parquet_values_to_text(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({
        "school_id": ["007", None],
        "n": pd.array([512, None], dtype="Int64"),
        "i": [1, 2],
        "x": [0.25, float("nan")],
        "whole": [12.0, 3.0],
        "flag": [True, False],
        "d": pd.to_datetime(["2024-04-15", None]),
    }).to_parquet(path)
    df, report = read_text(path)
    assert data(df) == [["007", "512", "1", "0.25", "12", "TRUE", "2024-04-15"],
                        [None, None, "2", None, "3", "FALSE", None]]
    assert df["source_row"].tolist() == [2, 3]
    assert report == ReadReport("p.parquet", "parquet", None, None, None, 1, (),
                                sha256=file_sha256(path), size=path.stat().st_size)


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"a": pd.Series([], dtype="int64")}).to_parquet(path)
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).expected == "at least one data row below the header (row 1)"



def test_parquet_columns_are_converted_in_bulk_to_the_same_texts(tmp_path):
    """Found in the regional run: a students table of 896,377 rows took 10 s to read, one
    Python call per value.  Columns are now converted by dtype at once; the texts are
    those of the value-by-value rule (:func:`common._value_text`) for every dtype."""
    df = pd.DataFrame({
        "i": np.array([1, -2, 0, 10**15], dtype="int64"),
        "I": pd.array([1, None, 3, -4], dtype="Int64"),
        "f": [1.0, np.nan, 0.1, -2.5],
        "g": [1e20, float("inf"), -0.0, 1e-5],
        "b": [True, False, True, False],
        "B": pd.array([True, None, False, True], dtype="boolean"),
        "s": ["a", "", None, "x y"],
        "S": pd.array(["a", None, "", "b"], dtype="string"),
        "d": pd.to_datetime(["2025-01-01", "2025-01-02 03:04", None, "2024-12-31"],
                            format="mixed"),
        "c": pd.Categorical(["x", "y", None, "x"]),
        "m": [1, "a", 2.5, None],
        "F": pd.array([1.0, None, 2.5, 3.0], dtype="Float64"),
        "u": np.array([1, 2, 3, 4], dtype="uint8"),
    })
    for col in df.columns:
        expected = [common._value_text(v) for v in df[col].tolist()]
        assert read_parquet._series_text(df[col]).tolist() == expected, col
    path = tmp_path / "t.parquet"
    df.drop(columns=["m"]).to_parquet(path, index=False)
    text, _ = read_text(path)
    assert text["g"].tolist() == ["100000000000000000000", "inf", "0", "1e-05"]
    assert text["I"].tolist() == ["1", None, "3", "-4"]
