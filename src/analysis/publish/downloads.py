"""Downloadable tables: Excel for officials, CSV and Parquet for machines.

Safe: in CSV and Excel, text starting with ``= + - @``, tab or CR (OWASP "CSV injection")
gets a leading ``'`` and never runs as a formula; numeric columns stay numbers (Parquet,
typed data, keeps text as is).  The same bytes on every run (floats rounded, fixed workbook
dates and zip stamps).  Atomic: a file appears whole or an OutputError is raised.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter
from pandas.api.types import (is_bool_dtype, is_float_dtype, is_integer_dtype,
                              is_object_dtype, is_string_dtype)

from analysis.outputs import round_frame, write_bytes, write_table

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so is a formula (OWASP)
FLOAT_FORMAT, INT_FORMAT = "0.000", "0"  # default Excel number formats
MIN_WIDTH, MAX_WIDTH = 6, 60  # bounds of a column width, in characters
_FIXED_DATE = dt.datetime(2000, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def neutralise(value: str) -> str:
    """``value`` with a leading ``'`` if it starts like a formula (see :data:`FORMULA_STARTS`)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df``: :func:`neutralise` on text cells and column names (not on numbers)."""
    def neutral(v: Any) -> Any:
        return neutralise(v) if isinstance(v, str) else v

    out = df.copy()
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        s = s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s
        if is_object_dtype(s.dtype) or is_string_dtype(s.dtype):
            out.isetitem(i, s.map(neutral))
    out.columns = [neutral(c) for c in out.columns]
    return out


def _rounded(df: pd.DataFrame) -> pd.DataFrame:
    if df.columns.duplicated().any():
        raise ValueError(f"duplicate column names: {list(df.columns[df.columns.duplicated()])}")
    return round_frame(df)


def _cell(v: Any) -> int | float | str | None:
    """A plain value: None if missing or infinite, int (booleans 1/0), float, or safe text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    text = neutralise(ILLEGAL_CHARACTERS_RE.sub("", str(v)))  # no control characters but
    return text.replace("\r\n", "\n").replace("\r", "\n")  # LF (XML turns CR into LF)


def _csv_cell(v: Any, decimal: str) -> str:
    v = _cell(v)
    if v is None or isinstance(v, int):
        return "" if v is None else str(v)
    if isinstance(v, float):
        exact = Decimal(repr(v))  # shortest round-trip digits; no binary noise
        text = format(exact, "f") if abs(exact.adjusted()) <= 20 else repr(v)
        if "." in text and "e" not in text:
            text = text.rstrip("0").rstrip(".")
        return text.replace(".", decimal)
    return '"' + v.replace('"', '""') + '"'


def csv_bytes(df: pd.DataFrame, *, decimal: str = ",") -> bytes:
    """The table (without index) as CSV that Russian Excel opens directly and machines parse.

    Parameters
    ----------
    df : DataFrame
    decimal : {",", "."}
        Decimal separator of floats.

    Returns
    -------
    bytes
        UTF-8 with a BOM, ``;`` between fields, CRLF line ends.  Floats rounded to 10
        digits, without exponent up to 1e±20 (``0,00001``, ``3``); missing values and
        infinities empty; booleans ``1``/``0``.  Text and header are neutralised (line ends
        as LF, control characters dropped, as in the workbook) and always double-quoted
        (one field even where Excel splits on another separator).
    """
    if decimal not in (",", "."):
        raise ValueError(f"decimal must be ',' or '.', not {decimal!r}")
    data = _rounded(df)
    lines = [";".join(_csv_cell(str(c), decimal) for c in data.columns)]
    lines += [";".join(_csv_cell(v, decimal) for v in row)
              for row in data.itertuples(index=False, name=None)]
    return ("\ufeff" + "".join(line + "\r\n" for line in lines)).encode("utf-8")


def write_csv(df: pd.DataFrame, path: str | Path, **kw: Any) -> Path:
    """Write :func:`csv_bytes` ``(df, **kw)`` to ``path`` atomically; returns ``path``."""
    return write_bytes(path, csv_bytes(df, **kw))


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as Parquet (floats rounded, text as is, no index) atomically."""
    if Path(path).suffix.lower() == ".csv":
        raise ValueError(f"a Parquet file cannot be named {path}")
    return write_table(df, path)


def _sheet_title(name: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub("_", str(name))[:31].strip("'") or "Sheet"
    title, n = base, 1
    while title.lower() in used:
        n += 1
        title = f"{base[:31 - len(f' ({n})')]} ({n})"
    used.add(title.lower())
    return title


def _fill_sheet(ws: Any, df: pd.DataFrame, formats: Mapping[str, str]) -> None:
    data = _rounded(df)
    for j, col in enumerate(data.columns, start=1):
        kind = data.iloc[:, j - 1].dtype
        default = (INT_FORMAT if is_integer_dtype(kind) or is_bool_dtype(kind)
                   else FLOAT_FORMAT if is_float_dtype(kind) else None)
        fmt = formats.get(str(col), default)
        header = ws.cell(row=1, column=j, value=_cell(str(col)))
        header.data_type, header.font = "s", Font(bold=True)
        texts = [str(header.value)]
        for i, v in enumerate(data.iloc[:, j - 1], start=2):
            cell = ws.cell(row=i, column=j, value=_cell(v))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula ("=…") nor an error code ("#N/A")
                texts.append(cell.value)
            elif cell.value is not None:
                if fmt:
                    cell.number_format = fmt
                texts.append(f"{cell.value:.3f}" if fmt == FLOAT_FORMAT else str(cell.value))
        longest = max(len(line) for text in texts for line in text.split("\n"))
        width = min(max(longest + 2, MIN_WIDTH), MAX_WIDTH)
        ws.column_dimensions[get_column_letter(j)].width = width
    if data.shape[1]:
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(data.shape[1])}{len(data) + 1}"


def _fixed_zip(data: bytes) -> bytes:
    """The same zip archive with every entry stamped 1980-01-01, mode 0644, Unix."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=_ZIP_TIME)
            info.compress_type, info.create_system = zipfile.ZIP_DEFLATED, 3
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(item))
    return out.getvalue()


def write_workbook(sheets: Mapping[str, pd.DataFrame], path: str | Path, *,
                   formats: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """Write tables to one Excel workbook (one sheet each) atomically; returns ``path``.

    Parameters
    ----------
    sheets : mapping of str to DataFrame
        Sheet name -> table, in order.  Names are made valid for Excel (<= 31 characters,
        none of ``[]:*?/\\``, unique regardless of case: ``Name (2)``).
    path : str or Path
    formats : mapping of sheet name to (column -> Excel number format), optional
        Keyed as ``sheets``, e.g. ``{"Школы": {"Доля": "0.0%"}}``; unknown names raise
        ValueError.  Defaults: ``0.000`` for floats, ``0`` for integers and booleans.

    Notes
    -----
    Header: column names as given, bold, frozen, with an autofilter.  Numbers are numeric
    cells (floats rounded to 10 digits; booleans 1/0 as in the CSV; missing and infinite
    empty); anything else is a neutralised string cell (dates as ISO text, CR as LF, control
    characters XML cannot hold dropped).  Widths: longest rendered value, header included,
    within [6, 60].  Fixed document dates and zip stamps: equal tables give equal bytes.
    """
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    formats = formats or {}
    unknown = [f"{name}/{col}" for name, cols in formats.items() for col in cols
               if name not in sheets or col not in map(str, sheets[name].columns)]
    if unknown:
        raise ValueError(f"formats name columns not in the tables: {unknown}")
    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for name, df in sheets.items():
        _fill_sheet(wb.create_sheet(_sheet_title(name, used)), df, formats.get(name, {}))
    wb.properties.creator = "school-context"
    wb.properties.created = wb.properties.modified = _FIXED_DATE
    buf = io.BytesIO()
    # ExcelWriter, not wb.save(): save_workbook() re-stamps properties.modified with now()
    ExcelWriter(wb, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED)).save()
    return write_bytes(path, _fixed_zip(buf.getvalue()))


def write_downloads(tables: Mapping[str, tuple[str, pd.DataFrame]], folder: str | Path, *,
                    xlsx_name: str = "tables.xlsx",
                    formats: Mapping[str, Mapping[str, str]] | None = None) -> list[Path]:
    """Write ``folder/<xlsx_name>`` (all tables) and ``folder/csv/<stem>.csv`` (each table).

    Parameters
    ----------
    tables : mapping of str to (str, DataFrame)
        File stem (``[A-Za-z0-9][A-Za-z0-9_.-]*``) -> (unique sheet title, table), in order.
    folder : str or Path
    xlsx_name : str
    formats : mapping, optional
        Number formats keyed by sheet title, as in :func:`write_workbook`.

    Returns
    -------
    list of Path
        The written files, sorted.
    """
    titles = {stem: title for stem, (title, _) in tables.items()}
    if not all(map(_STEM.fullmatch, titles)) or len(set(titles.values())) < len(titles):
        raise ValueError(f"file stems must be plain names, sheet titles unique: {titles}")
    paths = [write_workbook({title: df for title, df in tables.values()}, Path(folder) / xlsx_name,
                            formats=formats)]
    paths += [write_csv(df, Path(folder, "csv", f"{stem}.csv")) for stem, (_, df) in tables.items()]
    return sorted(paths)
