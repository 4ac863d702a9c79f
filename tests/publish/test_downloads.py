"""Download files (publish/downloads.py): no formula injection, numbers stay numbers, Excel
niceties, the same bytes on every run, and never a partial file."""

from __future__ import annotations

import datetime as dt
import errno
import io
import math
import os
import time
import zipfile
from decimal import Decimal

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from analysis import outputs
from analysis.outputs import OutputError
from analysis.publish import downloads
from analysis.publish.downloads import (
    csv_bytes,
    neutralise,
    write_csv,
    write_parquet,
    write_workbook,
)

HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "#N/A"]
#: Text XlsxWriter would copy into the sheet XML unescaped (its rich-string marker): a formula.
RICH_INJECTION = ('<r><t>a</t></r></is></c><c r="Z9"><f>HYPERLINK("http://x")</f></c>'
                  '<c r="Z10" t="inlineStr"><is><r><t>b</t></r>')


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


# --- the previous implementation (openpyxl, a Python call per cell): the oracle --------------

def old_cell(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    text = neutralise(ILLEGAL_CHARACTERS_RE.sub("", str(v)))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def old_csv_cell(v, decimal):
    v = old_cell(v)
    if v is None or isinstance(v, int):
        return "" if v is None else str(v)
    if isinstance(v, float):
        exact = Decimal(repr(v))
        text = format(exact, "f") if abs(exact.adjusted()) <= 20 else repr(v)
        if "." in text and "e" not in text:
            text = text.rstrip("0").rstrip(".")
        return text.replace(".", decimal)
    return '"' + v.replace('"', '""') + '"'


def old_csv_bytes(df, *, decimal=","):
    data = outputs.round_frame(df)
    lines = [";".join(old_csv_cell(str(c), decimal) for c in data.columns)]
    lines += [";".join(old_csv_cell(v, decimal) for v in row)
              for row in data.itertuples(index=False, name=None)]
    return ("\ufeff" + "".join(line + "\r\n" for line in lines)).encode("utf-8")


def old_workbook(sheets, path, formats=None):
    """The cells, formats, widths, panes and filters the openpyxl writer produced."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    used = set()
    for name, df in sheets.items():
        ws = wb.create_sheet(downloads._sheet_title(name, used))
        data, fmts = outputs.round_frame(df), (formats or {}).get(name, {})
        for j, col in enumerate(data.columns, start=1):
            kind = data.iloc[:, j - 1].dtype
            default = ("0" if pd.api.types.is_integer_dtype(kind)
                       or pd.api.types.is_bool_dtype(kind)
                       else "0.000" if pd.api.types.is_float_dtype(kind) else None)
            fmt = fmts.get(str(col), default)
            header = ws.cell(row=1, column=j, value=old_cell(str(col)))
            header.data_type, header.font = "s", Font(bold=True)
            texts = [str(header.value)]
            for i, v in enumerate(data.iloc[:, j - 1], start=2):
                cell = ws.cell(row=i, column=j, value=old_cell(v))
                if isinstance(cell.value, str):
                    cell.data_type = "s"
                    texts.append(cell.value)
                elif cell.value is not None:
                    if fmt:
                        cell.number_format = fmt
                    texts.append(f"{cell.value:.3f}" if fmt == "0.000" else str(cell.value))
            longest = max(len(line) for text in texts for line in text.split("\n"))
            ws.column_dimensions[get_column_letter(j)].width = min(max(longest + 2, 6), 60)
        if data.shape[1]:
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = f"A1:{get_column_letter(data.shape[1])}{len(data) + 1}"
    wb.save(path)
    return path


def dump_workbook(path):
    """Per sheet: every written cell (value, type, number format, bold), the width of every
    column, the frozen pane and the autofilter, as openpyxl reads them back."""
    out = {}
    for ws in openpyxl.load_workbook(path).worksheets:
        cells = {c.coordinate: (c.value, c.data_type if c.value is not None else None,
                                c.number_format if c.value is not None else None, c.font.bold)
                 for row in ws.iter_rows() for c in row if c.value is not None or c.font.bold}
        widths = {get_column_letter(i): d.width for d in ws.column_dimensions.values()
                  for i in range(d.min, d.max + 1)}
        out[ws.title] = (cells, widths, ws.freeze_panes, ws.auto_filter.ref)
    return out


@pytest.fixture
def tricky() -> pd.DataFrame:
    """Every kind of column the downloads meet, and the values that are hard to write."""
    rng = np.random.default_rng(7)
    text = ["a;b", 'q"uote', "line\nbreak", "cr\rx", "crlf\r\ny", "=1+2", "+7", "-x", "@a",
            "\tt", None, "", "  pad ", "ctl\x01\x02z", "Ёлка № 5", "#N/A", np.nan,
            "<r>x</r>", RICH_INJECTION, "x" * 70]
    floats = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-7, 2.5e15, 1e25, -1e-25, 3.0, 0.1 + 0.2,
              -1234.5678, 1 / 3, 123456789.123456, 9.9996, -9.9996, 1e16, 1.2345678901234e19,
              5e-5, 1e-4]
    n = 20 * 12
    return pd.DataFrame({
        "Текст": text * 12,
        "=Формула": floats * 12,
        "Целое": np.arange(-n // 2, n // 2),
        "Int64": pd.array([None, 1, -2, 3] * (n // 4), dtype="Int64"),
        "bool": [True, False, True] * (n // 3),
        "boolean": pd.array([True, None, False] * (n // 3), dtype="boolean"),
        "Float64": pd.array([1.5, None, -2.25] * (n // 3), dtype="Float64"),
        "mixed": [1, 1.0, True, "x", None, np.nan, np.inf, Decimal("1.50"), dt.date(2024, 1, 2),
                  "=y", -0.0, 0.1 + 0.2] * (n // 12),
        "cat": pd.Categorical(["b", "a", None, "=c"] * (n // 4),
                              categories=["a", "b", "=c", "unused and very long"]),
        "cat_int": pd.Categorical([1, 2, None] * (n // 3)),
        "date": pd.to_datetime(["2024-01-02", None, "2025-03-04 05:06:07"] * (n // 3),
                               format="ISO8601"),
        "string": pd.Series(["x", None, "-y"] * (n // 3), dtype="string"),
        "random": rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n),
        "uint": np.arange(n, dtype=np.uint64) * 10**15,
        "float32": rng.standard_normal(n).astype(np.float32),
        "": ["", "y"] * (n // 2),
    })


# --- neutralising --------------------------------------------------------------------------

def test_neutralise_prefixes_only_formula_starts():
    assert [neutralise(s) for s in HOSTILE[:-1]] == ["'" + s for s in HOSTILE[:-1]]
    assert neutralise("Школа № 5") == "Школа № 5" and neutralise("") == ""
    assert neutralise("a=b") == "a=b"


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
                                      ';-1234,568;7;1']
    back = pd.read_csv(io.BytesIO(data), sep=";", decimal=",", encoding="utf-8-sig")
    assert back["Балл"].iloc[0] == 0.3 and np.isnan(back["Балл"].iloc[1])
    assert back["Балл"].iloc[2] == -1234.568
    assert back["Учеников"].isna().tolist() == [False, True, False]
    assert back["ШНОР"].tolist() == [1, 0, 1] and back["Школа"].isna().iloc[2]


def test_csv_floats_have_no_exponent_and_a_point_on_request():
    df = pd.DataFrame({"x": [1e-7, 2.5e15, np.inf, 3.0]})
    assert csv_bytes(df).decode("utf-8-sig").split("\r\n")[1:5] == [
        "0,0000001", "2500000000000000", "", "3"]
    assert csv_bytes(df, decimal=".").decode("utf-8-sig").split("\r\n")[1] == "0.0000001"
    with pytest.raises(ValueError):
        csv_bytes(df, decimal=";")


def test_csv_is_byte_identical_to_the_previous_writer(tricky, monkeypatch):
    frames = [tricky, tricky.iloc[:0], tricky.iloc[::-1], pd.DataFrame(index=range(3)),
              pd.DataFrame(), pd.DataFrame({"x": [np.nan, None, np.inf]}, dtype=object),
              pd.DataFrame({"x": np.linspace(-1e6, 1e6, 1001) / 7})]
    for df in frames:
        for decimal in (",", "."):
            assert csv_bytes(df, decimal=decimal) == old_csv_bytes(df, decimal=decimal)
    monkeypatch.setattr(downloads, "_CHUNK", 7)  # rows joined a few at a time
    assert csv_bytes(tricky) == old_csv_bytes(tricky)
    assert csv_bytes(tricky.iloc[:7]) == old_csv_bytes(tricky.iloc[:7])


def test_write_csv_writes_csv_bytes(tricky, tmp_path):
    assert write_csv(tricky, tmp_path / "t.csv").read_bytes() == csv_bytes(tricky)
    assert write_csv(tricky, tmp_path / "p.csv", decimal=".").read_bytes() == csv_bytes(
        tricky, decimal=".")
    with pytest.raises(ValueError):
        write_csv(tricky, tmp_path / "x.csv", decimal=";")
    assert not (tmp_path / "x.csv").exists()


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


def test_workbook_reads_back_as_the_previous_writer_wrote_it(tricky, table, tmp_path,
                                                             monkeypatch):
    sheets = {"Т/1": tricky, "Пусто": tricky.iloc[:0], "Школы": table,
              "Широкая": pd.DataFrame({"id": [1, 2], "Длинная": ["x" * 100, "y"]})}
    formats = {"Т/1": {"=Формула": "0.0%", "Целое": "0.000", "mixed": "0.00"}}
    old = dump_workbook(old_workbook(sheets, tmp_path / "old.xlsx", formats))
    new = dump_workbook(write_workbook(sheets, tmp_path / "new.xlsx", formats=formats))
    assert list(new) == list(old) == ["Т_1", "Пусто", "Школы", "Широкая"]
    for title in old:
        assert new[title] == old[title], title
    monkeypatch.setattr(downloads, "_CHUNK", 7)  # cells converted a few rows at a time
    chunked = dump_workbook(write_workbook(sheets, tmp_path / "chunked.xlsx", formats=formats))
    assert chunked == new


def test_text_that_looks_like_excel_markup_stays_text(tmp_path):
    df = pd.DataFrame({"x": ["<r>x</r>", RICH_INJECTION, "<r>", "a<r>b</r>"],
                       RICH_INJECTION: [1, 2, 3, 4], "escape": ["_x0041_", "", "", ""]})
    path = write_workbook({"T": df}, tmp_path / "t.xlsx")
    with zipfile.ZipFile(path) as z:
        xml = z.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml  # no formula got in
    assert b"_x005F_x0041_" in xml  # Excel shows "_x0041_", not the "A" it encodes
    ws = read_sheet(path)
    assert [ws.cell(i, 1).value for i in range(2, 6)] == df["x"].tolist()
    assert ws.cell(1, 2).value == RICH_INJECTION and ws.cell(1, 2).font.bold
    assert ws.max_row == 5 and ws.max_column == 3


def test_a_table_longer_than_a_sheet_continues_on_numbered_sheets(table, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(downloads, "_SHEET_ROWS", 2)  # Excel: 1,048,575 rows under the header
    long = pd.concat([table] * 2, ignore_index=True)  # 6 rows: 3 sheets
    path = write_workbook({"Школы": long, "Школы (2)": table.iloc[:1]}, tmp_path / "t.xlsx",
                          formats={"Школы": {"Балл": "0.0%"}})
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Школы", "Школы (2)", "Школы (3)", "Школы (2) (2)"]
    rows = []
    for ws in wb.worksheets[:3]:
        assert [c.value for c in ws[1]] == list(table.columns) and ws[1][0].font.bold
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:D{ws.max_row}"
        assert ws["B2"].number_format == "0.0%" or ws["B2"].value is None
        rows += [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert rows == [["Гимназия № 1", 0.3, 120, 1], ["Лицей", None, None, 0],
                    [None, -1234.568, 7, 1]] * 2
    assert wb.worksheets[3].max_row == 2


def test_sheet_names_are_cut_in_utf16_units(table, tmp_path):
    name = "😀" * 20  # 40 UTF-16 units
    wb = openpyxl.load_workbook(write_workbook({name: table, name + "x": table,
                                                "a\x01b": table}, tmp_path / "t.xlsx"))
    assert wb.sheetnames == ["😀" * 15, "😀" * 13 + " (2)", "ab"]


def test_zip_stamps_are_fixed_in_place(table, tmp_path):
    data = write_workbook({"T": table}, tmp_path / "t.xlsx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert {(i.date_time, i.create_system, i.external_attr) for i in infos} == {
            ((1980, 1, 1, 0, 0, 0), 3, 0o644 << 16)}
        contents = {i.filename: z.read(i) for i in infos}
    with zipfile.ZipFile(io.BytesIO(downloads._rezip(data))) as z:  # the slow way: the same
        assert {i.filename: z.read(i) for i in z.infolist()} == contents
        assert {(i.date_time, i.create_system, i.external_attr) for i in z.infolist()} == {
            ((1980, 1, 1, 0, 0, 0), 3, 0o644 << 16)}
    assert downloads._fixed_zip(data) == data


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


# --- never a partial file -------------------------------------------------------------------

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
