"""analysis.ingest.readers on XLSX workbooks: title rows, sheets, typed values, formula
errors; and corrupt binary files (XLSX, Parquet)."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from analysis.errors import InputError, Problem
from analysis.ingest.readers import ReadOptions, read_text
from helpers.reader_files import data, problem, write_xlsx

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
