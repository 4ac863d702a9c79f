"""Small analyst files for the reader tests (test_readers_*.py), and what to look at in
:func:`analysis.ingest.readers.read_text`'s output."""

from __future__ import annotations

import csv
import io

import openpyxl
from hypothesis import HealthCheck, settings

from analysis.errors import Problem

#: Hypothesis settings of the readers' property tests.
PROPS = settings(max_examples=50, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


def write_csv(path, rows, encoding="utf-8", sep=","):
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path, sheets):
    """``sheets``: {title: list of rows}; rows are lists of cell values."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def data(df):
    """The text cells without the source columns, as lists."""
    return df.drop(columns=["source_file", "source_row"]).values.tolist()


def problem(exc_info) -> Problem:
    (only,) = exc_info.value.problems
    return only
