"""What every file reader shares: the options, columns of cells and their checks, errors.

- :class:`ReadOptions`: how to read one file (sheet, header row, encoding, decimal mark).
- ``_Grid`` of ``_Column``: the raw cells a format reader returns, column by column, with
  the masks the checks need; ``_from_rows`` and ``_column`` build them.
- The vectorised checks (Arrow string kernels; Python's ``re`` where Arrow's RE2 would
  differ): ``_matches`` of the number patterns, ``_contains``, ``_blank``.
- ``_value_text``: the text of a typed value (XLSX and Parquet cells).
- The errors a reader raises for an unreadable or empty file.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import InputError, Problem

Cell = str | None
Row = tuple[int, list[Cell]]  # (row number as the analyst sees it, cells)

BOM = "\ufeff"
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
        ``"."`` or ``","`` for the whole file; ``None`` detects it (see
        :mod:`analysis.ingest.readers`).
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


def _blank(cell: Cell) -> bool:
    return cell is None or cell.strip() == ""


# --- Text of typed values ------------------------------------------------------------------


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


# --- Errors --------------------------------------------------------------------------------


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _unreadable(name: str, fmt: str, exc: Exception) -> InputError:
    return InputError(Problem(name, "", f"a readable .{fmt} file", (), _reason(exc)))


def _empty(name: str) -> InputError:
    return InputError(Problem(name, "", "a header row and at least one data row"))
