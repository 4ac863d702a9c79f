"""Students within schools: the within-school, between-school and compositional SES effects.

Used only when the optional ``students`` table is present (one row per student x procedure,
with the student's ``ses`` where a questionnaire gives one).  For the reporting year and the
procedures x subjects x grades of the quality index:

- ``score_z``: the score standardised within each procedure x subject x grade (mean 0, SD 1
  over the region's students), so assessments on different scales can be pooled;
- ``ses_school``: the school's mean ``ses`` over its student rows in scope;
- ``ses_within``: the student's ``ses`` minus ``ses_school`` (group-mean centring).

With group-mean centring, the coefficient of ``ses_within`` is the **within-school** slope,
that of ``ses_school`` the **between-school** slope, and their difference the **compositional
(contextual) effect**: how much more a student scores, at the same own SES, in a school whose
students' mean SES is 1 unit higher (Raudenbush & Bryk 2002, section 5.2).

The fixed part is a patsy formula from ``params.yaml`` (``multilevel.student_fixed``); the
random part per school is ``multilevel.student_random``.  Both models (empty and conditional)
are fitted by :func:`analysis.models.mixed.fit_formula` (profiled REML, as lme4); explained
variance at each level is the proportional reduction of the empty model's variance
components (Raudenbush & Bryk 2002, eq. 4.12 and 4.21).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import ledger
from analysis.errors import SET_IN, InputError, ModelError, Problem
from analysis.models import estimates, mixed

MODEL, EMPTY = "student", "student_empty"
#: Columns of the schools table a student formula may use.
SCHOOL_COLUMNS = ("social_index", "settlement_type", "school_type", "municipality")
#: Least number of schools with students for a student-level model.
MIN_SCHOOLS = 10


def student_frame(students: pd.DataFrame, sample: pd.DataFrame, *, year: int,
                  procedures: Sequence[str], subjects: Sequence[str], grades: Sequence[int]
                  ) -> tuple[pd.DataFrame, tuple[pd.DataFrame, pd.DataFrame]]:
    """The students of the year's quality components in the gradient's schools.

    Parameters
    ----------
    students : DataFrame
        The processed ``students`` table (:func:`analysis.ingest.prepare.tidy_students`).
    sample : DataFrame
        The gradient's schools (one row each): ``school_id`` and :data:`SCHOOL_COLUMNS`.

    Returns
    -------
    data : DataFrame, one row per student x assessment used
        ``school_id``, ``score_z``, ``ses_within``, ``ses_school`` and the school columns.
    (ledger, accounting) : the rows of the year's components that were left out, by reason:
        ``school_not_in_sample`` (the school is not in the gradient: too few participants,
        no social index...), ``no_student_ses``, ``no_score``.
    """
    scope = students.loc[(students["year"] == year) & students["procedure"].isin(procedures)
                         & students["subject"].isin(subjects) & students["grade"].isin(grades)]
    reason = pd.Series(pd.NA, index=scope.index, dtype="string")
    reason = reason.mask(scope["score"].isna(), "no_score")
    reason = reason.mask(scope["ses"].isna(), "no_student_ses")
    reason = reason.mask(~scope["school_id"].isin(sample["school_id"]), "school_not_in_sample")
    book = ledger.record(scope, reason.notna(), analysis="student_model", table="students",
                         reason=reason)
    used = scope.loc[reason.isna(), ["school_id", "procedure", "subject", "grade", "score",
                                     "ses"]].copy()
    cell = used.groupby(["procedure", "subject", "grade"], sort=True)["score"]
    sd = cell.transform("std", ddof=0)
    used["score_z"] = ((used["score"] - cell.transform("mean")) / sd.where(sd > 0)).fillna(0.0)
    used["ses_school"] = used.groupby("school_id")["ses"].transform("mean")
    used["ses_within"] = used["ses"] - used["ses_school"]
    cols = [c for c in SCHOOL_COLUMNS if c in sample.columns]
    data = used.merge(sample[["school_id", *cols]], on="school_id", how="left")
    return data.reset_index(drop=True), book


def fit_student_models(data: pd.DataFrame, *, fixed: str, random: str, year: int,
                       outcome: str = "score_z", min_schools: int = MIN_SCHOOLS
                       ) -> tuple[pd.DataFrame, dict[str, mixed.LMMFit]]:
    """The empty and the conditional student-level model, as estimates rows.

    Parameters
    ----------
    data : DataFrame from :func:`student_frame`
    fixed, random : str
        ``multilevel.student_fixed`` (patsy, e.g. ``"score_z ~ ses_within + ses_school"``)
        and ``multilevel.student_random`` (``"1"`` or ``"1 + ses_within"``).

    Returns
    -------
    rows : DataFrame (:mod:`analysis.models.estimates`), level ``student``
        Both models' fixed effects and variance components, plus ``within_slope``,
        ``between_slope`` and ``contextual_effect`` (when the formula has ``ses_within``
        and ``ses_school``), ``r2_level1`` and ``r2_level2``.  Empty without students.
    fits : dict with the two :class:`~analysis.models.mixed.LMMFit`.

    Raises
    ------
    InputError
        A formula naming a column the data do not have (naming ``multilevel.student_fixed``).
    """
    if data.empty:
        return estimates.empty(), {}
    n_schools = data["school_id"].nunique()
    if n_schools < min_schools:
        return estimates.make([{
            "model": MODEL, "outcome": outcome, "year": year, "level": "student",
            "term": "within_slope", "n": len(data), "reason": "too_few_schools"}]), {}
    try:
        empty = mixed.fit_formula(data, f"{outcome} ~ 1", group="school_id", random="1")
        fit = mixed.fit_formula(data, fixed, group="school_id", random=random)
    except Exception as exc:  # patsy: an unknown name in the formula
        if type(exc).__name__ != "PatsyError":
            raise
        raise InputError(Problem(
            file="params.yaml", column="multilevel.student_fixed / multilevel.student_random",
            value=f"{fixed!r} | {random!r}",
            expected=("formulas over score_z, ses_within, ses_school and "
                      f"{', '.join(SCHOOL_COLUMNS)} ({exc}); set them in {SET_IN}"))) from exc
    for name, f in (("empty", empty), ("conditional", fit)):
        if not f.converged:
            raise ModelError(f"the {name} student-level model did not converge ({f.message}); "
                             f"no estimate is reported. Simplify multilevel.student_random "
                             f"(e.g. 1) or multilevel.student_fixed in {SET_IN}")
    rows = [empty.to_estimates(model=EMPTY, outcome=outcome, year=year, level="student",
                               group_level="school", ranef=False),
            fit.to_estimates(model=MODEL, outcome=outcome, year=year, level="student",
                             group_level="school", ranef=False)]
    extra: list[dict] = []
    base = {"model": MODEL, "outcome": outcome, "year": year, "level": "student",
            "n": len(data)}
    names = list(fit.fixed.index)
    z = estimates.Z95
    if "ses_within" in names and "ses_school" in names:
        v = fit.vcov
        for term, name in (("within_slope", "ses_within"), ("between_slope", "ses_school")):
            est, se = float(fit.fixed[name]), float(fit.fixed_se[name])
            extra.append({**base, "term": term, "estimate": est, "std_error": se,
                          "ci_low": est - z * se, "ci_high": est + z * se})
        est = float(fit.fixed["ses_school"] - fit.fixed["ses_within"])
        se = float(np.sqrt(v.loc["ses_school", "ses_school"] + v.loc["ses_within", "ses_within"]
                           - 2 * v.loc["ses_school", "ses_within"]))
        extra.append({**base, "term": "contextual_effect", "estimate": est, "std_error": se,
                      "ci_low": est - z * se, "ci_high": est + z * se})
    tau0 = float(empty.cov_re.iloc[0, 0])
    tau1 = float(fit.cov_re.iloc[0, 0])
    extra.append({**base, "term": "r2_level1", "estimate": 1.0 - fit.sigma2 / empty.sigma2,
                  "reason": "no_standard_error"})
    extra.append({**base, "term": "r2_level2", "n": int(n_schools),
                  "estimate": (1.0 - tau1 / tau0) if tau0 > 0 else None,
                  "reason": "no_standard_error" if tau0 > 0 else "boundary"})
    return estimates.concat([*rows, estimates.make(extra)]), {"empty": empty, "fit": fit}
