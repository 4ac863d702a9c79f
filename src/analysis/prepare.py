"""Stage 01: check the tables against each other, tidy them, and compute school-year quality.

Inputs are the typed contract tables from :mod:`analysis.io`.  Outputs:

- ``schools``: one row per school and year (contract columns plus ``urbanicity`` and
  ``log_enrollment``);
- ``results``: one row per school x year x procedure x subject x grade, with
  ``kind`` (``marked``/``scored``), ``n_low`` and ``share_low`` (share of «2», or below the
  minimum threshold) and ``share_quality`` (share of «4» and «5»; marked procedures only);
- ``school_year``: the quality index per school and year (see :func:`school_year_quality`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import ledger, schema
from .errors import InputError, Problem

URBANICITY = {"village": 0, "town": 1, "city": 2}


@dataclass
class Prepared:
    """Everything stage 01 writes."""

    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    ledger: pd.DataFrame
    accounting: pd.DataFrame


def _rows(df: pd.DataFrame, mask: pd.Series) -> tuple[int, ...]:
    return tuple(int(r) for r in df.loc[mask, "source_row"])


def _file(df: pd.DataFrame, default: str) -> str:
    return str(df["source_file"].iloc[0]) if len(df) and "source_file" in df else default


def check_relations(schools: pd.DataFrame, results: pd.DataFrame, year: int) -> None:
    """Cross-table rules of the contract; raises :class:`InputError` listing all breaches.

    - keys are unique: (year, school_id) in schools, the result key in results;
    - every result's school is in ``schools`` for that year;
    - grades are 4..11;
    - mark counts, where given, sum to ``participants``; a marked procedure has mark counts,
      a scored one (ЕГЭ) has ``n_below_min``; counts never exceed ``participants``;
    - the reporting ``year`` is present in both tables.
    """
    problems: list[Problem] = []
    sf, rf = _file(schools, "schools"), _file(results, "results")
    dup = schools.duplicated(list(schema.SCHOOL_KEY), keep=False)
    if dup.any():
        problems.append(Problem(sf, "school_id", "one row per school and year (duplicate key)",
                                _rows(schools, dup)))
    dup = results.duplicated(list(schema.RESULT_KEY), keep=False)
    if dup.any():
        problems.append(Problem(rf, "procedure", "one row per school, year, procedure, subject "
                                "and grade (duplicate key)", _rows(results, dup)))
    known = pd.MultiIndex.from_frame(schools[list(schema.SCHOOL_KEY)])
    orphan = ~pd.MultiIndex.from_frame(results[list(schema.SCHOOL_KEY)]).isin(known)
    if orphan.any():
        problems.append(Problem(rf, "school_id", "a school listed in the schools table for the "
                                "same year", _rows(results, orphan),
                                str(results.loc[orphan, "school_id"].iloc[0])))
    bad_grade = ~results["grade"].isin(schema.GRADES)
    if bad_grade.any():
        problems.append(Problem(rf, "grade", "a grade from 4 to 11", _rows(results, bad_grade),
                                str(results.loc[bad_grade, "grade"].iloc[0])))
    problems += _check_counts(results, rf)
    for df, f in ((schools, sf), (results, rf)):
        if not (df["year"] == year).any():
            problems.append(Problem(f, "year", f"rows for the reporting year {year} "
                                    "(params.yaml: year)"))
    if problems:
        raise InputError(problems)


def _check_counts(results: pd.DataFrame, file: str) -> list[Problem]:
    problems = []
    marks = [c for c in schema.MARK_COUNTS if c in results]
    has_marks = results[marks].notna().all(axis=1) if marks else pd.Series(False, results.index)
    has_below = results["n_below_min"].notna() if "n_below_min" in results else has_marks & False
    neither = ~has_marks & ~has_below
    if neither.any():
        problems.append(Problem(file, "n_mark2", "mark counts n_mark2..n_mark5 (marked "
                                "procedures) or n_below_min (scored procedures)",
                                _rows(results, neither)))
    if marks:
        total = results[marks].sum(axis=1, min_count=len(marks))
        off = has_marks & (total != results["participants"])
        if off.any():
            problems.append(Problem(file, "participants", "n_mark2 + n_mark3 + n_mark4 + "
                                    "n_mark5 = participants", _rows(results, off)))
    if "n_below_min" in results:
        over = has_below & (results["n_below_min"] > results["participants"])
        if over.any():
            problems.append(Problem(file, "n_below_min", "at most participants",
                                    _rows(results, over)))
    return problems


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
    marked = out[list(schema.MARK_COUNTS)].notna().all(axis=1)
    out["kind"] = np.where(marked, "marked", "scored")
    n = out["participants"].astype("float64").where(out["participants"] > 0)
    n_low = out["n_mark2"].where(marked, out.get("n_below_min"))
    out["n_low"] = n_low.astype("Int64")
    out["share_low"] = n_low.astype("float64") / n
    out["share_quality"] = ((out["n_mark4"] + out["n_mark5"]).astype("float64") / n).where(marked)
    return out


def school_year_quality(results: pd.DataFrame, procedures: Sequence[str],
                        subjects: Sequence[str], grades: Sequence[int]) -> pd.DataFrame:
    """Quality index per school and year.

    The quality index is the participant-weighted share of marks «4» and «5» over the
    chosen procedures x subjects x grades (marked procedures only), on 0..1.

    Returns
    -------
    DataFrame, one row per (year, school_id) with at least one component
        ``quality_index``; ``n_tests`` (participants summed over components);
        ``n_students`` (estimated distinct students: per procedure and grade the largest
        participants count over subjects, summed -- a conservative sample size, since the
        same students sit Russian and mathematics); ``n_components``.
    """
    sel = (
        results["procedure"].isin(procedures)
        & results["subject"].isin(subjects)
        & results["grade"].isin(grades)
        & (results["kind"] == "marked")
        & (results["participants"] > 0)
    )
    comp = results.loc[sel].copy()
    comp["n_good"] = (comp["n_mark4"] + comp["n_mark5"]).astype("int64")
    comp["participants"] = comp["participants"].astype("int64")
    key = list(schema.SCHOOL_KEY)
    agg = comp.groupby(key, sort=True).agg(
        n_good=("n_good", "sum"), n_tests=("participants", "sum"),
        n_components=("participants", "size"),
    )
    students = (
        comp.groupby(key + ["procedure", "grade"], sort=True)["participants"].max()
        .groupby(level=key).sum().rename("n_students")
    )
    out = agg.join(students).reset_index()
    out["quality_index"] = out["n_good"] / out["n_tests"]
    return out[key + ["quality_index", "n_tests", "n_students", "n_components"]]


def prepare(schools: pd.DataFrame, results: pd.DataFrame, *, year: int,
            procedures: Sequence[str], subjects: Sequence[str],
            grades: Sequence[int]) -> Prepared:
    """Run stage 01 on typed contract tables (see module docstring)."""
    check_relations(schools, results, year)
    schools_t = tidy_schools(schools)
    results_t = tidy_results(results)
    no_participants = results_t["participants"] == 0
    led, acc = ledger.record(results_t, no_participants, analysis="prepare", table="results",
                             reason="no_participants")
    quality = school_year_quality(results_t, procedures, subjects, grades)
    return Prepared(schools_t, results_t, quality, led, acc)
