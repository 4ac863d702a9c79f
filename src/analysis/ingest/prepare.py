"""Stage 01: check the tables against each other, tidy them, and compute school-year quality.

Inputs are the typed contract tables from :mod:`analysis.ingest.io`.  Outputs:

- ``schools``: one row per school and year (contract columns plus ``urbanicity`` and
  ``log_enrollment``);
- ``results``: one row per school x year x procedure x subject x grade, with
  ``kind`` (``marked``/``scored``), ``n_low`` and ``share_low`` (share of «2», or below the
  minimum threshold) and ``share_quality`` (share of «4» and «5»; marked procedures only);
- ``school_year``: the quality index per school and year
  (:func:`analysis.ingest.quality.school_year_quality`, formula ``prepare.quality_formula``).

A year whose results cannot enter the quality index (for example only ЕГЭ, which has no
marks, with a formula that needs marks) stops the run naming ``prepare.quality_formula``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import ledger
from analysis.ingest import quality, schema, validate

URBANICITY = {"village": 0, "town": 1, "city": 2}


@dataclass
class Prepared:
    """Everything stage 01 writes."""

    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    ledger: pd.DataFrame
    accounting: pd.DataFrame


def check_relations(schools: pd.DataFrame, results: pd.DataFrame,
                    year: int) -> validate.ValidationResult:
    """Check both typed tables and the rules between them; raise :class:`InputError` listing
    every breach (see :func:`analysis.ingest.validate.validate_tables`):

    - each table's rules: types, ranges, categories, grades 4..11, unique keys
      (year, school_id) and the result key, mark counts summing to ``participants``, a
      marked procedure with mark counts and a scored one (ЕГЭ) with ``n_below_min`` (counts
      derived from shares where only shares are given), counts not above ``participants``;
    - every result's school is in ``schools`` for that year;
    - the reporting ``year`` is present in both tables.

    Returns the validation result (typed tables with derived counts, warnings, repairs).
    """
    checked = validate.validate_tables(schools, results, year)
    checked.raise_if_errors()
    return checked


def tidy_schools(schools: pd.DataFrame) -> pd.DataFrame:
    """Schools sorted by key, with ``urbanicity`` (village 0, town 1, city 2) and
    ``log_enrollment`` (natural log of enrollment + 1)."""
    out = schools.sort_values(list(schema.SCHOOL_KEY), kind="stable").reset_index(drop=True)
    out["urbanicity"] = out["settlement_type"].map(URBANICITY).astype("int64")
    out["log_enrollment"] = np.log1p(out["enrollment"].astype("float64"))
    return out


def tidy_results(results: pd.DataFrame) -> pd.DataFrame:
    """Results sorted by key, with ``kind``, ``n_low``, ``share_low`` and ``share_quality``.

    ``share_low`` is the share of «2» for a marked procedure and the share below the minimum
    threshold for a scored one; ``share_quality`` is the share of «4» and «5» (NaN for
    scored procedures).  Shares of rows with no participants are NaN.
    """
    out = results.sort_values(list(schema.RESULT_KEY), kind="stable").reset_index(drop=True)
    for c in (*schema.MARK_COUNTS, "n_below_min"):  # a table of scored procedures only has
        if c not in out.columns:                    # no mark columns at all (and vice versa)
            out[c] = pd.array([pd.NA] * len(out), dtype="Int64")
    marked = out[list(schema.MARK_COUNTS)].notna().all(axis=1)
    out["kind"] = np.where(marked, "marked", "scored")
    n = out["participants"].astype("float64").where(out["participants"] > 0)
    n_low = out["n_mark2"].where(marked, out.get("n_below_min"))
    out["n_low"] = n_low.astype("Int64")
    out["share_low"] = n_low.astype("float64") / n
    out["share_quality"] = ((out["n_mark4"] + out["n_mark5"]).astype("float64") / n).where(marked)
    return out


#: Columns of the processed ``students`` table (no ``student_key``: it is never needed).
STUDENT_COLUMNS = ("source_file", "source_row", "year", "school_id", "procedure", "subject",
                   "grade", "score", "mark", "ses")


def tidy_students(students: pd.DataFrame | None) -> pd.DataFrame:
    """The optional ``students`` table for the student-level models, sorted by key.

    The pseudonymous ``student_key`` is dropped (no analysis needs it, and nothing about a
    student is published); ``mark`` becomes a nullable integer.  Without a students table
    the result has the columns and no rows, so the stage's output always exists.

    Returns
    -------
    DataFrame, shape (n_student_rows, 10): :data:`STUDENT_COLUMNS`.
    """
    if students is None:
        students = pd.DataFrame(columns=list(STUDENT_COLUMNS))
    out = students.reindex(columns=list(STUDENT_COLUMNS)).astype({
        "source_file": "string", "source_row": "Int64", "year": "Int64", "school_id": "string",
        "procedure": "string", "subject": "string", "grade": "Int64", "score": "float64",
        "ses": "float64"})
    out["mark"] = pd.to_numeric(out["mark"], errors="coerce").astype("Int64")
    order = [*schema.RESULT_KEY, "source_row"]
    return out.sort_values(order, kind="stable").reset_index(drop=True)


def prepare(schools: pd.DataFrame, results: pd.DataFrame, *, year: int,
            procedures: Sequence[str], subjects: Sequence[str],
            grades: Sequence[int], formula: str = "good_share",
            validated: bool = False) -> Prepared:
    """Run stage 01 on typed contract tables (see module docstring).

    ``validated=True`` skips :func:`check_relations` for tables that
    :func:`analysis.ingest.io.read_tables` has already validated together (with ``year``).
    """
    if not validated:
        checked = check_relations(schools, results, year)
        schools, results = checked.schools, checked.results
    schools_t = tidy_schools(schools)
    results_t = tidy_results(results)
    no_participants = results_t["participants"] == 0
    led, acc = ledger.record(results_t, no_participants, analysis="prepare", table="results",
                             reason="no_participants")
    quality.check_components(results_t, year, procedures, subjects, grades, formula)
    school_year = quality.school_year_quality(results_t, procedures, subjects, grades, formula)
    return Prepared(schools_t, results_t, school_year, led, acc)
