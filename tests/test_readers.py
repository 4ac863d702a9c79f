"""Tests for analysis.ingest.readers: every analyst file becomes a table of text cells."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest.readers import ReadOptions, ReadReport, file_sha256, read_text

CP1251_TEXT = "Наименование ОО;Код ОО;Доля\r\nШкола № 5;007;12,5\r\n"


def write_csv(path, rows, encoding="utf-8", sep=","):
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path, sheets):
    """``sheets``: {title: list of rows}; rows are lists of cell values."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def data(df):
    """The text cells without the source columns, as lists."""
    return df.drop(columns=["source_file", "source_row"]).values.tolist()


def problem(exc_info) -> Problem:
    (only,) = exc_info.value.problems
    return only


# --- CSV: encodings, separators -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_csv_with_and_without_bom(tmp_path, encoding):
    path = write_csv(tmp_path / "schools.csv",
                     [["Код ОО", " Наименование ОО "], ["007", "Школа № 5"], ["12", ""]],
                     encoding)
    df, report = read_text(path)
    assert list(df.columns) == ["source_file", "source_row", "Код ОО", "Наименование ОО"]
    assert data(df) == [["007", "Школа № 5"], ["12", None]]
    assert df["source_file"].tolist() == ["schools.csv"] * 2
    assert df["source_row"].tolist() == [2, 3]
    assert df["source_row"].dtype == "int64"
    assert report == ReadReport("schools.csv", "csv", encoding, ",", ".", 1, (),
                                sha256=file_sha256(path), size=path.stat().st_size)
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cells_are_python_str_or_none(tmp_path):
    df, _ = read_text(write_csv(tmp_path / "t.csv", [["a", "b"], ["1", ""], [" x ", "y"]]))
    cells = df[["a", "b"]].to_numpy().ravel().tolist()
    assert cells == ["1", None, " x ", "y"]  # values are not stripped
    assert all(c is None or type(c) is str for c in cells)
    assert df["a"].dtype == object


def test_windows_1251_semicolon_and_decimal_comma(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(CP1251_TEXT.encode("cp1251"))
    df, report = read_text(path)
    assert list(df.columns)[2:] == ["Наименование ОО", "Код ОО", "Доля"]
    assert data(df) == [["Школа № 5", "007", "12.5"]]
    assert (report.encoding, report.separator, report.decimal) == ("cp1251", ";", ",")
    assert report.notes == (
        "decoded as Windows-1251 (the file is not valid UTF-8)",
        "converted decimal commas to points in 1 cell (columns: Доля)",
    )


def test_explicit_encoding(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(CP1251_TEXT.encode("cp1251"))
    _, report = read_text(path, ReadOptions(encoding="cp1251"))
    assert report.encoding == "cp1251"
    with pytest.raises(InputError) as exc:
        read_text(path, ReadOptions(encoding="utf-8"))
    assert problem(exc).expected == "a text file in the 'utf-8' encoding"


def test_semicolon_decimal_comma_leaves_names_untouched(tmp_path):
    path = write_csv(tmp_path / "s.csv",
                     [["ФИО", "Балл", "Код"], ["Иванов, Пётр", "12,5", "3"],
                      ["Петров", " -0,75 ", "4,0"], ["1,2,3", "7", "x"]], sep=";")
    df, report = read_text(path)
    assert data(df) == [["Иванов, Пётр", "12.5", "3"], ["Петров", " -0.75 ", "4.0"],
                        ["1,2,3", "7", "x"]]
    assert report.decimal == ","
    assert report.notes == ("converted decimal commas to points in 3 cells (columns: Балл, Код)",)


def test_semicolon_without_decimal_commas_keeps_points(tmp_path):
    path = write_csv(tmp_path / "s.csv", [["a", "b"], ["1.5", "x,y"]], sep=";")
    df, report = read_text(path)
    assert data(df) == [["1.5", "x,y"]]
    assert (report.separator, report.decimal, report.notes) == (";", ".", ())


def test_comma_csv_quoted_decimal_comma_column_rule(tmp_path):
    path = write_csv(tmp_path / "c.csv", [["a", "b", "name"], ["12,5", "1,5", "Иванов, Пётр"],
                                          ["3", "2.5", "Петров"]])
    df, report = read_text(path)
    # Column a has only comma decimals: converted; column b also uses points: left alone.
    assert data(df) == [["12.5", "1,5", "Иванов, Пётр"], ["3", "2.5", "Петров"]]
    assert report.decimal == ","


def test_forced_decimal_point_disables_conversion(tmp_path):
    path = write_csv(tmp_path / "s.csv", [["a", "b"], ["12,5", "x"]], sep=";")
    df, report = read_text(path, ReadOptions(decimal="."))
    assert data(df) == [["12,5", "x"]]
    assert report.decimal == "."


def test_empty_rows_are_dropped_keeping_row_numbers(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("a,b\n1,2\n\n,\n3,4\n  ,  \n5,\n", encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [2, 5, 7]
    assert data(df) == [["1", "2"], ["3", "4"], ["5", None]]
    assert report.notes == ("skipped 3 empty rows",)


def test_title_rows_in_csv_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Результаты ВПР 2024;;\n;;\nКод;Класс;Балл\n001;4;3,5\n", encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 3
    assert df["source_row"].tolist() == [4]
    assert data(df) == [["001", "4", "3.5"]]
    assert "skipped 2 title rows above the header" in report.notes


def test_one_column_csv(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("school_id\n001\n002\n", encoding="utf-8")
    df, report = read_text(path)
    assert data(df) == [["001"], ["002"]] and report.header_row == 1


def test_bom_removed_from_header_and_names_stripped(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf  year , school_id\n2025,001\n")
    df, _ = read_text(path)
    assert list(df.columns)[2:] == ["year", "school_id"]


# --- CSV errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"  \r\n\n  ", b"\xef\xbb\xbf\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("empty.csv", "", "a header row and at least one data row")
    assert "empty.csv" in str(exc.value)


def test_header_only(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("h.csv", "", "at least one data row below the header (row 1)")


def test_duplicate_headers_after_strip(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["a", " a", "b"], ["1", "2", "3"]])
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem("d.csv", "a", "unique column names", (1,))


def test_reserved_header_name(tmp_path):
    path = write_csv(tmp_path / "d.csv", [["a", "source_row"], ["1", "2"]])
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).column == "source_row"


def test_values_without_header_name(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b\n1,2,3\n4,5,\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem(
        "w.csv", "column 3", "a header name above every column that has values", (1,))


def test_empty_unnamed_trailing_column_is_dropped(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b,\n1,2,\n", encoding="utf-8")
    df, _ = read_text(path)
    assert list(df.columns)[2:] == ["a", "b"]


@pytest.mark.parametrize("name", ["data.xls", "data.txt", "data"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).expected == "a .csv, .xlsx or .parquet file"
    assert problem(exc).file == name


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc:
        read_text(tmp_path / "nope.csv")
    assert problem(exc).expected == "an existing file"


def test_explicit_header_row_on_empty_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path, ReadOptions(header_row=2))
    assert problem(exc) == Problem("x.csv", "", "a header in row 2", (2,),
                                   "an empty or missing row")


def test_invalid_options():
    with pytest.raises(ValueError):
        ReadOptions(header_row=0)
    with pytest.raises(ValueError):
        ReadOptions(decimal=";")


# --- XLSX -----------------------------------------------------------------------------------


@pytest.fixture
def titled_xlsx(tmp_path):
    """Two merged title rows above the header, an empty row, an error cell and numbers."""
    path = tmp_path / "results.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "ВПР"
    ws["A1"] = "Результаты ВПР 2024"
    ws.merge_cells("A1:E1")
    ws["A2"] = "Муниципалитет: все"
    ws.merge_cells("A2:E2")
    ws.append(["Код ОО", "Наименование ОО", "Участники", "Доля", "Дата"])
    ws.append(["007", "Школа № 5", 512, 0.25, dt.datetime(2024, 4, 15)])
    ws.append(["010", "Лицей, 2", 12.0, 1 / 3, dt.date(2024, 5, 1)])
    ws.append([None] * 5)
    ws.append(["011", None, 30, None, dt.datetime(2024, 5, 1, 9, 30)])
    ws["D7"] = "#DIV/0!"
    ws["D7"].data_type = "e"
    other = wb.create_sheet("Лист2")
    other.append(["x", "y"])
    other.append([1.5, "z"])
    wb.save(path)
    return path


def test_xlsx_title_rows_numbers_dates_and_errors(titled_xlsx):
    df, report = read_text(titled_xlsx)
    assert report.header_row == 3
    assert df["source_row"].tolist() == [4, 5, 7]
    assert list(df.columns)[2:] == ["Код ОО", "Наименование ОО", "Участники", "Доля", "Дата"]
    assert data(df) == [
        ["007", "Школа № 5", "512", "0.25", "2024-04-15"],
        ["010", "Лицей, 2", "12", repr(1 / 3), "2024-05-01"],
        ["011", None, "30", "#DIV/0!", "2024-05-01T09:30:00"],
    ]
    assert (report.format, report.encoding, report.separator, report.decimal) == (
        "xlsx", None, None, ".")
    assert report.notes == (
        "formula errors in cells D7",
        "skipped 2 title rows above the header",
        "skipped 1 empty row",
    )


@pytest.mark.parametrize("sheet", ["Лист2", 1])
def test_xlsx_sheet_by_name_and_index(titled_xlsx, sheet):
    df, report = read_text(titled_xlsx, ReadOptions(sheet=sheet))
    assert data(df) == [["1.5", "z"]]
    assert report.header_row == 1
    assert report.notes == ("read sheet 'Лист2'",)


def test_xlsx_explicit_header_row(tmp_path):
    # A two-cell text title fools the detection; the analyst names the header row.
    path = write_xlsx(tmp_path / "x.xlsx", {"S": [["Отчёт", "2024 год"], ["a", "b", "c"],
                                                  ["1", 2, 3.5]]})
    with pytest.raises(InputError):  # row 1 taken as the header: column 3 has no name
        read_text(path)
    df, report = read_text(path, ReadOptions(header_row=2))
    assert report.header_row == 2
    assert list(df.columns)[2:] == ["a", "b", "c"]
    assert df["source_row"].tolist() == [3]
    assert data(df) == [["1", "2", "3.5"]]


def test_xlsx_wrong_header_row_names_unnamed_columns(titled_xlsx):
    with pytest.raises(InputError) as exc:
        read_text(titled_xlsx, ReadOptions(header_row=2))
    assert exc.value.problems[0] == Problem(
        "results.xlsx", "column 2", "a header name above every column that has values", (2,))


def test_xlsx_missing_sheet(titled_xlsx):
    with pytest.raises(InputError) as exc:
        read_text(titled_xlsx, ReadOptions(sheet="Итоги"))
    assert problem(exc) == Problem(
        "results.xlsx", "", "a sheet named 'Итоги' (the file has: ВПР, Лист2)")
    with pytest.raises(InputError) as exc:
        read_text(titled_xlsx, ReadOptions(sheet=5))
    assert problem(exc).expected == "a sheet number 5 (counting from 0; the file has: ВПР, Лист2)"


def test_xlsx_leading_zeros_and_decimal_comma_text(tmp_path):
    path = write_xlsx(tmp_path / "s.xlsx", {"S": [["id", "share", "name"],
                                                  ["007", "12,5", "Иванов, Пётр"],
                                                  ["0001", "3", "x"]]})
    df, report = read_text(path)
    assert data(df) == [["007", "12.5", "Иванов, Пётр"], ["0001", "3", "x"]]
    assert report.decimal == ","


def test_xlsx_empty_sheet_and_header_only(tmp_path):
    path = write_xlsx(tmp_path / "e.xlsx", {"S": []})
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).expected == "a header row and at least one data row"
    path = write_xlsx(tmp_path / "h.xlsx", {"S": [["Title"], [], ["a", "b"]]})
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc).expected == "at least one data row below the header (row 3)"


@pytest.mark.parametrize("suffix,fmt", [(".xlsx", "xlsx"), (".parquet", "parquet")])
def test_corrupt_binary_files(tmp_path, suffix, fmt):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"this is not a real file")
    with pytest.raises(InputError) as exc:
        read_text(path)
    p = problem(exc)
    assert p.expected == f"a readable .{fmt} file"
    assert p.value and len(p.value) <= 200


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


# --- Properties -----------------------------------------------------------------------------

# Cyrillic without ё/Ё: cp1251 bytes of "Рё" happen to be valid UTF-8, which no detector can
# tell apart; every other Cyrillic letter is 0xC0-0xFF in cp1251 and never valid UTF-8 there.
ALPHABET = "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмнопрстуфхцчшщъыьэюяABCxyz0123456789 "
words = st.text(ALPHABET, max_size=8).map(str.strip)
numbers = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: f"{x:.3f}"))
cells = st.one_of(words, numbers).map(lambda s: s or None)
names = st.text("abcdefxyzАБВабв", min_size=1, max_size=6)
PROPS = settings(max_examples=50, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def tables(draw):
    header = draw(st.lists(names, min_size=2, max_size=4, unique=True))
    first = st.one_of(words.filter(bool), numbers)
    row = st.tuples(first, st.lists(cells, min_size=len(header) - 1,
                                    max_size=len(header) - 1))
    rows = [[a, *rest] for a, rest in draw(st.lists(row, min_size=1, max_size=5))]
    return header, rows


@PROPS
@given(table=tables(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]),
       sep=st.sampled_from([",", ";"]))
def test_property_csv_round_trip(tmp_path, table, encoding, sep):
    header, rows = table
    path = write_csv(tmp_path / "p.csv", [header, *[[c or "" for c in r] for r in rows]],
                     encoding, sep)
    df, report = read_text(path)
    assert list(df.columns)[2:] == header
    assert data(df) == rows
    assert df["source_row"].tolist() == list(range(2, len(rows) + 2))
    assert report.separator == sep and report.header_row == 1


@PROPS
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=5),
       digits=st.integers(1, 4))
def test_property_decimal_comma(tmp_path, values, digits):
    dotted = [f"{v:.{digits}f}" for v in values]
    rows = [["Иванов, Пётр", d.replace(".", ",")] for d in dotted]
    df, report = read_text(write_csv(tmp_path / "d.csv", [["name", "value"], *rows], sep=";"))
    assert df["value"].tolist() == dotted
    assert df["name"].tolist() == ["Иванов, Пётр"] * len(values)
    assert report.decimal == ","
