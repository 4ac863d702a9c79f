"""Stage 03's analysis sample: which schools of the reporting year enter the models.

A school is used when it has a social index, a quality index and at least ``min_n``
students behind the quality index; every other school of the year is booked in the ledger
with its reason (:func:`analysis_sample`).  No model is fitted on data that cannot carry
one: fewer than ``ses_link.min_schools`` schools, or a social or quality index with the same
value for every school, stop the run with an :class:`~analysis.errors.InputError` naming
what to change (:func:`check_sample`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from analysis import ledger
from analysis.errors import SET_IN, InputError, Problem
from analysis.ingest import schema
from analysis.numeric import is_constant

#: Default least number of schools for the gradient (params.yaml: ``ses_link.min_schools``).
MIN_SCHOOLS = 10
#: Smallest ``min_schools`` allowed: a line through fewer points has no residual variation.
MIN_SCHOOLS_FLOOR = 3


def check_sample(data: pd.DataFrame, *, min_schools: int = MIN_SCHOOLS,
                 y: str = "quality_index", x: str = "social_index",
                 year: int | None = None, min_n: int | None = None,
                 excluded: Mapping[str, int] | None = None) -> None:
    """Stop unless ``data`` can carry the gradient regression.

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        The analysis sample, with columns ``y`` and ``x``.
    min_schools : int
        Least number of schools (params.yaml ``ses_link.min_schools``; at least
        :data:`MIN_SCHOOLS_FLOOR`).
    year, min_n, excluded : optional
        For the message: the reporting year, the ``min_n`` in force, and the number of the
        year's schools left out, by ledger reason (``below_min_n``, ``no_quality_results``,
        ``no_social_index``, ``no_cluster``).

    Raises
    ------
    InputError
        ``min_schools`` is below the floor; fewer than ``min_schools`` schools; or ``x`` or
        ``y`` has the same value for every school.
    """
    when = f" in {year}" if year is not None else ""
    if int(min_schools) < MIN_SCHOOLS_FLOOR:
        raise InputError(Problem(
            file="params.yaml", column="ses_link.min_schools", value=str(min_schools),
            expected=f"a whole number >= {MIN_SCHOOLS_FLOOR} (a line through fewer schools "
                     f"cannot be checked against anything); set it in {SET_IN}"))
    n = len(data)
    if n < min_schools:
        minimum = f"min_n = {min_n}" if min_n is not None else "min_n"
        left_out = ""
        if excluded:
            total = n + sum(excluded.values())
            parts = {"below_min_n": f"fewer than {minimum} students",
                     "no_quality_results": "no quality results",
                     "no_social_index": "no social index",
                     "no_cluster": "no context cluster"}
            order = [*parts, *sorted(set(excluded) - set(parts))]
            left_out = (f" (of {total} schools{when}, left out: " + ", ".join(
                f"{excluded[reason]} with {parts.get(reason, reason)}"
                for reason in order if excluded.get(reason)) + ")")
        raise InputError(Problem(
            file=f"schools{when}", column="ses_link.min_schools",
            value=f"{n} school{'s' if n != 1 else ''}",
            expected=(f"at least ses_link.min_schools = {min_schools} schools with a social "
                      f"index, a quality index and at least {minimum} students behind it"
                      f"{left_out}: a gradient from fewer schools is not an estimate; add "
                      "schools, or lower min_n or ses_link.min_schools (at least "
                      f"{MIN_SCHOOLS_FLOOR}) in {SET_IN}")))
    advice = {x: ("check the social indicators of the schools table, or index.indicators "
                  f"in {SET_IN}"),
              y: ("check the results table, or which procedures, subjects and grades make the "
                  "quality index (prepare.quality_procedures, prepare.quality_subjects, "
                  f"prepare.quality_grades) in {SET_IN}")}
    for column in (x, y):
        if is_constant(data[column]):
            value = float(data[column].dropna().iloc[0])
            raise InputError(Problem(
                file=f"the gradient's {n} schools{when}", column=column,
                value=f"the same value {value:.4g} for every school",
                expected=(f"a {column.replace('_', ' ')} that varies between the schools: "
                          f"with no variation there is no link to estimate; {advice[column]}")))


def analysis_sample(schools: pd.DataFrame, index: pd.DataFrame, school_year: pd.DataFrame,
                    *, year: int, min_n: int, clusters: pd.DataFrame | None = None
                    ) -> tuple[pd.DataFrame, tuple]:
    """Schools of the reporting year that enter the gradient, and the ledger of the rest.

    A school of ``year`` is used when it has a social index, a quality index and at least
    ``min_n`` students behind the quality index and, when ``clusters`` is given (``cluster``
    is a model term), a context cluster (reason ``no_cluster`` otherwise).

    Parameters
    ----------
    schools, index, school_year : DataFrame
        The processed schools, social index and school-year tables.
    year, min_n : int
        The reporting year and the least number of students behind the quality index.
    clusters : DataFrame, optional
        ``school_id, cluster`` (stage 02's ``cluster_terms``); adds a string column
        ``cluster`` to the sample.

    Returns
    -------
    sample : DataFrame, one row per used school
        School columns plus ``social_index``, ``quality_index``, ``n_students`` (and
        ``cluster``).
    (ledger, accounting) : tuple of DataFrame
    """
    key = list(schema.SCHOOL_KEY)
    scope = schools.loc[schools["year"] == year]
    merged = (scope.merge(index[key + ["social_index"]], on=key, how="left")
              .merge(school_year, on=key, how="left"))
    if clusters is not None:
        merged = merged.merge(clusters[["school_id", "cluster"]], on="school_id", how="left")
        merged["cluster"] = merged["cluster"].astype("string")
    merged.index = scope.index
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    if clusters is not None:
        reason = reason.mask(merged["cluster"].isna(), "no_cluster")
    reason = reason.mask(merged["n_students"] < min_n, "below_min_n")
    reason = reason.mask(merged["quality_index"].isna(), "no_quality_results")
    reason = reason.mask(merged["social_index"].isna(), "no_social_index")
    excluded = reason.notna()
    book = ledger.record(scope, excluded, analysis="ses_link", table="schools", reason=reason)
    return merged.loc[~excluded].reset_index(drop=True), book
