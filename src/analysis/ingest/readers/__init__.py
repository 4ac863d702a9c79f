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

The package: :mod:`~analysis.ingest.readers.table` finds the table in a file's grid of cells
(the header, the columns, decimal commas) and holds the entry points; one module per format
turns a file into that grid (:mod:`~analysis.ingest.readers.read_csv`,
:mod:`~analysis.ingest.readers.read_xlsx`, :mod:`~analysis.ingest.readers.read_parquet`);
:mod:`~analysis.ingest.readers.common` is what they all share (the options, columns of
cells and their vectorised checks, the text of typed values, the errors).
"""

from analysis.ingest.readers.common import ReadOptions
from analysis.ingest.readers.table import ReadReport, file_sha256, read_header, read_text

__all__ = ["ReadOptions", "ReadReport", "file_sha256", "read_header", "read_text"]
