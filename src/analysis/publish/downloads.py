"""Downloadable tables: Excel for officials, CSV and Parquet for machines.

Safe: in CSV and Excel, text starting with ``= + - @``, tab or CR (OWASP "CSV injection")
gets a leading ``'`` and never runs as a formula; numeric columns stay numbers (Parquet,
typed data, keeps text as is).  The same bytes on every run (floats rounded, fixed workbook
dates and zip stamps).  Atomic: a file appears whole or an OutputError is raised.

Fast at national size (40,000 schools, millions of cells): each column is converted once,
vectorised or once per distinct value (never a Python call per cell, except in an object
column mixing text and numbers), and the workbook is streamed row by row by XlsxWriter in
constant memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import re
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_object_dtype,
)
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from analysis.outputs import atomic_write, round_frame, write_bytes, write_table

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so is a formula (OWASP)
FLOAT_FORMAT, INT_FORMAT = "0.000", "0"  # default Excel number formats
MIN_WIDTH, MAX_WIDTH = 6, 60  # bounds of a column width, in characters
MAX_ROWS, MAX_COLUMNS = 1_048_576, 16_384  # an Excel sheet's rows (header included), columns
_SHEET_ROWS = MAX_ROWS - 1  # data rows of one sheet; a longer table goes on to ``Name (2)``
_FIXED_DATE = dt.datetime(2000, 1, 1)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Control characters XML 1.0 cannot hold (as openpyxl's ILLEGAL_CHARACTERS_RE): dropped.
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
#: XlsxWriter's unit of column width, pixels per character (Calibri 11): a width of
#: ``7 * w`` pixels is stored as exactly ``w`` characters.
_PIXELS_PER_CHAR = 7
_WORKBOOK_OPTIONS = {"constant_memory": True, "strings_to_formulas": False,
                     "strings_to_urls": False, "strings_to_numbers": False,
                     "nan_inf_to_errors": False}


def neutralise(value: str) -> str:
    """``value`` with a leading ``'`` if it starts like a formula (see :data:`FORMULA_STARTS`)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _rounded(df: pd.DataFrame) -> pd.DataFrame:
    if df.columns.duplicated().any():
        raise ValueError(f"duplicate column names: {list(df.columns[df.columns.duplicated()])}")
    return round_frame(df)


def _text(value: str) -> str:
    """Safe cell text: control characters dropped, neutralised, line ends as LF."""
    text = neutralise(_ILLEGAL.sub("", value))  # no control characters but
    return text.replace("\r\n", "\n").replace("\r", "\n")  # LF (XML turns CR into LF)


def _cell(v: Any) -> int | float | str | None:
    """A plain value: None if missing or infinite, int (booleans 1/0), float, or safe text."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return _text(str(v))


# --- columns, converted once ----------------------------------------------------------------

_CHUNK = 65_536  # rows converted to Python objects at a time (bounds the memory)


class _Column:
    """One column read once: vectorised numbers, or its cells once per distinct value.

    Attributes
    ----------
    numbers : ndarray or None
        A boolean or numeric column: its values (booleans as int64 1/0, integers in their
        integer type, floats as float64), with ``missing`` marking missing values and
        infinities.
    codes, plain : ndarray, list
        Otherwise, when the column holds text and missing values only (or is categorical,
        dates, ...): ``plain[codes[i]]`` is row ``i``'s :func:`_cell`, code -1 a missing one.
    cells : list or None
        Otherwise (an object column mixing text with numbers: hashing would merge ``1``,
        ``1.0`` and ``True``, which are written differently): :func:`_cell` of every row.
    """

    def __init__(self, s: pd.Series) -> None:
        self.numbers: np.ndarray | None = None
        self.missing = np.zeros(0, dtype=bool)
        self.codes = np.zeros(0, dtype=np.intp)
        self.plain: list[Any] = []
        self.cells: list[Any] | None = None
        kind = s.dtype.kind
        if kind in "biuf" and not isinstance(s.dtype, pd.CategoricalDtype):
            self.missing = s.isna().to_numpy(dtype=bool)
            if kind == "f":
                self.numbers = s.to_numpy(dtype="float64", na_value=np.nan)
                self.missing = self.missing | ~np.isfinite(self.numbers)
            else:
                dtype = "int64" if kind == "b" else getattr(s.dtype, "numpy_dtype", s.dtype)
                self.numbers = s.to_numpy(dtype=dtype, na_value=0)
        elif is_object_dtype(s.dtype) and infer_dtype(s, skipna=True) not in ("string", "empty"):
            self.cells = [_cell(v) for v in s]
        else:
            self.codes, uniques = pd.factorize(s, use_na_sentinel=True)
            self.plain = [_cell(v) for v in uniques]

    def longest(self, fmt: str | None) -> int:
        """Length of the longest line of a cell as shown (see :func:`_rendered`)."""
        if self.numbers is not None:
            return _longest_number(self.numbers[~self.missing], fmt)
        return max((_rendered(v, fmt) for v in (self.plain if self.cells is None
                                                  else self.cells)), default=0)

    def convert(self, convert: Callable[[Any], Any], missing: Any,
                numbers: Callable[[np.ndarray], np.ndarray]
                ) -> Callable[[int, int], list[Any]]:
        """A function of ``(start, stop)`` giving those rows converted: a cell by ``convert``
        (once per distinct value), numbers by ``numbers`` (an object array), missing ones
        as ``missing``."""
        if self.numbers is not None:
            values, absent = self.numbers, self.missing

            def chunk(start: int, stop: int) -> list[Any]:
                out = np.full(stop - start, missing, dtype=object)
                present = ~absent[start:stop]
                out[present] = numbers(values[start:stop][present])
                return out.tolist()
            return chunk
        if self.cells is not None:
            cells = [missing if v is None else convert(v) for v in self.cells]
            return lambda start, stop: cells[start:stop]
        table = np.empty(len(self.plain) + 1, dtype=object)
        table[:-1] = [missing if v is None else convert(v) for v in self.plain]
        table[-1] = missing
        return lambda start, stop: table[self.codes[start:stop]].tolist()


def _longest_line(text: str) -> int:
    return max(len(line) for line in text.split("\n"))


def _rendered(v: int | float | str | None, fmt: str | None) -> int:
    """Length of the longest line of a cell as shown: text, ``0.000`` floats, numbers."""
    if v is None:
        return 0
    if isinstance(v, str):
        return _longest_line(v)
    return len(f"{v:.3f}" if fmt == FLOAT_FORMAT else str(v))


def _longest_number(values: np.ndarray, fmt: str | None) -> int:
    """The longest :func:`_rendered` of the numbers ``values``, vectorised: integers and
    ``0.000`` text grow with the magnitude within each sign, so only the extremes are
    rendered; other floats once per distinct value."""
    if not values.size:
        return 0
    neg = np.signbit(values)
    if fmt == FLOAT_FORMAT or values.dtype.kind != "f":
        ends = [values[~neg].max()] if (~neg).any() else []
        ends += [values[neg].min()] if neg.any() else []
        return max(_rendered(v.item(), fmt) for v in ends)
    longest = max(map(len, map(repr, np.unique(values).tolist())))
    return max(longest, 4) if (neg & (values == 0)).any() else longest  # "-0.0"


class _Rich:
    """Text XlsxWriter would take for its own rich-string XML (``<r>...</r>``): written in
    fragments by ``write_rich_string``, which escapes them, so it cannot inject XML."""

    __slots__ = ("parts",)

    def __init__(self, text: str) -> None:
        self.parts = (text[:1], text[1:2], text[2:])


def _xlsx_value(v: int | float | str) -> Any:
    """A present cell for the sheet writer: None (nothing written) for '', :class:`_Rich`."""
    if v.__class__ is not str:
        return v
    if not v:
        return None
    return _Rich(v) if v.startswith("<r>") and v.endswith("</r>") else v


def _csv_field(v: int | float | str | None, decimal: str) -> str:
    """A :func:`_cell` as a CSV field."""
    if v is None or isinstance(v, int):
        return "" if v is None else str(v)
    if isinstance(v, float):
        return _csv_float(v, decimal)
    return '"' + v.replace('"', '""') + '"'


def _csv_cell(v: Any, decimal: str) -> str:
    return _csv_field(_cell(v), decimal)


def _csv_float(v: float, decimal: str) -> str:
    """Shortest round-trip digits, without exponent up to 1e±20, no trailing zeros."""
    text = repr(v)
    if "e" in text:  # the same digits, positional (Decimal only where repr has an exponent)
        exact = Decimal(text)
        if abs(exact.adjusted()) <= 20:
            text = format(exact, "f")
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", decimal)


def _csv_numbers(values: np.ndarray, decimal: str) -> np.ndarray:
    """CSV fields of present numbers: integers vectorised, floats once per distinct value."""
    if values.dtype.kind != "f":
        return values.astype(str).astype(object)
    codes, uniques = pd.factorize(values)
    out = np.array([_csv_float(v, decimal) for v in uniques.tolist()], dtype=object)[codes]
    zero = values == 0  # -0.0 and 0.0 are one distinct value
    out[zero] = np.where(np.signbit(values[zero]), "-0", "0")
    return out


# --- CSV ------------------------------------------------------------------------------------

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

    Notes
    -----
    Each column is converted once: numbers vectorised (a float's digits once per distinct
    value), text once per distinct value; only an object column mixing text with numbers
    is converted cell by cell.
    """
    return b"".join(_csv_parts(df, decimal=decimal))


def _csv_parts(df: pd.DataFrame, *, decimal: str = ",") -> list[bytes]:
    """:func:`csv_bytes` in parts: the header, then :data:`_CHUNK` rows at a time."""
    if decimal not in (",", "."):
        raise ValueError(f"decimal must be ',' or '.', not {decimal!r}")
    data = _rounded(df)
    header = "\ufeff" + ";".join(_csv_cell(str(c), decimal) for c in data.columns) + "\r\n"
    parts = [header.encode("utf-8")]
    columns = [_Column(data.iloc[:, j]).convert(lambda v: _csv_field(v, decimal), "",
                                                lambda v: _csv_numbers(v, decimal))
               for j in range(data.shape[1])]
    for start in range(0, len(data), _CHUNK):
        stop = min(len(data), start + _CHUNK)
        rows = map(";".join, zip(*(c(start, stop) for c in columns))) if columns \
            else [""] * (stop - start)
        parts.append(("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return parts


def write_csv(df: pd.DataFrame, path: str | Path, **kw: Any) -> Path:
    """Write :func:`csv_bytes` ``(df, **kw)`` to ``path`` atomically; returns ``path``."""
    parts = _csv_parts(df, **kw)  # converted whole before the file is opened

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.writelines(parts)
    return atomic_write(path, write)


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as Parquet (floats rounded, text as is, no index) atomically."""
    if Path(path).suffix.lower() == ".csv":
        raise ValueError(f"a Parquet file cannot be named {path}")
    return write_table(df, path)


# --- XLSX -----------------------------------------------------------------------------------

def _cut(text: str, units: int) -> str:
    """``text`` cut to at most ``units`` UTF-16 code units (Excel measures names so)."""
    text = text[:units]
    while len(text.encode("utf-16-le")) > 2 * units:
        text = text[:-1]
    return text


def _sheet_title(name: str, used: set[str]) -> str:
    clean = _SHEET_BAD.sub("_", _ILLEGAL.sub("", str(name)))
    base = _cut(clean, 31).strip("'") or "Sheet"
    title, n = base, 1
    while title.lower() in used:
        n += 1
        title = f"{_cut(base, 31 - len(f' ({n})'))} ({n})"
    used.add(title.lower())
    return title


def _chunks(n_rows: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` rows of each sheet of a table of ``n_rows`` (one for an empty one)."""
    yield 0, min(n_rows, _SHEET_ROWS)
    for start in range(_SHEET_ROWS, n_rows, _SHEET_ROWS):
        yield start, min(n_rows, start + _SHEET_ROWS)


def _add_sheets(wb: Workbook, title: str, df: pd.DataFrame, formats: Mapping[str, str],
                used: set[str], styles: dict[str, Format]) -> None:
    """Write one table to sheet ``title``, or to ``title``, ``title (2)``, ... if too long.

    ``styles`` holds the workbook's formats: ``"bold"`` and the number formats, by code.
    """
    data = _rounded(df)
    if data.shape[1] > MAX_COLUMNS:
        raise ValueError(f"sheet {title!r}: {data.shape[1]} columns, Excel holds {MAX_COLUMNS}")
    headers: list[str] = []
    columns: list[Callable[[int, int], list[Any]]] = []
    cell_formats: list[Format | None] = []
    widths: list[int] = []
    for j in range(data.shape[1]):
        kind = data.iloc[:, j].dtype
        default = (INT_FORMAT if is_integer_dtype(kind) or is_bool_dtype(kind)
                   else FLOAT_FORMAT if is_float_dtype(kind) else None)
        fmt = formats.get(str(data.columns[j]), default)
        if fmt and fmt not in styles:
            styles[fmt] = wb.add_format({"num_format": fmt})
        header = _text(str(data.columns[j]))
        column = _Column(data.iloc[:, j])
        headers.append(header)
        columns.append(column.convert(_xlsx_value, None, lambda v: v.astype(object)))
        cell_formats.append(styles[fmt] if fmt else None)
        longest = max(column.longest(fmt), _longest_line(header))
        widths.append(min(max(longest + 2, MIN_WIDTH), MAX_WIDTH))
    for part, (start, stop) in enumerate(_chunks(len(data))):
        ws = wb.add_worksheet(title if part == 0 else _sheet_title(title, used))
        for j, width in enumerate(widths):
            ws.set_column_pixels(j, j, _PIXELS_PER_CHAR * width)
        for j, header in enumerate(headers):
            _write_cell(ws, 0, j, _xlsx_value(header), styles["bold"])
        for first in range(start, stop, _CHUNK):
            last = min(stop, first + _CHUNK)
            _write_rows(ws, first - start + 1, [c(first, last) for c in columns], cell_formats)
        if headers:
            ws.freeze_panes(1, 0)
            ws.autofilter(0, 0, stop - start, len(headers) - 1)


def _write_cell(ws: Worksheet, row: int, col: int, v: Any, fmt: Format) -> None:
    """One formatted cell: a string cell (never a formula), a number, or a blank."""
    if v is None:
        ws.write_blank(row, col, None, fmt)
    elif v.__class__ is str:
        ws.write_string(row, col, v, fmt)
    elif v.__class__ is _Rich:
        a, b, c = v.parts
        ws.write_rich_string(row, col, fmt, a, fmt, b, fmt, c, fmt)
    else:
        ws.write_number(row, col, v, fmt)


def _write_rows(ws: Worksheet, first: int, columns: list[list[Any]],
                formats: list[Format | None]) -> None:
    """Data cells from sheet row ``first`` on, row by row (XlsxWriter's constant memory
    mode needs rows in order); a column's number format is never applied to its text."""
    write_string, write_number = ws.write_string, ws.write_number
    for r, row in enumerate(zip(*columns), start=first):
        for c, v in enumerate(row):
            if v is None:
                continue
            cls = v.__class__
            if cls is str:
                write_string(r, c, v)
            elif cls is _Rich:
                ws.write_rich_string(r, c, *v.parts)
            else:
                write_number(r, c, v, formats[c])


def _fixed_zip(data: bytes) -> bytes:
    """The same zip archive with every entry stamped 1980-01-01, mode 0644, Unix.

    The stamps are set in the local and central headers in place (the compressed data
    stay as they are); an archive with ZIP64 records is rewritten entry by entry instead.
    """
    out = bytearray(data)
    eocd = len(out) - 22  # end of central directory record (without an archive comment)
    if eocd < 0 or out[eocd:eocd + 4] != b"PK\x05\x06":
        return _rezip(data)
    count, offset = struct.unpack_from("<H4xI", out, eocd + 10)
    if count == 0xFFFF or offset == 0xFFFFFFFF:  # ZIP64
        return _rezip(data)
    date = (_ZIP_TIME[0] - 1980) << 9 | _ZIP_TIME[1] << 5 | _ZIP_TIME[2]
    clock = _ZIP_TIME[3] << 11 | _ZIP_TIME[4] << 5 | _ZIP_TIME[5] // 2
    pos = offset
    for _ in range(count):
        if out[pos:pos + 4] != b"PK\x01\x02":
            return _rezip(data)
        local = struct.unpack_from("<I", out, pos + 42)[0]
        if out[local:local + 4] != b"PK\x03\x04":
            return _rezip(data)
        out[pos + 5] = 3  # made by: Unix
        struct.pack_into("<HH", out, pos + 12, clock, date)
        struct.pack_into("<I", out, pos + 38, 0o644 << 16)
        struct.pack_into("<HH", out, local + 10, clock, date)
        pos += 46 + sum(struct.unpack_from("<HHH", out, pos + 28))
    return bytes(out)


def _rezip(data: bytes) -> bytes:
    """:func:`_fixed_zip` by decompressing and compressing every entry again."""
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
    characters XML cannot hold dropped; empty text is an empty cell).  Widths: longest
    rendered value, header included, within [6, 60].  Fixed document dates and zip stamps:
    equal tables give equal bytes.

    Written by XlsxWriter row by row in constant memory (strings inline, numbers with 16
    significant digits: exact for floats rounded to 10).  Text is written literally: also
    ``<r>...</r>`` (XlsxWriter's rich-text marker, written in escaped fragments) and
    ``_x0041_`` (escaped so that Excel does not decode it).  A table longer than an Excel
    sheet (1,048,575 rows under the header) continues on sheets ``Name (2)``,
    ``Name (3)``, ... with the same header, formats and widths.  Text longer than Excel's
    32,767 characters is cut there.
    """
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    formats = formats or {}
    unknown = [f"{name}/{col}" for name, cols in formats.items() for col in cols
               if name not in sheets or col not in map(str, sheets[name].columns)]
    if unknown:
        raise ValueError(f"formats name columns not in the tables: {unknown}")
    buf = io.BytesIO()
    wb = Workbook(buf, _WORKBOOK_OPTIONS)
    try:
        wb.set_properties({"author": "school-context", "created": _FIXED_DATE})
        used: set[str] = set()
        styles = {"bold": wb.add_format({"bold": True})}
        for name, df in sheets.items():
            _add_sheets(wb, _sheet_title(name, used), df, formats.get(name, {}), used, styles)
    except BaseException:
        with contextlib.suppress(Exception):
            wb.close()  # removes XlsxWriter's temporary files
        raise
    wb.close()
    return write_bytes(path, _fixed_zip(buf.getvalue()))
