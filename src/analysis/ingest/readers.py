"""Read one analyst file (CSV, XLSX or Parquet) into a table of text cells.

This is the single path every raw table goes through.  The reader only *finds* the table
and turns every cell into text; checking and converting values is done elsewhere, so a bad
cell can be reported with its file, row and column.

What the reader detects or repairs is returned in a :class:`ReadReport` for the validation
log:

* CSV encoding: strict UTF-8 (with or without BOM), else Windows-1251.
* CSV separator: ``;`` when the first line with a separator has more ``;`` than ``,``.
* The header row: the first row with at least two filled cells, more than half of them
  text (not numbers); this skips title rows (also merged ones) above a table.  When no
  row qualifies (e.g. a one-column table), the first non-empty row is the header.
* Decimal commas, converted to points in cells that look like numbers
  (``^\\s*-?\\d+(,\\d+)?\\s*$``; the whitespace around is kept):

  - a ``;``-separated CSV whose data has a cell like ``12,5`` uses the decimal comma in
    every column;
  - otherwise (``,``-separated CSV with quoted ``"12,5"``, text cells in XLSX) a column is
    converted when it has such a cell and no cell with a decimal point (``12.5``);
  - ``ReadOptions(decimal=",")`` or ``"."`` forces the mark for the whole file.

  A thousands separator written as a comma (``"1,234"``) cannot be told from a decimal comma
  and is read as ``1.234``.  Cells that do not look like numbers (``Иванов, Пётр``) are
  never touched.  Parquet values are typed, so they are not converted.
* XLSX formula errors (``#DIV/0!``, ``#N/A``, ...) are kept as their text, and their cell
  addresses are listed in a note.

Row numbers (``source_row``) are those the analyst sees in a spreadsheet: the header is
row ``header_row`` and the first data row is ``header_row + 1``.  For CSV a row is a record,
so it matches a text editor's line numbers unless a quoted cell spans several lines.
Completely empty rows (every cell empty or blank) are dropped without renumbering.

How (not what): a CSV file is split into cells by pandas' C parser, with the same records
and cells as Python's :mod:`csv` module; the few files it cannot read that way (a quote left
open at the end, a cell longer than :func:`csv.field_size_limit`, ...) are read by the
:mod:`csv` module itself.  The cells are then kept column by column, and every check above
(empty rows, the header, decimal commas) is computed per column with Arrow's vectorised
string functions; the rare cells outside ASCII that could be digits or blanks are checked
with Python's own regular expressions, so the results are those of Python's ``re``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import InputError, Problem

Cell = str | None
Row = tuple[int, list[Cell]]  # (row number as the analyst sees it, cells)

BOM = "\ufeff"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
RESERVED = ("source_file", "source_row")
NUMBER = re.compile(r"^\s*-?\d+([.,]\d+)?\s*$")
COMMA_NUMBER = re.compile(r"^\s*-?\d+(,\d+)?\s*$")
COMMA_DECIMAL = re.compile(r"^\s*-?\d+,\d+\s*$")
POINT_DECIMAL = re.compile(r"^\s*-?\d+\.\d+\s*$")
MAX_REASON = 200

#: Every character Python's ``str.isspace`` (and ``\\s`` in a ``str`` pattern) accepts.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII_SPACE = r"[\t-\r\x1c- ]"  # Python's \s restricted to ASCII, for RE2
_ASCII_DIGIT = "[0-9]"  # Python's \d restricted to ASCII
#: The patterns above in RE2 syntax for ASCII cells (anchored: ``re.match`` of a pattern
#: that ends in ``\\s*$`` is a full match).
_RE2 = {
    NUMBER: rf"^{_ASCII_SPACE}*-?{_ASCII_DIGIT}+(?:[.,]{_ASCII_DIGIT}+)?{_ASCII_SPACE}*$",
    COMMA_DECIMAL: rf"^{_ASCII_SPACE}*-?{_ASCII_DIGIT}+,{_ASCII_DIGIT}+{_ASCII_SPACE}*$",
    POINT_DECIMAL: rf"^{_ASCII_SPACE}*-?{_ASCII_DIGIT}+\.{_ASCII_DIGIT}+{_ASCII_SPACE}*$",
}
_LETTER = r"\pL"
#: A CSV whose widest line would pad more than this many cells beyond four times its real
#: cells is read by the csv module instead (e.g. one quoted cell holding 10,000 commas).
_PAD_BUDGET = 1 << 22
_BLOCK = 1 << 20  # bytes per block when counting separators per line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadOptions:
    """How to read one file; every field defaults to detection.

    Parameters
    ----------
    sheet
        XLSX only: sheet name, or 0-based sheet index; ``None`` is the first sheet.
    header_row
        1-based row of the header as the analyst sees it; ``None`` detects it.
    encoding
        CSV only: text encoding (e.g. ``"cp1251"``); ``None`` detects it.
    decimal
        ``"."`` or ``","`` for the whole file; ``None`` detects it (see the module notes).
    """

    sheet: str | int | None = None
    header_row: int | None = None
    encoding: str | None = None
    decimal: str | None = None

    def __post_init__(self) -> None:
        if self.header_row is not None and self.header_row < 1:
            raise ValueError(f"header_row is 1-based, got {self.header_row}")
        if self.decimal not in (None, ".", ","):
            raise ValueError(f"decimal must be '.' or ',', got {self.decimal!r}")


@dataclass(frozen=True)
class ReadReport:
    """What the reader detected or repaired in one file, for the validation log.

    Attributes
    ----------
    file
        File name.
    format
        ``"csv"``, ``"xlsx"`` or ``"parquet"``.
    encoding
        CSV: ``"utf-8"``, ``"utf-8-sig"``, ``"cp1251"`` or the requested one; else ``None``.
    separator
        CSV: ``","`` or ``";"``; else ``None``.
    decimal
        ``"."`` or ``","`` (CSV and XLSX); ``None`` for Parquet.
    header_row
        1-based row of the header as the analyst sees it.
    notes
        Human-readable notes, e.g. ``"decoded as Windows-1251"``.
    sha256, size
        SHA-256 of the file's bytes (hex) and its size in bytes: which exact file a report
        was computed from (shown in the report's methods appendix).
    """

    file: str
    format: str
    encoding: str | None
    separator: str | None
    decimal: str | None
    header_row: int
    notes: tuple[str, ...]
    sha256: str = ""
    size: int = 0


@dataclass(frozen=True)
class _Column:
    """One column of a file's raw cells, with the masks the vectorised checks need.

    Attributes
    ----------
    cells
        Object array, one cell per row: ``str`` (``""`` when empty) or ``None``.
    empty
        Cells that are ``None`` or ``""`` (they become ``None`` in the output).
    filled
        Cells that are not blank (not empty and not only whitespace).
    comma
        Cells holding a ``,`` (the only ones that can hold a decimal comma).
    longest
        Length of the longest cell in UTF-8 bytes.
    """

    cells: np.ndarray
    empty: np.ndarray
    filled: np.ndarray
    comma: np.ndarray
    longest: int


@dataclass(frozen=True)
class _Grid:
    """Raw cells of a file before the header is found, with format-specific findings.

    ``columns`` all have one cell per row; ``numbers`` are the rows' numbers as the analyst
    sees them (int64, increasing).  Rows shorter than the widest are padded with ``None``.
    """

    columns: list[_Column]
    numbers: np.ndarray
    encoding: str | None = None
    separator: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Table:
    """Where the header and the data rows are in a grid."""

    header_row: int  # the header's number as the analyst sees it
    header: list[Cell]
    body: np.ndarray  # positions (into the grid's rows) of the non-empty rows below it
    filled: np.ndarray  # per grid row: not completely empty


def read_text(
    path: str | Path, options: ReadOptions = ReadOptions()
) -> tuple[pd.DataFrame, ReadReport]:
    """Read one analyst file into a table of text cells.

    Parameters
    ----------
    path
        A ``.csv``, ``.xlsx`` or ``.parquet`` file.
    options
        Sheet, header row, encoding and decimal mark; detected when not given.

    Returns
    -------
    tuple of (pandas.DataFrame, ReadReport)
        The table: ``source_file`` (file name), ``source_row`` (int64, row number as the
        analyst sees it), then one column per header cell (stripped, BOM removed), every
        cell a Python ``str`` or ``None``.  And the report of what was detected.

    Raises
    ------
    InputError
        The file is missing, empty, unreadable, has no data rows, an unsupported
        extension, a missing sheet, duplicate or missing column names.
    """
    path, name, fmt, grid = _grid(path, options)
    table = _split_header(name, grid, options.header_row)
    columns, keep = _column_names(name, grid, table)
    commas = [grid.columns[i].comma[table.body] for i in keep]
    cells = _body_cells(grid, table.body, keep)
    decimal, decimal_notes = (None, ()) if fmt == "parquet" else _fix_decimals(
        cells, commas, columns, grid.separator, options.decimal)
    report = ReadReport(
        file=name, format=fmt, encoding=grid.encoding, separator=grid.separator,
        decimal=decimal, header_row=table.header_row,
        notes=grid.notes + _layout_notes(grid, table) + decimal_notes,
        sha256=file_sha256(path), size=path.stat().st_size,
    )
    return _frame(name, columns, grid.numbers[table.body], cells), report


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_header(path: str | Path, options: ReadOptions = ReadOptions()) -> list[str]:
    """The header cells of a file (stripped, empty ones left out), found as
    :func:`read_text` finds them; the file may have no data rows (a template)."""
    _, name, _, grid = _grid(path, options)
    header = _split_header(name, grid, options.header_row, require_body=False).header
    return [str(c).replace(BOM, "").strip() for c in header if not _blank(c)]


def _grid(path: str | Path, options: ReadOptions) -> tuple[Path, str, str, _Grid]:
    path = Path(path)
    name = path.name
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _GRID_READERS:
        raise InputError(Problem(name, "", "a .csv, .xlsx or .parquet file", (), path.suffix))
    if not path.is_file():
        raise InputError(Problem(name, "", "an existing file", (), str(path)))
    return path, name, fmt, _GRID_READERS[fmt](path, options)


# --- CSV -----------------------------------------------------------------------------------


def _read_csv(path: Path, options: ReadOptions) -> _Grid:
    data = path.read_bytes()
    text, encoding, notes = _decode(path.name, data, options.encoding)
    del data
    if not text.strip(BOM + " \t\r\n"):
        raise _empty(path.name)
    separator = _separator(text)
    columns = _parse_c(text, separator)
    if columns is None:
        log.debug("%s: read by the csv module (the C parser cannot)", path.name)
        columns, _ = _from_rows(_parse_python(path.name, text, separator))
    rows = len(columns[0].cells) if columns else 0
    return _Grid(columns, np.arange(1, rows + 1, dtype=np.int64), encoding, separator, notes)


def _decode(name: str, data: bytes, encoding: str | None) -> tuple[str, str, tuple[str, ...]]:
    """Text, the encoding used, and a note when it was not UTF-8."""
    if encoding is None and (data.startswith(UTF16_BOMS) or data[:4096].count(b"\x00")
                             > len(data[:4096]) // 4):
        # Excel's "Unicode text" would decode as nonsense: say so instead
        raise InputError(Problem(name, "", "a CSV file in UTF-8 or Windows-1251 (this "
                                 "file is UTF-16; in Excel use Save As 'CSV UTF-8')"))
    if encoding is not None:
        try:
            return data.decode(encoding), encoding, ()
        except (UnicodeDecodeError, LookupError) as exc:
            raise InputError(Problem(name, "", f"a text file in the '{encoding}' encoding",
                                     (), _reason(exc))) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        note = "decoded as Windows-1251 (the file is not valid UTF-8)"
        return data.decode("cp1251", errors="replace"), "cp1251", (note,)
    return text, "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", ()


def _separator(text: str) -> str:
    """``;`` when the first line with a separator has more ``;`` than ``,``, else ``,``.

    Lines end at ``\\n`` (as :class:`io.StringIO` splits them; a ``\\r`` stays in its line).
    """
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        if ";" in line or "," in line:
            return ";" if line.count(";") > line.count(",") else ","
        start = end
    return ","


def _parse_c(text: str, separator: str) -> list[_Column] | None:
    """The cells of a CSV text, split by pandas' C parser, column by column.

    The C parser splits records and cells as :func:`csv.reader` does (quotes, doubled
    quotes, text after a closing quote, line breaks in quoted cells, ``\\r``, ``\\n`` and
    ``\\r\\n``, empty lines as records, short rows), so record *i* is row *i*.  Empty cells
    are ``""``.  ``None`` means the csv module must read the file: the C parser rejects it
    (a quote still open at the end of the file, a record wider than any line because of
    quoted line breaks), a cell is longer than :func:`csv.field_size_limit` (the csv module
    refuses the file, with its message), the grid would be mostly padding, or the text
    starts with a BOM before a quote (``\\ufeff"a"`` is one unquoted cell for csv, while the
    C parser drops a leading BOM and unquotes ``"a"``).
    """
    body = text.lstrip(BOM)  # BOMs here only with a requested encoding: detection strips one
    lead = len(text) - len(body)
    if lead and body[:1] == '"':
        return None
    try:
        raw = body.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, from an exotic requested encoding
        return None
    width = _max_fields(raw, separator)
    if width is None:
        return None
    try:
        with warnings.catch_warnings():
            # a first record wider than ``width`` is cut with a warning (the others raise)
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.BytesIO(raw), sep=separator, engine="c", header=None, names=range(width),
                index_col=False, dtype=object, na_filter=False, keep_default_na=False,
                skip_blank_lines=False, quotechar='"', doublequote=True, escapechar=None,
                skipinitialspace=False, comment=None, encoding="utf-8")
    except (ValueError, pd.errors.ParserWarning):  # ParserError, EmptyDataError: ValueError
        return None
    del raw
    values = [df[i].to_numpy(dtype=object) for i in range(width)]
    del df
    if lead:  # the csv module keeps leading BOMs in the first cell (the C parser drops one)
        values[0] = values[0].copy()
        values[0][0] = BOM * lead + (values[0][0] or "")
    columns = [_column(v) for v in values]
    if max(c.longest for c in columns) > csv.field_size_limit():
        return None
    return columns


def _max_fields(raw: bytes, separator: str) -> int | None:
    """An upper bound of the cells per record: separators in the fullest line, plus one.

    Lines end at ``\\r`` or ``\\n``; the bytes are counted in blocks of ``_BLOCK``, to keep
    the memory small.  ``None`` when padding every line to that width would mostly store
    padding.
    """
    a = np.frombuffer(raw, dtype=np.uint8)
    sep = ord(separator)
    widest = lines = seps = carry = 0  # carry: separators since the last line break
    for start in range(0, a.size, _BLOCK):
        block = a[start:start + _BLOCK]
        count = np.cumsum(block == sep, dtype=np.int64)
        ends = np.flatnonzero((block == ord("\n")) | (block == ord("\r")))
        seps += int(count[-1])
        if not ends.size:
            carry += int(count[-1])
            continue
        at = count[ends]
        per_line = np.diff(at, prepend=0)
        per_line[0] += carry
        widest = max(widest, int(per_line.max()))
        carry = int(count[-1] - at[-1])
        lines += ends.size
    widest = max(widest, carry)  # the last line, when the text does not end with a break
    lines += 1
    return widest + 1 if (widest + 1) * lines <= 4 * (seps + lines) + _PAD_BUDGET else None


def _parse_python(name: str, text: str, separator: str) -> list[Row]:
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    except csv.Error as exc:
        raise _unreadable(name, "csv", exc) from None
    return [(i, [c if c != "" else None for c in rec]) for i, rec in enumerate(records, 1)]


# --- XLSX ----------------------------------------------------------------------------------

def _read_xlsx(path: Path, options: ReadOptions) -> _Grid:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any library failure means "unreadable"
        raise _unreadable(path.name, "xlsx", exc) from None
    try:
        sheet = _sheet(path.name, workbook, options.sheet)
        rows, errors = [], []
        for cells in sheet.iter_rows(min_row=1, min_col=1):
            rows.append((cells[0].row, [_xlsx_text(cell, errors) for cell in cells]))
    finally:
        workbook.close()
    notes = (f"formula errors in cells {', '.join(errors)}",) if errors else ()
    if options.sheet is not None:
        notes = (f"read sheet '{sheet.title}'",) + notes
    columns, numbers = _from_rows(rows)
    return _Grid(columns, numbers, notes=notes)


def _sheet(name: str, workbook: Any, wanted: str | int | None) -> Any:
    titles = workbook.sheetnames
    listed = ", ".join(titles)
    if wanted is None:
        return workbook.worksheets[0]
    if isinstance(wanted, int):
        if 0 <= wanted < len(titles):
            return workbook.worksheets[wanted]
        expected = f"a sheet number {wanted} (counting from 0; the file has: {listed})"
    elif wanted in titles:
        return workbook[wanted]
    else:
        expected = f"a sheet named '{wanted}' (the file has: {listed})"
    raise InputError(Problem(name, "", expected))


def _xlsx_text(cell: Any, errors: list[str]) -> Cell:
    """Text of one XLSX cell; formula errors are kept and their addresses collected."""
    value = cell.value
    if cell.data_type == "e":
        errors.append(cell.coordinate)
        return None if value is None else str(value)
    return _value_text(value)


# --- Parquet -------------------------------------------------------------------------------


def _read_parquet(path: Path, options: ReadOptions) -> _Grid:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any library failure means "unreadable"
        raise _unreadable(path.name, "parquet", exc) from None
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
    columns = []
    for name in df.columns:
        cells = np.empty(len(df) + 1, dtype=object)
        cells[0] = _value_text(name)
        cells[1:] = _series_text(df[name])
        columns.append(_column(cells))
    notes = ("header row option ignored: a Parquet file's header is row 1",) if (
        options.header_row not in (None, 1)) else ()
    return _Grid(columns, np.arange(1, len(df) + 2, dtype=np.int64), notes=notes)


_GRID_READERS: dict[str, Callable[[Path, ReadOptions], _Grid]] = {
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "parquet": _read_parquet,
}


#: Floats whose whole values convert to int64 exactly (below 2**53 in magnitude).
_EXACT_INT = 2.0**53


def _series_text(values: pd.Series) -> np.ndarray:
    """:func:`_value_text` of every value of a typed column, by the column's dtype at once.

    Integer, float, boolean and text columns are converted in bulk (a per-value call costs
    about 1 us: 10 s for a students table of 900,000 rows x 9 columns); any other dtype
    (dates, categories, mixed objects) value by value.  Same texts either way.
    """
    dtype = values.dtype
    out = np.empty(len(values), dtype=object)
    if dtype == np.bool_:
        out[:] = np.where(values.to_numpy(), "TRUE", "FALSE")
        return out
    if pd.api.types.is_integer_dtype(dtype):
        missing = values.isna().to_numpy()
        filled = values.to_numpy(dtype="int64", na_value=0)
        out[:] = filled.astype(str).astype(object)
        out[missing] = None
        return out
    if pd.api.types.is_float_dtype(dtype):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(x) & (x == np.trunc(x))
        small = whole & (np.abs(x) < _EXACT_INT)
        out[small] = x[small].astype("int64").astype(str).astype(object)
        big = whole & ~small
        out[big] = [str(int(v)) for v in x[big].tolist()]
        other = ~whole & ~np.isnan(x)
        out[other] = [repr(v) for v in x[other].tolist()]  # shortest round-trip, as _float_text
        return out  # NaN: None (the array's initial value)
    if pd.api.types.is_string_dtype(dtype) or dtype == object:
        items = values.tolist()
        if all(type(v) is str or v is None for v in items):
            out[:] = [v if v else None for v in items]
            return out
        out[:] = [_value_text(v) for v in items]
        return out
    out[:] = [_value_text(v) for v in values.tolist()]
    return out


def _value_text(value: object) -> Cell:
    """Text of a typed value: whole numbers without ``.0``, dates as ISO, missing as None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating):
        return _float_text(float(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return text if text != "" else None


def _float_text(value: float) -> Cell:
    if math.isnan(value):
        return None
    if value.is_integer():
        return str(int(value))
    return repr(value)


# --- Columns of cells and vectorised checks ------------------------------------------------


def _from_rows(rows: list[Row]) -> tuple[list[_Column], np.ndarray]:
    """Columns of rows of cells (short rows padded with ``None``) and the rows' numbers."""
    width = max((len(cells) for _, cells in rows), default=0)
    grid = np.full((len(rows), width), None, dtype=object)
    for r, (_, cells) in enumerate(rows):
        grid[r, : len(cells)] = cells
    numbers = np.array([n for n, _ in rows], dtype=np.int64)
    return [_column(grid[:, i].copy()) for i in range(width)], numbers


def _arrow(cells: np.ndarray) -> pa.Array | None:
    """An object array of ``str``/``None`` as one Arrow string array (64-bit offsets).

    ``None`` when a cell is not valid Unicode (a lone surrogate, which only an exotic
    requested encoding such as UTF-7 produces): the callers then work cell by cell.
    """
    try:
        return pa.array(cells, type=pa.large_string(), from_pandas=True)
    except UnicodeEncodeError:
        return None


def _flags(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy bool array, missing values as ``False``."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


_SPACE_SET = pa.array(list(WHITESPACE), type=pa.large_string())


def _column(cells: np.ndarray) -> _Column:
    """A column with its masks: one pass of Arrow kernels, Python only for cells that start
    with whitespace (``str.strip`` decides whether they are blank)."""
    arrow = _arrow(cells)
    if arrow is None:
        return _Column(cells, np.array([c is None or c == "" for c in cells], dtype=bool),
                       np.array([not _blank(c) for c in cells], dtype=bool),
                       _contains(cells, ","),
                       max((len(c.encode("utf-8", "surrogatepass")) for c in cells if c),
                           default=0))
    length = pc.fill_null(pc.binary_length(arrow), 0).to_numpy()
    empty = length == 0
    filled = ~empty
    spaced = np.flatnonzero(_flags(pc.is_in(pc.utf8_slice_codeunits(arrow, 0, 1),
                                            value_set=_SPACE_SET)))
    if spaced.size:
        filled[spaced] = [c.strip() != "" for c in cells[spaced]]
    comma = _flags(pc.match_substring(arrow, ","))
    return _Column(cells, empty, filled, comma, int(length.max()) if length.size else 0)


def _contains(cells: np.ndarray, part: str) -> np.ndarray:
    """Which cells (``str`` or ``None``) contain ``part``."""
    arrow = _arrow(cells)
    if arrow is None:
        return np.array([c is not None and part in c for c in cells], dtype=bool)
    return _flags(pc.match_substring(arrow, part))


def _matches(cells: np.ndarray, pattern: re.Pattern[str]) -> np.ndarray:
    """``pattern.match(cell) is not None`` for an object array of ``str`` cells.

    ASCII cells are matched by RE2 with the pattern restricted to ASCII (the same set of
    strings).  A cell with other characters can only match through Unicode digits or
    whitespace; those without a letter are matched by ``pattern`` itself (letters are never
    digits or whitespace).
    """
    if not cells.size:
        return np.zeros(0, dtype=bool)
    arrow = _arrow(cells)
    if arrow is None:
        return np.array([pattern.match(c) is not None for c in cells], dtype=bool)
    hit = _flags(pc.match_substring_regex(arrow, _RE2[pattern]))
    other = np.flatnonzero(~_flags(pc.string_is_ascii(arrow)))
    if other.size:
        other = other[~_flags(pc.match_substring_regex(arrow.take(other), _LETTER))]
        hit[other] = [pattern.match(c) is not None for c in cells[other]]
    return hit


# --- Header, columns and rows --------------------------------------------------------------


def _blank(cell: Cell) -> bool:
    return cell is None or cell.strip() == ""


def _split_header(name: str, grid: _Grid, wanted: int | None,
                  require_body: bool = True) -> _Table:
    """The header row and the positions of the non-empty rows below it."""
    filled = np.zeros(grid.numbers.size, dtype=bool)
    for column in grid.columns:
        filled |= column.filled
    rows = np.flatnonzero(filled)
    if not rows.size:
        raise _empty(name)
    if wanted is None:
        found = _first_header_like(grid.columns, rows)
        at = rows[0] if found is None else found
    else:
        found_rows = rows[grid.numbers[rows] == wanted]
        if not found_rows.size:
            raise InputError(Problem(name, "", f"a header in row {wanted}", (wanted,),
                                     "an empty or missing row"))
        at = found_rows[0]
    number = int(grid.numbers[at])
    header = [None if c.empty[at] else c.cells[at] for c in grid.columns]
    body = rows[grid.numbers[rows] > number]
    if not body.size and require_body:
        raise InputError(
            Problem(name, "", f"at least one data row below the header (row {number})")
        )
    return _Table(number, header, body, filled)


def _first_header_like(columns: list[_Column], rows: np.ndarray) -> int | None:
    """Position of the first of ``rows`` with at least two filled cells, more than half of
    them text (not numbers); ``None`` when there is none.  Rows are checked in growing
    blocks, as the header is nearly always among the first few."""
    start, size = 0, 64
    while start < rows.size:
        block = rows[start:start + size]
        n_filled = np.zeros(block.size, dtype=np.int64)
        n_text = np.zeros(block.size, dtype=np.int64)
        for column in columns:
            filled = column.filled[block]
            if not filled.any():
                continue
            number = np.zeros(block.size, dtype=bool)
            number[filled] = _matches(column.cells[block[filled]], NUMBER)
            n_filled += filled
            n_text += filled & ~number
        header_like = (n_filled >= 2) & (2 * n_text > n_filled)
        if header_like.any():
            return int(block[np.argmax(header_like)])
        start, size = start + size, size * 16
    return None


def _column_names(name: str, grid: _Grid, table: _Table) -> tuple[list[str], list[int]]:
    """Stripped column names and the indexes of the columns to keep.

    A column with no header name is dropped when it is empty and is an error otherwise.
    """
    names = [None if c is None else c.replace(BOM, "").strip() or None for c in table.header]
    problems, keep, seen = [], [], set()
    for i, col in enumerate(names):
        if col is None:
            if grid.columns[i].filled[table.body].any():
                problems.append(Problem(name, f"column {i + 1}",
                                        "a header name above every column that has values",
                                        (table.header_row,)))
            continue
        if col in seen or col in RESERVED:
            expected = "unique column names" if col in seen else (
                "a column name other than 'source_file' and 'source_row'")
            problems.append(Problem(name, col, expected, (table.header_row,)))
        seen.add(col)
        keep.append(i)
    if problems:
        raise InputError(problems)
    return [names[i] for i in keep], keep


def _body_cells(grid: _Grid, body: np.ndarray, keep: list[int]) -> list[np.ndarray]:
    """The kept columns' cells of the data rows (object arrays, empty cells ``None``).

    Each column of ``grid`` is released once copied (``grid.columns`` is emptied), so the
    raw cells and their copy are not both held in full.
    """
    columns = dict(enumerate(grid.columns))
    grid.columns.clear()
    cells = []
    for i in keep:
        column = columns.pop(i)
        values = column.cells[body]
        values[column.empty[body]] = None
        cells.append(values)
        del column
    return cells


def _layout_notes(grid: _Grid, table: _Table) -> tuple[str, ...]:
    notes = []
    above = table.header_row - 1
    if above:
        notes.append(f"skipped {_count(above, 'title row')} above the header")
    empty = int(np.count_nonzero(~table.filled & (grid.numbers > table.header_row)))
    if empty:
        notes.append(f"skipped {_count(empty, 'empty row')}")
    return tuple(notes)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


# --- Decimal commas ------------------------------------------------------------------------


def _fix_decimals(cells: list[np.ndarray], commas: Sequence[np.ndarray], columns: list[str],
                  separator: str | None, forced: str | None) -> tuple[str, tuple[str, ...]]:
    """Convert decimal commas in place; the file's decimal mark and a note.

    ``cells`` are the data cells, per column (see :func:`_body_cells`); ``commas`` marks, per
    column, the cells holding a ``,``.
    """
    if forced == ".":
        return ".", ()
    decimals = []  # per column: positions of cells like 12,5
    for values, comma in zip(cells, commas, strict=True):
        at = np.flatnonzero(comma)
        decimals.append(at[_matches(values[at], COMMA_DECIMAL)])
    whole_file = forced == "," or (separator == ";" and any(d.size for d in decimals))
    changed: dict[int, int] = {}
    for i, at in enumerate(decimals):
        if at.size and (whole_file or not _has_point_decimal(cells[i])):
            cells[i][at] = _points(cells[i][at])
            changed[i] = at.size
    if not changed:
        return ("," if whole_file else "."), ()
    names = ", ".join(columns[i] for i in sorted(changed))
    count = _count(sum(changed.values()), "cell")
    return ",", (f"converted decimal commas to points in {count} (columns: {names})",)


def _has_point_decimal(values: np.ndarray) -> bool:
    """Whether a column has a cell like ``12.5`` (the comma column rule's exception)."""
    present = values[~pd.isna(values)]
    return bool(_matches(present[_contains(present, ".")], POINT_DECIMAL).any())


def _points(cells: np.ndarray) -> np.ndarray:
    """The ``str`` cells with every ``,`` replaced by ``.``, one object per distinct value."""
    arrow = _arrow(cells)
    if arrow is None:
        return np.array([c.replace(",", ".") for c in cells], dtype=object)
    encoded = pc.dictionary_encode(pc.replace_substring(arrow, ",", "."))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.dictionary.to_numpy(zero_copy_only=False)[encoded.indices.to_numpy()]


# --- Output and errors ---------------------------------------------------------------------


def _frame(name: str, columns: list[str], numbers: np.ndarray,
           cells: list[np.ndarray]) -> pd.DataFrame:
    """The output table; the cell arrays become its columns without a copy."""
    files = np.empty(numbers.size, dtype=object)
    files[:] = name  # one str object for every row
    data = {"source_file": pd.Series(files, dtype=object, copy=False),
            "source_row": pd.Series(numbers.astype("int64"), copy=False)}
    data.update((c, pd.Series(v, dtype=object, copy=False))
                for c, v in zip(columns, cells, strict=True))
    return pd.DataFrame(data, copy=False)


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _unreadable(name: str, fmt: str, exc: Exception) -> InputError:
    return InputError(Problem(name, "", f"a readable .{fmt} file", (), _reason(exc)))


def _empty(name: str) -> InputError:
    return InputError(Problem(name, "", "a header row and at least one data row"))
