"""Tests for analysis.ingest.readers: every analyst file becomes a table of text cells."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest.readers import (
    ReadOptions,
    ReadReport,
    common,
    file_sha256,
    read_parquet,
    read_text,
)

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


# --- CSV through the C parser: what it could get wrong ----------------------------------------


def test_ragged_rows_short_padded_long_empty_dropped(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1\n2,3,4,,,\n5,6\n", encoding="utf-8")
    df, report = read_text(path)
    assert list(df.columns)[2:] == ["a", "b", "c"]
    assert data(df) == [["1", None, None], ["2", "3", "4"], ["5", "6", None]]
    assert df["source_row"].tolist() == [2, 3, 4]
    assert report.notes == ()


def test_ragged_row_wider_than_every_line_before_it(tmp_path):
    # The only wide record is the last one, and its extra cell has a value.
    path = tmp_path / "r.csv"
    path.write_text("a;b\n1;2\n3;4;x\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_text(path)
    assert problem(exc) == Problem(
        "r.csv", "column 3", "a header name above every column that has values", (1,))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_quoted_line_breaks_keep_record_numbers(tmp_path, newline):
    text = newline.join(["id,comment", '1,"first', 'second, third"', "2,x", '3,"a', "", 'b"',
                         "4,y"]) + newline
    path = tmp_path / "q.csv"
    path.write_bytes(text.encode("utf-8"))
    df, report = read_text(path)
    # A row is a record: the header is row 1 and each record after it is one more row.
    assert df["source_row"].tolist() == [2, 3, 4, 5]
    assert data(df) == [["1", f"first{newline}second, third"], ["2", "x"],
                        ["3", f"a{newline}{newline}b"], ["4", "y"]]
    assert report.notes == ()


def test_quoted_line_breaks_with_empty_rows_and_title(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('Отчёт;;\n\nКод;Имя;Балл\n001;"Школа\n№ 5";4,5\n\n;;\n002;"";\n',
                    encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 3
    assert df["source_row"].tolist() == [4, 7]
    assert data(df) == [["001", "Школа\n№ 5", "4.5"], ["002", None, None]]
    assert report.notes == ("skipped 2 title rows above the header", "skipped 2 empty rows",
                            "converted decimal commas to points in 1 cell (columns: Балл)")


def test_blank_cells_and_rows_with_unicode_whitespace(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("a,b\n1, \n\xa0,\t\n\u3000 ,\x1c\n2,\xa0x\n", encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [2, 5]
    assert data(df) == [["1", " "], ["2", "\xa0x"]]  # blank cells are kept as they are
    assert report.notes == ("skipped 2 empty rows",)


def test_unicode_digits_follow_pythons_re(tmp_path):
    # Python's \d and \s in the documented patterns match Unicode digits and spaces.
    path = tmp_path / "u.csv"
    path.write_text("name;x;y\nА;١٢,٥;12,5\xa0\nБ;x,1;１２,５\n", encoding="utf-8")
    df, report = read_text(path)
    assert data(df) == [["А", "١٢.٥", "12.5\xa0"], ["Б", "x,1", "１２.５"]]
    assert report.notes == ("converted decimal commas to points in 3 cells (columns: x, y)",)


def test_header_after_many_numeric_title_rows(tmp_path):
    # The header is looked for in growing blocks of rows: one far down is still found.
    rows = [["1", "2"]] * 100 + [["a", "b"], ["3", "4,5"]]
    df, report = read_text(write_csv(tmp_path / "n.csv", rows, sep=";"))
    assert report.header_row == 101
    assert data(df) == [["3", "4.5"]]


def test_no_header_like_row_takes_the_first(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("\n1,2\n3,4\n", encoding="utf-8")
    df, report = read_text(path)
    assert report.header_row == 2
    assert list(df.columns)[2:] == ["1", "2"]
    assert data(df) == [["3", "4"]]


def test_explicit_utf8_keeps_bom_out_of_names(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbfyear,school_id\n2025,001\n")
    df, report = read_text(path, ReadOptions(encoding="utf-8"))
    assert list(df.columns)[2:] == ["year", "school_id"]
    assert report.encoding == "utf-8"
    # A BOM before a quote: for the csv module the first cell is not quoted.
    path.write_bytes(b'\xef\xbb\xbf"year",school_id\n2025,001\n')
    df, _ = read_text(path, ReadOptions(encoding="utf-8"))
    assert list(df.columns)[2:] == ['"year"', "school_id"]


def test_cp1251_with_quotes_and_line_breaks(tmp_path):
    text = 'Код;Наименование;Доля\r\n007;"Школа ""Лицей""\r\n№ 2";0,25\r\n'
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode("cp1251"))
    df, report = read_text(path)
    assert data(df) == [["007", 'Школа "Лицей"\r\n№ 2', "0.25"]]
    assert report.encoding == "cp1251"


def test_quote_left_open_at_the_end(tmp_path):
    # The C parser refuses this; the csv module reads the rest of the file as one cell.
    path = tmp_path / "o.csv"
    path.write_text('a,b\n1,"open\n2,3\n', encoding="utf-8")
    df, _ = read_text(path)
    assert data(df) == [["1", "open\n2,3\n"]]
    assert df["source_row"].tolist() == [2]


def test_cell_over_the_csv_field_limit(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,b\n1," + "x" * 200 + "\n", encoding="utf-8")
    limit = csv.field_size_limit(150)
    try:
        with pytest.raises(InputError) as exc:
            read_text(path)
    finally:
        csv.field_size_limit(limit)
    assert problem(exc).expected == "a readable .csv file"
    assert problem(exc).value == "Error: field larger than field limit (150)"


def test_ordinary_files_do_not_need_the_csv_module(tmp_path, monkeypatch):
    from analysis.ingest.readers import read_csv

    def refuse(*args):
        raise AssertionError("read by the csv module")

    monkeypatch.setattr(read_csv, "_parse_python", refuse)
    path = tmp_path / "t.csv"
    path.write_text('Title;;\n\nid;name;x\n1;"a\nb";2,5\n\n3;c\n4;d;5;;\n', encoding="utf-8")
    df, report = read_text(path)
    assert df["source_row"].tolist() == [4, 6, 7]
    assert data(df) == [["1", "a\nb", "2.5"], ["3", "c", None], ["4", "d", "5"]]
    assert report.decimal == ","


def test_whitespace_constant_is_pythons():
    from analysis.ingest.readers.common import WHITESPACE

    assert set(WHITESPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}


@PROPS
@given(cells_=st.lists(st.text("0123456789-.,; \t\xa0\x1c\u2003١٢１a,", max_size=8),
                       min_size=1, max_size=20))
def test_property_vectorised_patterns_are_pythons(cells_):
    import numpy as np

    values = np.array(cells_, dtype=object)
    for pattern in (common.NUMBER, common.COMMA_DECIMAL, common.POINT_DECIMAL):
        expected = [pattern.match(c) is not None for c in cells_]
        assert common._matches(values, pattern).tolist() == expected


# --- The C path against the previous pure-Python reader ----------------------------------------


def reference_read_csv(path, options=None):
    """The CSV path of the previous reader (csv.reader and per-cell regular expressions),
    kept as an oracle: ``(frame, report)``, or the ``InputError`` it raised."""
    import re

    from analysis.ingest.readers import read_csv as csv_reader
    from analysis.ingest.readers import table

    options = options or ReadOptions()

    number = re.compile(r"^\s*-?\d+([.,]\d+)?\s*$")
    comma_number = re.compile(r"^\s*-?\d+(,\d+)?\s*$")
    comma_decimal = re.compile(r"^\s*-?\d+,\d+\s*$")
    point_decimal = re.compile(r"^\s*-?\d+\.\d+\s*$")

    def blank(c):
        return c is None or c.strip() == ""

    name = path.name
    try:
        text, encoding, notes = csv_reader._decode(name, path.read_bytes(), options.encoding)
        if not text.strip(common.BOM + " \t\r\n"):
            raise common._empty(name)
        separator = ","
        for line in io.StringIO(text):
            if ";" in line or "," in line:
                separator = ";" if line.count(";") > line.count(",") else ","
                break
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
        except csv.Error as exc:
            raise common._unreadable(name, "csv", exc) from None
        rows = [(i, [c if c != "" else None for c in rec]) for i, rec in enumerate(records, 1)]
        filled = [(n, cells) for n, cells in rows if not all(blank(c) for c in cells)]
        if not filled:
            raise common._empty(name)

        def header_like(cells):
            full = [c for c in cells if not blank(c)]
            return len(full) >= 2 and 2 * len([c for c in full if not number.match(c)]) > len(
                full)

        if options.header_row is None:
            header_row, header = next((x for x in filled if header_like(x[1])), filled[0])
        else:
            found = [x for x in filled if x[0] == options.header_row]
            if not found:
                raise InputError(Problem(name, "", f"a header in row {options.header_row}",
                                         (options.header_row,), "an empty or missing row"))
            header_row, header = found[0]
        body = [(n, cells) for n, cells in filled if n > header_row]
        if not body:
            raise InputError(Problem(
                name, "", f"at least one data row below the header (row {header_row})"))
        width = max(len(header), *(len(cells) for _, cells in body))
        names = [(header[i] if i < len(header) else None) for i in range(width)]
        names = [None if c is None else c.replace(common.BOM, "").strip() or None for c in names]
        problems, keep, seen = [], [], set()
        for i, col in enumerate(names):
            if col is None:
                if any(i < len(cells) and not blank(cells[i]) for _, cells in body):
                    problems.append(Problem(name, f"column {i + 1}", "a header name above "
                                            "every column that has values", (header_row,)))
                continue
            if col in seen or col in table.RESERVED:
                problems.append(Problem(name, col, "unique column names" if col in seen else
                                        "a column name other than 'source_file' and "
                                        "'source_row'", (header_row,)))
            seen.add(col)
            keep.append(i)
        if problems:
            raise InputError(problems)
        body = [(n, [(cells + [None] * width)[i] for i in keep]) for n, cells in body]
        columns = [names[i] for i in keep]
        decimal, decimal_notes = ".", ()
        if options.decimal != ".":
            by_column = list(zip(*(cells for _, cells in body), strict=True))
            whole = options.decimal == "," or (separator == ";" and any(
                c is not None and comma_decimal.match(c) for col in by_column for c in col))
            targets = [i for i, col in enumerate(by_column) if whole or (
                any(c is not None and comma_decimal.match(c) for c in col)
                and not any(c is not None and point_decimal.match(c) for c in col))]
            changed = {}
            for _, cells in body:
                for i in targets:
                    c = cells[i]
                    if c is not None and "," in c and comma_number.match(c):
                        cells[i] = c.replace(",", ".")
                        changed[i] = changed.get(i, 0) + 1
            decimal = "," if (changed or whole) else "."
            if changed:
                cells_note = table._count(sum(changed.values()), "cell")
                names_note = ", ".join(columns[i] for i in sorted(changed))
                note = f"converted decimal commas to points in {cells_note} (columns: {names_note})"
                decimal_notes = (note,)
        layout = []
        if header_row > 1:
            layout.append(f"skipped {table._count(header_row - 1, 'title row')} above the header")
        empty = sum(1 for n, cells in rows if n > header_row and all(blank(c) for c in cells))
        if empty:
            layout.append(f"skipped {table._count(empty, 'empty row')}")
    except InputError as exc:
        return exc
    df = pd.DataFrame([cells for _, cells in body], columns=columns, dtype=object)
    df.insert(0, "source_row", pd.Series([n for n, _ in body], dtype="int64"))
    df.insert(0, "source_file", pd.Series([name] * len(body), dtype=object))
    report = ReadReport(name, "csv", encoding, separator, decimal, header_row,
                        notes + tuple(layout) + decimal_notes, sha256=file_sha256(path),
                        size=path.stat().st_size)
    return df, report


def assert_same_as_reference(path, options=None):
    options = options or ReadOptions()
    expected = reference_read_csv(path, options)
    if isinstance(expected, InputError):
        with pytest.raises(InputError) as exc:
            read_text(path, options)
        assert exc.value.problems == expected.problems
        return
    df, report = read_text(path, options)
    assert report == expected[1]
    assert list(df.columns) == list(expected[0].columns)
    assert df.dtypes.tolist() == expected[0].dtypes.tolist()
    assert df.values.tolist() == expected[0].values.tolist()
    assert all(c is None or type(c) is str for c in df.iloc[:, 2:].to_numpy().ravel())


TRICKY = {
    "title_empty_ragged.csv": (("Сводка;;;\r\n\r\nКод;Имя;Балл\r\n1;\"Иванов; Пётр\";12,5\r\n"
                                ";;\r\n2;Петров\r\n3;x;1,0;;\r\n"), "utf-8"),
    "multiline_quotes.csv": ('a,b,c\n"1\n2",3,"x ""y"" z"\n4,"5\r\n6",\n"",,\n7,8,9',
                             "utf-8-sig"),
    "cp1251.csv": ("Наименование ОО;Код ОО;Доля\r\nШкола № 5;007;12,5\r\nЛицей;008;7\r\n",
                   "cp1251"),
    "comma_decimals.csv": ('id,x,y,name\n1,"1,5","2,5","Иванов, Пётр"\n2,3,2.5,"a"\n',
                           "utf-8"),
    "quote_quirks.csv": ('a,b\n"x"y,z"w\n x ,"" \n"a""b",c\n', "utf-8"),
    "cr_only.csv": ("a;b\r1;2,5\r\r3;4\r", "utf-8"),
    "open_quote.csv": ('a,b\n1,2\n3,"4\n5', "utf-8"),
    "unnamed_values.csv": ("a,,c\n1,2,3\n", "utf-8"),
    "duplicate_names.csv": ("a; a ;b\n1;2;3\n", "utf-8"),
    "numeric_only.csv": ("1,2\n3,4\n", "utf-8"),
    "header_only.csv": ("a,b\n\n , \n", "utf-8"),
    "bom_twice.csv": ("\ufeff\ufeffa,b\n1,2\n", "utf-8-sig"),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_files_same_as_previous_reader(tmp_path, name):
    text, encoding = TRICKY[name]
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    assert_same_as_reference(path)
    assert_same_as_reference(path, ReadOptions(decimal=","))
    assert_same_as_reference(path, ReadOptions(encoding="utf-8" if encoding != "cp1251"
                                               else "cp1251", header_row=2))


def test_lone_surrogates_from_a_requested_encoding(tmp_path):
    # UTF-7 can decode to a lone surrogate, which Arrow cannot hold: checked cell by cell.
    path = tmp_path / "s.csv"
    path.write_bytes(b"a;b\n1,5;+2AA-\n+2AA-,5;2,5\n")
    assert_same_as_reference(path, ReadOptions(encoding="utf-7"))
    df, _ = read_text(path, ReadOptions(encoding="utf-7"))
    assert data(df) == [["1.5", "\ud800"], ["\ud800,5", "2.5"]]


def test_large_file_same_as_previous_reader(tmp_path):
    # Big enough for the C parser to read it in several chunks, with quoted line breaks.
    import random

    rng = random.Random(3)
    values = ["12", "12,5", "-0,75", "1.5", '"Иванов; Пётр"', '"a\nb"', '"x ""q"" y"', "",
              " ", "\xa0", "007", '"1\r\n2"']
    lines = ["Заголовок;;;", "", "Код;Имя;Балл;Доля"]
    for _ in range(20000):
        draw = rng.random()
        width = 4 if draw > 0.03 else rng.randint(0, 4)
        lines.append(";".join(rng.choice(values) for _ in range(width)))
    path = tmp_path / "large.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    assert_same_as_reference(path)


PIECES = ["a", "Иванов", "12", "12,5", " -0,75 ", "1.5", "١٢,٥", ",", ";", '"', '""', "\n",
          "\r\n", "\r", " ", "\xa0", "\t", "\ufeff", "№ 5"]


@PROPS
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=40),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]),
       options=st.sampled_from([ReadOptions(), ReadOptions(decimal=","),
                                ReadOptions(encoding="utf-8", header_row=2)]))
def test_property_same_as_previous_reader(tmp_path, pieces, encoding, options):
    path = tmp_path / "p.csv"
    text = "".join(pieces)
    path.write_bytes(text.encode(encoding, errors="replace"))
    assert_same_as_reference(path, options)


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
