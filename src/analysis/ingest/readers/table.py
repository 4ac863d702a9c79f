"""A file's table of text cells: the entry points :func:`read_text` and :func:`read_header`.

The format reader of the file's extension turns it into a grid of cells; here the header
row is found (title rows above it skipped), the columns are named and checked, empty rows
dropped, decimal commas converted, and the table and its :class:`ReadReport` returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import InputError, Problem
from analysis.ingest.readers.common import (
    BOM,
    COMMA_DECIMAL,
    NUMBER,
    POINT_DECIMAL,
    Cell,
    ReadOptions,
    _arrow,
    _blank,
    _Column,
    _contains,
    _empty,
    _Grid,
    _matches,
)
from analysis.ingest.readers.read_csv import _read_csv
from analysis.ingest.readers.read_parquet import _read_parquet
from analysis.ingest.readers.read_xlsx import _read_xlsx

RESERVED = ("source_file", "source_row")


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


_GRID_READERS: dict[str, Callable[[Path, ReadOptions], _Grid]] = {
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "parquet": _read_parquet,
}


# --- Header, columns and rows --------------------------------------------------------------


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


# --- Output --------------------------------------------------------------------------------


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

