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
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
class _Grid:
    """Raw cells of a file before the header is found, with format-specific findings."""

    rows: list[Row]
    encoding: str | None = None
    separator: str | None = None
    notes: tuple[str, ...] = ()


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
    header_row, header, body = _split_header(name, grid.rows, options.header_row)
    columns, keep = _column_names(name, header, body, header_row)
    body = [(number, [cells[i] for i in keep]) for number, cells in body]
    decimal, decimal_notes = (None, ()) if fmt == "parquet" else _fix_decimals(
        body, columns, grid.separator, options.decimal)
    report = ReadReport(
        file=name, format=fmt, encoding=grid.encoding, separator=grid.separator,
        decimal=decimal, header_row=header_row,
        notes=grid.notes + _layout_notes(grid.rows, header_row) + decimal_notes,
        sha256=file_sha256(path), size=path.stat().st_size,
    )
    return _frame(name, columns, body), report


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
    _, header, _ = _split_header(name, grid.rows, options.header_row, require_body=False)
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
    if not text.strip(BOM + " \t\r\n"):
        raise _empty(path.name)
    separator = _separator(text)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    except csv.Error as exc:
        raise _unreadable(path.name, "csv", exc) from None
    rows = [(i, [c if c != "" else None for c in rec]) for i, rec in enumerate(records, 1)]
    return _Grid(rows, encoding, separator, notes)


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
    """``;`` when the first line with a separator has more ``;`` than ``,``, else ``,``."""
    for line in io.StringIO(text):
        if ";" in line or "," in line:
            return ";" if line.count(";") > line.count(",") else ","
    return ","


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
    return _Grid(rows, notes=notes)


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
    header = [_value_text(c) for c in df.columns]
    body = [[_value_text(v) for v in df[c].tolist()] for c in df.columns]
    rows = [(1, header)] + [(i, list(cells)) for i, cells in enumerate(zip(*body, strict=True), 2)]
    notes = ("header row option ignored: a Parquet file's header is row 1",) if (
        options.header_row not in (None, 1)) else ()
    return _Grid(rows, notes=notes)


_GRID_READERS: dict[str, Callable[[Path, ReadOptions], _Grid]] = {
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "parquet": _read_parquet,
}


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


# --- Header, columns and rows --------------------------------------------------------------


def _blank(cell: Cell) -> bool:
    return cell is None or cell.strip() == ""


def _empty_row(cells: Sequence[Cell]) -> bool:
    return all(_blank(c) for c in cells)


def _looks_like_header(cells: Sequence[Cell]) -> bool:
    filled = [c for c in cells if not _blank(c)]
    text = [c for c in filled if not NUMBER.match(c)]
    return len(filled) >= 2 and 2 * len(text) > len(filled)


def _split_header(
    name: str, rows: list[Row], wanted: int | None, require_body: bool = True
) -> tuple[int, list[Cell], list[Row]]:
    """Header row number, header cells, and the non-empty rows below it."""
    filled = [(number, cells) for number, cells in rows if not _empty_row(cells)]
    if not filled:
        raise _empty(name)
    if wanted is None:
        number, header = next((r for r in filled if _looks_like_header(r[1])), filled[0])
    else:
        found = [r for r in filled if r[0] == wanted]
        if not found:
            raise InputError(Problem(name, "", f"a header in row {wanted}", (wanted,),
                                     "an empty or missing row"))
        number, header = found[0]
    body = [(n, cells) for n, cells in filled if n > number]
    if not body and require_body:
        raise InputError(
            Problem(name, "", f"at least one data row below the header (row {number})")
        )
    return number, header, body


def _column_names(name: str, header: list[Cell], body: list[Row],
                  header_row: int) -> tuple[list[str], list[int]]:
    """Stripped column names and the indexes of the cells to keep.

    A column with no header name is dropped when it is empty and is an error otherwise.
    """
    width = max(len(header), *(len(cells) for _, cells in body))
    names = [(header[i] if i < len(header) else None) for i in range(width)]
    names = [None if c is None else c.replace(BOM, "").strip() or None for c in names]
    problems, keep, seen = [], [], set()
    for i, col in enumerate(names):
        if col is None:
            if any(i < len(cells) and not _blank(cells[i]) for _, cells in body):
                problems.append(Problem(name, f"column {i + 1}",
                                        "a header name above every column that has values",
                                        (header_row,)))
            continue
        if col in seen or col in RESERVED:
            expected = "unique column names" if col in seen else (
                "a column name other than 'source_file' and 'source_row'")
            problems.append(Problem(name, col, expected, (header_row,)))
        seen.add(col)
        keep.append(i)
    if problems:
        raise InputError(problems)
    for _, cells in body:
        cells.extend([None] * (width - len(cells)))
    return [names[i] for i in keep], keep


def _layout_notes(rows: list[Row], header_row: int) -> tuple[str, ...]:
    notes = []
    above = header_row - 1
    if above:
        notes.append(f"skipped {_count(above, 'title row')} above the header")
    empty = sum(1 for n, cells in rows if n > header_row and _empty_row(cells))
    if empty:
        notes.append(f"skipped {_count(empty, 'empty row')}")
    return tuple(notes)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


# --- Decimal commas ------------------------------------------------------------------------


def _fix_decimals(body: list[Row], columns: list[str], separator: str | None,
                  forced: str | None) -> tuple[str, tuple[str, ...]]:
    """Convert decimal commas in place; the file's decimal mark and a note."""
    if forced == ".":
        return ".", ()
    cells_by_column = list(zip(*(cells for _, cells in body), strict=True))
    whole_file = forced == "," or (separator == ";" and any(
        c is not None and COMMA_DECIMAL.match(c) for col in cells_by_column for c in col))
    targets = [i for i, col in enumerate(cells_by_column)
               if whole_file or _comma_column(col)]
    changed = _convert(body, targets)
    if not changed:
        return ("," if whole_file else "."), ()
    names = ", ".join(columns[i] for i in sorted(changed))
    cells = _count(sum(changed.values()), "cell")
    return ",", (f"converted decimal commas to points in {cells} (columns: {names})",)


def _comma_column(cells: Sequence[Cell]) -> bool:
    """A column written with decimal commas: some ``12,5`` and no ``12.5``."""
    present = [c for c in cells if c is not None]
    return any(COMMA_DECIMAL.match(c) for c in present) and not any(
        POINT_DECIMAL.match(c) for c in present)


def _convert(body: list[Row], targets: list[int]) -> dict[int, int]:
    """Replace the comma in number-like cells of the target columns; counts per column."""
    changed: dict[int, int] = {}
    for _, cells in body:
        for i in targets:
            cell = cells[i]
            if cell is not None and "," in cell and COMMA_NUMBER.match(cell):
                cells[i] = cell.replace(",", ".")
                changed[i] = changed.get(i, 0) + 1
    return changed


# --- Output and errors ---------------------------------------------------------------------


def _frame(name: str, columns: list[str], body: list[Row]) -> pd.DataFrame:
    df = pd.DataFrame([cells for _, cells in body], columns=columns, dtype=object)
    df.insert(0, "source_row", np.array([n for n, _ in body], dtype="int64"))
    df.insert(0, "source_file", pd.Series([name] * len(body), dtype=object))
    return df


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _unreadable(name: str, fmt: str, exc: Exception) -> InputError:
    return InputError(Problem(name, "", f"a readable .{fmt} file", (), _reason(exc)))


def _empty(name: str) -> InputError:
    return InputError(Problem(name, "", "a header row and at least one data row"))
