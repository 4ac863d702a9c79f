"""Read the raw contract tables from ``data/raw`` into typed DataFrames.

Each table is a file named after it (``schools``, ``results``, optional ``students``) with
the extension ``.csv``, ``.xlsx`` or ``.parquet``.  Every column is read as text first, then
normalised, converted and checked by :mod:`analysis.ingest.validate` (pandera schemas of the
contract, run lazily), so every bad cell is reported with its file, row and column
(:class:`analysis.errors.Problem`) instead of a traceback, all at once.

Each returned table keeps ``source_file`` and ``source_row`` (row number as the analyst
sees it in a spreadsheet: the header is row 1), so every row can be traced in the
exclusions ledger.
"""

from __future__ import annotations

import logging
import warnings as _warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.errors import InputError, InputWarning, Problem
from analysis.ingest import validate
from analysis.ingest.mapping import Mapping, apply_mapping, load_mapping
from analysis.ingest.readers import ReadOptions, ReadReport, read_text

EXTENSIONS = (".csv", ".xlsx", ".parquet")
log = logging.getLogger(__name__)


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

    All formats go through :func:`analysis.ingest.readers.read_text`; what it detected or
    repaired (encoding, separator, decimal commas, skipped title rows) is appended to
    ``reports`` when given.
    """
    df, report = read_text(path, options or ReadOptions())
    if reports is not None:
        reports.append(report)
    return df


def from_frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """A contract table held in memory (e.g. the demo generator's), typed as if it had been
    read from ``<table>.csv``: every cell as text, rows numbered as in a spreadsheet
    (header = row 1), then :func:`coerce_table`."""
    text = df.astype(object).where(df.notna(), None).map(
        lambda v: None if v is None else str(v))
    text.insert(0, "source_row", range(2, len(df) + 2))
    text.insert(0, "source_file", f"{table}.csv")
    return coerce_table(text, table)


def coerce_table(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Normalise a text table and convert it to the contract's types (no range checks).

    See :func:`analysis.ingest.validate.normalise` and :func:`analysis.ingest.validate.coerce`; the
    contract's value rules are checked by :func:`analysis.ingest.validate.validate_table`.

    Raises
    ------
    InputError
        Listing missing required columns and every cell that cannot be converted.
    """
    text, _ = validate.normalise(df, table)
    typed, problems, _ = validate.coerce(text, table)
    if problems:
        raise InputError(problems)
    return typed


def read_table(raw_dir: str | Path, table: str, *, required: bool = True,
               options: ReadOptions | None = None, mapping: Mapping | None = None,
               reports: list[ReadReport] | None = None, notes: list[str] | None = None,
               repairs: list[str] | None = None,
               warnings: list[str] | None = None) -> pd.DataFrame | None:
    """Find, read, map, normalise, type and validate one contract table.

    The one path every table takes: :func:`read_text_table` (any format, text cells),
    :func:`analysis.ingest.mapping.apply_mapping` (the analyst's headers to canonical names,
    percent shares to fractions; a file with canonical headers needs no mapping), then
    :func:`analysis.ingest.validate.validate_table` (repairs, types, and the table's rules, with
    every bad cell located).  What the reader detected goes to ``reports``; the mapping's
    notes, the repairs and the warnings go to ``notes`` (warnings prefixed ``warning:``),
    and also to ``repairs`` and ``warnings`` when given.  Repairs are logged (INFO) and
    warnings issued as :class:`~analysis.errors.InputWarning`.

    Raises
    ------
    InputError
        Listing every problem of the table.
    """
    found = read_tables(raw_dir, (table,), required=required, options=options,
                        mapping=mapping, reports=reports, notes=notes, repairs=repairs,
                        warnings=warnings)
    return found[table]


def read_tables(raw_dir: str | Path, tables: Sequence[str] = ("schools", "results"), *,
                year: int | None = None, required: bool = True,
                options: ReadOptions | None = None, mapping: Mapping | None = None,
                reports: list[ReadReport] | None = None, notes: list[str] | None = None,
                repairs: list[str] | None = None,
                warnings: list[str] | None = None) -> dict[str, pd.DataFrame | None]:
    """Read several tables as :func:`read_table` does, and raise one :class:`InputError`
    with the problems of all of them.  With ``year``, the schools and results tables are
    also checked against each other (:func:`analysis.ingest.validate.relation_problems`)."""
    out: dict[str, pd.DataFrame | None] = {}
    problems: list[Problem] = []
    for table in tables:
        try:
            out[table], found = _read_one(raw_dir, table, required, options, mapping, reports,
                                          notes, repairs, warnings)
        except InputError as exc:
            out[table], found = None, list(exc.problems)
        problems += found
    if not problems and year is not None and {"schools", "results"} <= set(tables):
        problems += validate.relation_problems(out["schools"], out["results"], year)
    if problems:
        raise InputError(problems)
    return out


def _read_one(raw_dir, table, required, options, mapping, reports, notes, repairs,
              warnings) -> tuple[pd.DataFrame | None, list[Problem]]:
    path = find_table(raw_dir, table, required=required)
    if path is None:
        return None, []
    text, mapped = apply_mapping(read_text_table(path, options, reports), table, mapping,
                                 path.name)
    checked = validate.validate_table(text, table)
    mapped = [f"{path.name}: {n}" for n in mapped]
    done = [n for n in mapped if "percent -> fraction" in n] + checked.repairs
    _log(notes, [n for n in mapped if n not in done], done, checked.warnings)
    for sink, items in ((repairs, done), (warnings, checked.warnings)):
        if sink is not None:
            sink.extend(items)
    return getattr(checked, table), checked.problems


def _log(notes: list[str] | None, other: list[str], repairs: list[str],
         warnings: list[str]) -> None:
    for line in repairs:
        log.info("repaired: %s", line)
    for line in warnings:
        _warnings.warn(line, InputWarning, stacklevel=4)
    if notes is not None:
        notes.extend([*other, *repairs, *(f"warning: {w}" for w in warnings)])


def find_mapping(raw_dir: str | Path, mapping: str | Path | None = None) -> Mapping | None:
    """The mapping to use: ``mapping`` when given, else ``raw_dir/mapping.yaml`` if present."""
    path = Path(mapping) if mapping else Path(raw_dir) / "mapping.yaml"
    if mapping and not path.exists():
        raise InputError(Problem(str(path), "", "an existing mapping file "
                                 "(params.yaml: prepare.mapping)"))
    return load_mapping(path) if path.exists() else None
