"""Read the raw contract tables from ``data/raw`` into typed DataFrames.

Each table is a file named after it (``schools``, ``results``, optional ``students``) with
the extension ``.csv``, ``.xlsx`` or ``.parquet``.  Every column is read as text first and
then converted by the contract (:mod:`analysis.schema`), so a bad cell is reported with
its file, row and column (:class:`analysis.errors.Problem`) instead of a traceback.

Each returned table keeps ``source_file`` and ``source_row`` (row number as the analyst
sees it in a spreadsheet: the header is row 1), so every row can be traced in the
exclusions ledger.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import schema
from .errors import InputError, Problem
from .mapping import Mapping, apply_mapping, load_mapping
from .readers import ReadOptions, ReadReport, read_text

EXTENSIONS = (".csv", ".xlsx", ".parquet")
INT_COLUMNS = frozenset(
    {"year", "grade", "enrollment", "participants", "n_below_min", *schema.MARK_COUNTS}
)
FLOAT_COLUMNS = frozenset({"mean_score", "score", "ses"})
CATEGORIES = {
    "settlement_type": schema.SETTLEMENT_TYPES,
    "school_type": schema.SCHOOL_TYPES,
}


def find_table(raw_dir: str | Path, name: str, *, required: bool = True) -> Path | None:
    """Path of table ``name`` in ``raw_dir`` (``name.csv``, ``name.xlsx`` or ``name.parquet``)."""
    raw_dir = Path(raw_dir)
    found = [raw_dir / f"{name}{ext}" for ext in EXTENSIONS if (raw_dir / f"{name}{ext}").exists()]
    if len(found) > 1:
        raise InputError(
            Problem(str(raw_dir), "", f"one file for table '{name}', found {len(found)}: "
                    + ", ".join(p.name for p in found))
        )
    if not found:
        if required:
            raise InputError(
                Problem(str(raw_dir), "", f"a file {name}.csv, {name}.xlsx or {name}.parquet")
            )
        return None
    return found[0]


def read_text_table(path: str | Path, options: ReadOptions | None = None,
                    reports: list[ReadReport] | None = None) -> pd.DataFrame:
    """Read a file as a table of text cells, with ``source_file`` and ``source_row``.

    All formats go through :func:`analysis.readers.read_text`; what it detected or
    repaired (encoding, separator, decimal commas, skipped title rows) is appended to
    ``reports`` when given.
    """
    df, report = read_text(path, options or ReadOptions())
    if reports is not None:
        reports.append(report)
    return df


def _int_column(raw: pd.Series, name: str, file: str, rows: pd.Series) -> tuple[pd.Series, list]:
    text = raw.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    bad = text.notna() & (num.isna() | (num % 1 != 0) | (num < 0))
    problems = _problems(bad, text, rows, name, file, "a whole number >= 0")
    return num.where(~bad).astype("Int64"), problems


def _float_column(raw: pd.Series, name: str, file: str, rows: pd.Series, lo=None, hi=None):
    text = raw.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce").astype("Float64")
    bad = text.notna() & num.isna()
    expected = "a number"
    if lo is not None:
        bad |= num.notna() & ((num < lo) | (num > hi))
        expected = f"a share from {lo} to {hi}"
    problems = _problems(bad, text, rows, name, file, expected)
    return num.where(~bad).astype("float64"), problems


def _problems(bad: pd.Series, text: pd.Series, rows: pd.Series, column: str, file: str,
              expected: str) -> list[Problem]:
    if not bad.any():
        return []
    # One problem per distinct value, so a systematic defect reads as one line.
    out = []
    for value, idx in text[bad].groupby(text[bad], sort=True).groups.items():
        out.append(Problem(file, column, expected, tuple(int(r) for r in rows[idx]), str(value)))
    return out


def coerce_table(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Convert a text table to the contract's types, collecting every problem at once.

    Raises
    ------
    InputError
        Listing missing required columns and every cell that cannot be converted.
    """
    required, columns = _contract(table)
    file = str(df["source_file"].iloc[0]) if len(df) else table
    problems: list[Problem] = [
        Problem(file, col, "a required column of the data contract")
        for col in required
        if col not in df.columns
    ]
    if problems:
        raise InputError(problems)
    out = df[["source_file", "source_row"]].astype({"source_file": "string",
                                                     "source_row": "int64"})
    rows = df["source_row"]
    for col in columns:
        if col not in df.columns:
            continue
        raw = df[col]
        if col in INT_COLUMNS:
            out[col], found = _int_column(raw, col, file, rows)
        elif col in schema.SHARE_COLUMNS:
            out[col], found = _float_column(raw, col, file, rows, 0.0, 1.0)
        elif col in FLOAT_COLUMNS:
            out[col], found = _float_column(raw, col, file, rows)
        else:
            out[col] = raw.astype("string").str.strip()
            found = []
            if col in CATEGORIES:
                bad = out[col].notna() & ~out[col].isin(CATEGORIES[col])
                found = _problems(bad, out[col], rows, col, file,
                                  "one of " + ", ".join(CATEGORIES[col]))
        problems += found
        if col in required:
            missing = out[col].isna() & df[col].isna()
            problems += _problems(missing, pd.Series("", index=df.index, dtype="string"), rows,
                                  col, file, "a value (the column is required)")
    if problems:
        raise InputError(problems)
    return out


def _contract(table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if table == "schools":
        return schema.SCHOOLS_REQUIRED, schema.SCHOOLS_COLUMNS
    if table == "results":
        return schema.RESULTS_REQUIRED, schema.RESULTS_COLUMNS
    if table == "students":
        return schema.STUDENTS_COLUMNS[:5], schema.STUDENTS_COLUMNS
    raise ValueError(f"unknown table '{table}'")


def read_table(raw_dir: str | Path, table: str, *, required: bool = True,
               options: ReadOptions | None = None, mapping: Mapping | None = None,
               reports: list[ReadReport] | None = None,
               notes: list[str] | None = None) -> pd.DataFrame | None:
    """Find, read, map and type-convert one contract table.

    The one path every table takes: :func:`read_text_table` (any format, text cells),
    :func:`analysis.mapping.apply_mapping` (the analyst's headers to canonical names,
    percent shares to fractions; a file with canonical headers needs no mapping), then
    :func:`coerce_table` (types, with every bad cell located).  What the reader detected
    goes to ``reports`` and what the mapping did to ``notes``, when given.
    """
    path = find_table(raw_dir, table, required=required)
    if path is None:
        return None
    text, mapped = apply_mapping(read_text_table(path, options, reports), table, mapping,
                                 path.name)
    if notes is not None:
        notes.extend(f"{path.name}: {note}" for note in mapped)
    return coerce_table(text, table)


def find_mapping(raw_dir: str | Path, mapping: str | Path | None = None) -> Mapping | None:
    """The mapping to use: ``mapping`` when given, else ``raw_dir/mapping.yaml`` if present."""
    path = Path(mapping) if mapping else Path(raw_dir) / "mapping.yaml"
    if mapping and not path.exists():
        raise InputError(Problem(str(path), "", "an existing mapping file "
                                 "(params.yaml: prepare.mapping)"))
    return load_mapping(path) if path.exists() else None
