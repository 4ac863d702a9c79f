"""The quality index of a school (индекс качества): stage 01's composite of its results.

The quality index is a 0..1 composite of a school's results over the chosen procedures x
subjects x grades, each component weighted by its participants.  Its formula is a parameter
(``prepare.quality_formula``):

- ``good_share`` -- the share of marks «4» and «5» (the documents' «качество подготовки»);
- ``mean_mark`` -- the mean mark rescaled to 0..1: (mean - 2) / 3;
- ``not_failing`` -- the share not failing: not «2» in a marked procedure, not below the
  minimum threshold in a scored one (ЕГЭ, or any test reported as a share below a
  threshold).  It is the one formula a region with only scored procedures can use.

Marks exist only for marked procedures (ВПР, ОГЭ), so ``good_share`` and ``mean_mark`` use
their components and leave scored ones out; ЕГЭ is then summarised on its own
(``ege_not_failing``) for the secondary schools that sit it.

The quality groups built on the index are stage 02's (:mod:`analysis.context.quality`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.errors import SET_IN, InputError, Problem
from analysis.ingest import schema

FORMULAS = ("good_share", "mean_mark", "not_failing")
#: Formulas that need mark counts (marked procedures only).
MARK_FORMULAS = ("good_share", "mean_mark")
#: Pooled mark counts kept per school-year, for the groups' distributions over marks.
POOLED_MARKS = tuple(f"n_mark{m}" for m in (2, 3, 4, 5))


def check_formula(formula: str) -> None:
    if formula not in FORMULAS:
        raise ValueError(f"prepare.quality_formula must be one of {FORMULAS}, got '{formula}'")


def components(results: pd.DataFrame, procedures: Sequence[str], subjects: Sequence[str],
               grades: Sequence[int], formula: str = "good_share") -> pd.DataFrame:
    """Result rows that enter the quality index, with their value on 0..1.

    Parameters
    ----------
    results : DataFrame
        Tidy results (:func:`analysis.ingest.prepare.tidy_results`): ``kind``, ``n_low``,
        ``participants`` and the mark counts (NA for scored rows).
    procedures, subjects, grades : sequences
        The components to use (``prepare.quality_*``).
    formula : {"good_share", "mean_mark", "not_failing"}

    Returns
    -------
    DataFrame, one row per component (school x year x procedure x subject x grade)
        The result key, ``participants`` (> 0), ``value`` (0..1) and ``n_good`` (the
        count behind the value: «4»+«5», rescaled mark points, or participants not failing).
    """
    check_formula(formula)
    sel = (results["procedure"].isin(procedures) & results["subject"].isin(subjects)
           & results["grade"].isin(grades) & (results["participants"] > 0))
    if formula in MARK_FORMULAS:
        sel &= results["kind"] == "marked"
    else:
        sel &= results["n_low"].notna()
    comp = results.loc[sel].copy()
    n = comp["participants"].astype("float64")
    marks = comp.reindex(columns=POOLED_MARKS).astype("float64")
    if formula == "good_share":
        good = marks["n_mark4"] + marks["n_mark5"]
    elif formula == "mean_mark":
        points = (2 * marks["n_mark2"] + 3 * marks["n_mark3"] + 4 * marks["n_mark4"]
                  + 5 * marks["n_mark5"])
        good = (points - 2 * n) / 3
    else:
        good = n - comp["n_low"].astype("float64")
    comp["n_good"] = good
    comp["value"] = good / n
    return comp


def school_year_quality(results: pd.DataFrame, procedures: Sequence[str],
                        subjects: Sequence[str], grades: Sequence[int],
                        formula: str = "good_share") -> pd.DataFrame:
    """Quality index per school and year (see the module docstring for the formulas).

    Returns
    -------
    DataFrame, one row per (year, school_id) with at least one component
        ``quality_index`` (0..1, participant-weighted over components); ``n_tests``
        (participants summed over components); ``n_students`` (estimated distinct
        students: per procedure and grade the largest participants count over subjects,
        summed -- a conservative sample size, since the same students sit Russian and
        mathematics); ``n_components``; ``n_mark2`` .. ``n_mark5`` (marks pooled over the
        marked components, NA without any); ``ege_not_failing`` and ``n_ege`` (share of
        ЕГЭ sittings at or above the minimum, over every ЕГЭ subject; NA for schools
        without ЕГЭ, or when the formula already counts ЕГЭ in the index).
    """
    key = list(schema.SCHOOL_KEY)
    comp = components(results, procedures, subjects, grades, formula)
    comp["participants"] = comp["participants"].astype("int64")
    agg = comp.groupby(key, sort=True).agg(
        n_good=("n_good", "sum"), n_tests=("participants", "sum"),
        n_components=("participants", "size"))
    students = (comp.groupby(key + ["procedure", "grade"], sort=True)["participants"].max()
                .groupby(level=key).sum().rename("n_students"))
    marked = comp.loc[comp["kind"] == "marked"]
    pooled = (marked.groupby(key, sort=True)[list(POOLED_MARKS)].sum()
              .astype("int64").astype("Int64"))
    out = agg.join(students).join(pooled).reset_index()
    out[list(POOLED_MARKS)] = out[list(POOLED_MARKS)].astype("Int64")
    out["quality_index"] = out["n_good"] / out["n_tests"]
    counts_ege = formula == "not_failing" and any(p in schema.SCORED_PROCEDURES
                                                  for p in procedures)
    ege = results.loc[results["procedure"].isin(schema.SCORED_PROCEDURES)
                      & (results["participants"] > 0) & results["n_low"].notna()]
    if counts_ege or ege.empty:
        out["ege_not_failing"], out["n_ege"] = np.nan, pd.array([pd.NA] * len(out), "Int64")
    else:
        e = ege.assign(n=ege["participants"].astype("int64"),
                       low=ege["n_low"].astype("int64")).groupby(key, sort=True)[
            ["n", "low"]].sum()
        e = pd.DataFrame({"ege_not_failing": 1 - e["low"] / e["n"], "n_ege": e["n"]})
        out = out.merge(e.reset_index(), on=key, how="left")
        out["n_ege"] = out["n_ege"].astype("Int64")
    cols = key + ["quality_index", "n_tests", "n_students", "n_components",
                  *POOLED_MARKS, "ege_not_failing", "n_ege"]
    return out[cols]


def check_components(results: pd.DataFrame, year: int, procedures: Sequence[str],
                     subjects: Sequence[str], grades: Sequence[int], formula: str) -> None:
    """Stop the run when no result of ``year`` can enter the quality index.

    The message names ``prepare.quality_formula`` / ``quality_procedures`` and lists what the
    data holds, so the analyst sees which setting fits (for example: only ЕГЭ, which has
    no marks, needs ``not_failing``).
    """
    now = results.loc[(results["year"] == year) & (results["participants"] > 0)]
    if not components(now, procedures, subjects, grades, formula).empty:
        return
    held = (now.groupby(["procedure", "kind"], sort=True)
            .agg(subjects=("subject", lambda s: ",".join(sorted(set(map(str, s))))),
                 grades=("grade", lambda g: ",".join(map(str, sorted(set(g)))))).reset_index())
    found = "; ".join(f"{r.procedure} ({r.kind}: subjects {r.subjects}; grades {r.grades})"
                      for r in held.itertuples()) or "no results with participants"
    only_scored = not (now["kind"] == "marked").any()
    hint = ("these data have no mark counts, so set prepare.quality_formula: not_failing "
            "(share not below the minimum) and choose their procedures, subjects and grades"
            if only_scored and formula in MARK_FORMULAS else
            "choose procedures, subjects and grades the data have")
    raise InputError(Problem(
        file=f"results ({year})", column="prepare.quality_formula",
        value=(f"{formula} over procedures {list(procedures)}, subjects {list(subjects)}, "
               f"grades {list(grades)}: no result of {year} fits"),
        expected=f"results the quality index can use; the data hold: {found}; {hint} in "
                 f"{SET_IN}"))
