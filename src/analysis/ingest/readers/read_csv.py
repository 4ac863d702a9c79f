"""A CSV file to a grid of text cells: its encoding, its separator, and the cells.

The encoding is strict UTF-8 (with or without BOM), else Windows-1251 (or the requested
one); the separator is ``;`` when the first line with a separator has more ``;`` than
``,``.  The cells are split by pandas' C parser, with the same records and cells as
Python's :mod:`csv` module, which reads the few files the C parser cannot (see
``_parse_c``).
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError, Problem
from analysis.ingest.readers.common import (
    BOM,
    ReadOptions,
    Row,
    _Column,
    _column,
    _empty,
    _from_rows,
    _Grid,
    _reason,
    _unreadable,
)

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: A CSV whose widest line would pad more than this many cells beyond four times its real
#: cells is read by the csv module instead (e.g. one quoted cell holding 10,000 commas).
_PAD_BUDGET = 1 << 22
_BLOCK = 1 << 20  # bytes per block when counting separators per line

log = logging.getLogger(__name__)


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
