"""An XLSX workbook's sheet to a grid of text cells (openpyxl, cached formula values).

Typed values become text as everywhere (:func:`~analysis.ingest.readers.common._value_text`);
formula errors (``#DIV/0!``, ``#N/A``, ...) are kept as their text and their cell addresses
listed in a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.errors import InputError, Problem
from analysis.ingest.readers.common import (
    Cell,
    ReadOptions,
    _from_rows,
    _Grid,
    _unreadable,
    _value_text,
)


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
