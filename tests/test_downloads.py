"""Download files (publish/downloads.py): no formula injection, numbers stay numbers, Excel
niceties, the same bytes on every run, and never a partial file."""

from __future__ import annotations

import errno
import io
import os
import time
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import outputs
from analysis.outputs import OutputError
from analysis.publish import downloads
from analysis.publish.downloads import (csv_bytes, neutralise, neutralise_frame, write_csv,
                                        write_downloads, write_parquet, write_workbook)

HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "#N/A"]


@pytest.fixture
def hostile() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame({"Школа": HOSTILE,
                         "Разница": [-2.5, -0.125, 1.0, -3.75, 0.5, -1e-7, -10.0],
                         "Число": np.arange(-3, n - 3)})


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({
        "Школа": ["Гимназия № 1", "Лицей", None],
        "Балл": [0.1 + 0.2, np.nan, -1234.5678],
        "Учеников": pd.array([120, None, 7], dtype="Int64"),
        "ШНОР": [True, False, True],
    })


def read_sheet(path, index=0):
    return openpyxl.load_workbook(path).worksheets[index]


# --- neutralising --------------------------------------------------------------------------

def test_neutralise_prefixes_only_formula_starts():
    assert [neutralise(s) for s in HOSTILE[:-1]] == ["'" + s for s in HOSTILE[:-1]]
    assert neutralise("Школа № 5") == "Школа № 5" and neutralise("") == ""
    assert neutralise("a=b") == "a=b"


def test_neutralise_frame_leaves_numbers_and_fixes_column_names(hostile):
    df = hostile.rename(columns={"Число": "=Число"})
    df["Кат"] = pd.Categorical(["-x"] * len(df))
    out = neutralise_frame(df)
    assert list(out.columns) == ["Школа", "Разница", "'=Число", "Кат"]
    assert out["Школа"].tolist() == ["'" + s for s in HOSTILE[:-1]] + ["#N/A"]
    assert set(out["Кат"]) == {"'-x"}
    assert out["Разница"].dtype == "float64" and out["Разница"].min() < 0
    assert out["'=Число"].dtype == hostile["Число"].dtype
    assert df["Школа"].iloc[0] == HOSTILE[0]  # the input is not modified


def test_hostile_names_are_text_in_csv_and_negative_numbers_stay_numbers(hostile):
    text = csv_bytes(hostile).decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[1].startswith('"\'=HYPERLINK(""http://x"",""y"")";-2,5;-3')
    assert lines[6].startswith('"\'\nx";')  # CR as LF, as in the workbook
    for line, name in zip(lines[1:], HOSTILE):
        field = line.split(";")[0]
        assert field.startswith('"'), field  # text is quoted ...
        assert field[1] == "'" or name == "#N/A", field  # ... and neutralised
    back = pd.read_csv(io.BytesIO(csv_bytes(hostile)), sep=";", decimal=",",
                       encoding="utf-8-sig", keep_default_na=False)
    assert back["Разница"].tolist() == hostile["Разница"].tolist()
    assert back["Число"].tolist() == hostile["Число"].tolist()


def test_hostile_names_are_string_cells_in_xlsx_and_negative_numbers_stay_numbers(hostile,
                                                                                   tmp_path):
    ws = read_sheet(write_workbook({"Школы": hostile}, tmp_path / "t.xlsx"))
    for row, name in enumerate(HOSTILE, start=2):
        name_cell, diff, number = ws.cell(row, 1), ws.cell(row, 2), ws.cell(row, 3)
        assert name_cell.data_type == "s", name
        assert name_cell.value == (name if name == "#N/A" else "'" + name).replace("\r", "\n")
        assert diff.data_type == "n" and isinstance(diff.value, (int, float))  # 1.0 reads as 1
        assert diff.value == hostile["Разница"].iloc[row - 2]
        assert number.data_type == "n" and isinstance(number.value, int)
    assert ws.cell(2, 3).value == -3


# --- CSV -----------------------------------------------------------------------------------

def test_csv_is_excel_friendly_and_reads_back_to_the_same_numbers(table):
    data = csv_bytes(table)
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8")[1:]
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert text.split("\r\n")[:4] == ['"Школа";"Балл";"Учеников";"ШНОР"',
                                      '"Гимназия № 1";0,3;120;1',
                                      '"Лицей";;;0',
                                      ';-1234,5678;7;1']
    back = pd.read_csv(io.BytesIO(data), sep=";", decimal=",", encoding="utf-8-sig")
    assert back["Балл"].iloc[0] == 0.3 and np.isnan(back["Балл"].iloc[1])
    assert back["Балл"].iloc[2] == -1234.5678
    assert back["Учеников"].isna().tolist() == [False, True, False]
    assert back["ШНОР"].tolist() == [1, 0, 1] and back["Школа"].isna().iloc[2]


def test_csv_floats_have_no_exponent_and_a_point_on_request():
    df = pd.DataFrame({"x": [1e-7, 2.5e15, np.inf, 3.0]})
    assert csv_bytes(df).decode("utf-8-sig").split("\r\n")[1:5] == [
        "0,0000001", "2500000000000000", "", "3"]
    assert csv_bytes(df, decimal=".").decode("utf-8-sig").split("\r\n")[1] == "0.0000001"
    with pytest.raises(ValueError):
        csv_bytes(df, decimal=";")


# --- XLSX ----------------------------------------------------------------------------------

def test_workbook_layout(table, tmp_path):
    wide = pd.DataFrame({"id": [1, 2], "Очень длинное название": ["x" * 100, "y"]})
    name = "Школы/муниципалитеты: длинное имя листа!"  # 40 characters, with / and :
    path = write_workbook({name: table, "Широкая": wide, "Пусто": table.iloc[:0]},
                          tmp_path / "t.xlsx", formats={name: {"Балл": "0.0%"}})
    wb = openpyxl.load_workbook(path)
    title = wb.sheetnames[0]
    assert len(name) == 40 and len(title) == 31 and not set("[]:*?/\\") & set(title)
    assert wb.sheetnames[1:] == ["Широкая", "Пусто"]
    ws = wb[title]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:D4"
    assert [c.value for c in ws[1]] == list(table.columns)
    assert all(c.font.bold for c in ws[1])
    assert [(c.value, c.data_type) for c in ws[2]] == [
        ("Гимназия № 1", "s"), (0.3, "n"), (120, "n"), (1, "n")]
    assert [c.value for c in ws[3]] == ["Лицей", None, None, 0]
    assert ws["B2"].number_format == "0.0%" and ws["C2"].number_format == "0"
    widths = {k: d.width for k, d in ws.column_dimensions.items()}
    assert set(widths) == {"A", "B", "C", "D"}
    assert all(6 <= w <= 60 for w in widths.values())
    assert widths["A"] == len("Гимназия № 1") + 2
    wide_ws = wb["Широкая"]
    assert wide_ws.column_dimensions["A"].width == 6  # "id" and 1, 2: the minimum
    assert wide_ws.column_dimensions["B"].width == 60  # 100 characters: the maximum
    assert wide_ws["A2"].number_format == "0"
    empty = wb["Пусто"]
    assert empty.max_row == 1 and [c.value for c in empty[1]] == list(table.columns)


def test_sheet_names_stay_unique_after_sanitising(table, tmp_path):
    wb = openpyxl.load_workbook(write_workbook({"a/b": table, "a:b": table, "A?B": table},
                                               tmp_path / "t.xlsx"))
    assert wb.sheetnames == ["a_b", "a_b (2)", "A_B (3)"]


def test_workbook_refuses_formats_for_unknown_sheets_or_columns(table, tmp_path):
    with pytest.raises(ValueError, match="T/Нет"):
        write_workbook({"T": table}, tmp_path / "t.xlsx", formats={"T": {"Нет": "0"}})
    with pytest.raises(ValueError, match="U/Балл"):
        write_workbook({"T": table}, tmp_path / "t.xlsx", formats={"U": {"Балл": "0"}})
    assert not (tmp_path / "t.xlsx").exists()


# --- the same bytes on every run -----------------------------------------------------------

def test_same_bytes_at_different_times(table, tmp_path, monkeypatch):
    def write_all(folder):
        return [write_workbook({"Школы": table}, folder / "t.xlsx"),
                write_csv(table, folder / "t.csv"), write_parquet(table, folder / "t.parquet")]

    first = [p.read_bytes() for p in write_all(tmp_path / "a")]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 86400 + 7)  # zip entry stamps
    second = [p.read_bytes() for p in write_all(tmp_path / "b")]
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first[0])) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    assert core.count("2000-01-01T00:00:00Z") == 2 and "school-context" in core
    assert pd.read_parquet(tmp_path / "a" / "t.parquet")["Балл"].iloc[0] == 0.3


def test_parquet_keeps_text_as_is_and_rounds_floats(hostile, tmp_path):
    back = pd.read_parquet(write_parquet(hostile, tmp_path / "t.parquet"))
    assert back["Школа"].tolist() == HOSTILE
    df = pd.DataFrame({"x": [0.1 + 0.2]})
    assert pd.read_parquet(write_parquet(df, tmp_path / "x.parquet"))["x"].iloc[0] == 0.3
    with pytest.raises(ValueError):
        write_parquet(df, tmp_path / "x.csv")


# --- the convenience writer, and never a partial file ---------------------------------------

def test_write_downloads_writes_one_workbook_and_one_csv_per_table(table, hostile, tmp_path):
    paths = write_downloads({"schools": ("Школы", table), "risky": ("Риски", hostile)},
                            tmp_path / "dl", formats={"Школы": {"Балл": "0.00"}})
    assert paths == sorted([tmp_path / "dl" / "tables.xlsx",
                            tmp_path / "dl" / "csv" / "schools.csv",
                            tmp_path / "dl" / "csv" / "risky.csv"])
    assert (tmp_path / "dl" / "csv" / "risky.csv").read_bytes() == csv_bytes(hostile)
    wb = openpyxl.load_workbook(tmp_path / "dl" / "tables.xlsx")
    assert wb.sheetnames == ["Школы", "Риски"] and wb["Школы"]["B2"].number_format == "0.00"
    with pytest.raises(ValueError):
        write_downloads({"../x": ("X", table)}, tmp_path / "dl")
    with pytest.raises(ValueError):
        write_downloads({"a": ("X", table), "b": ("X", table)}, tmp_path / "dl")


@pytest.mark.parametrize("write", [
    lambda df, folder: write_workbook({"T": df}, folder / "t.xlsx"),
    lambda df, folder: write_csv(df, folder / "t.csv"),
    lambda df, folder: write_parquet(df, folder / "t.parquet"),
], ids=["xlsx", "csv", "parquet"])
def test_a_read_only_folder_raises_output_error_and_leaves_no_partial_file(write, table,
                                                                           tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "dl"
    folder.mkdir()
    write(table.iloc[:1], folder)  # an earlier version of the file
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def read_only(src, dst):  # root can write anywhere: simulate the read-only folder
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr(outputs.os, "replace", read_only)
    with pytest.raises(OutputError, match=r"could not write .*dl/t\.\w+: Read-only file system"):
        write(table, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary left


def test_a_failing_workbook_writes_nothing(table, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(downloads, "_fixed_zip", broken)
    with pytest.raises(OSError):
        write_workbook({"T": table}, tmp_path / "t.xlsx")
    assert list(tmp_path.iterdir()) == []
