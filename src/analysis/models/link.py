"""Stage 03 in memory: every model of the link between family social status and results.

:func:`ses_link_stage` takes the processed tables and ``params.yaml``'s ``ses_link`` and
``multilevel`` sections and returns what the stage writes:

1. **the expected-result model** (:mod:`analysis.models.expected`): the quality index given the
   social index (a shape that is linear outside the support) and the school's settlement
   type and type, weighted by participants, with municipality-clustered robust errors.  Its
   residuals feed the flags of stage 04;
2. **PISA-style gradients** (:mod:`analysis.models.gradients`): slope, strength, curvature and
   the gap between the top and bottom quarters of the index, for the quality index, by
   settlement type and school type, for every year in the data (with the trend), and for
   every procedure x subject x grade x year;
3. **the share of «2»** (below the minimum for scored procedures) as binomial counts
   (:mod:`analysis.models.binomial`, quasi-binomial);
4. **schools within municipalities** (:mod:`analysis.models.mixed`): the empty and the
   conditional random-intercept model (optionally a random slope of the index), REML, with
   the municipality effects;
5. **students within schools** when the students table is present
   (:mod:`analysis.models.students`).

All estimates go to one tidy table (:mod:`analysis.models.estimates`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import ledger
from analysis.errors import SET_IN, ModelError
from analysis.ingest import quality, schema
from analysis.models import binomial, estimates, expected, gradients, mixed, students
from analysis.models import sample as sample_mod

#: Outcome names in the estimates table.
QUALITY, FAIL = "quality_index", "share_fail"
#: Categorical columns gradients are also given by.
BY = ("settlement_type", "school_type")
#: Fewest municipalities for standard errors clustered by municipality; with fewer, the
#: cluster-robust errors are unreliable and HC3 is used instead (stated in ses_link.json).
MIN_CLUSTERS = 10
#: Fewest municipalities for the multilevel model of schools within municipalities.
MIN_MUNICIPALITIES = 5


@dataclass
class SesLinkResult:
    """What stage 03 computes (see the module docstring)."""

    sample: pd.DataFrame          # the gradient's schools, with fitted and residual
    estimates: pd.DataFrame       # every model's estimates (estimates.COLUMNS)
    curve: pd.DataFrame           # expected quality of a typical school along the index
    component_points: pd.DataFrame  # school x component values (n >= min_n) for the figure
    summary: dict[str, Any]       # headline numbers and the model as stated (ses_link.json)
    ledger: tuple[pd.DataFrame, pd.DataFrame]
    fits: dict[str, Any]


def yearly_samples(schools: pd.DataFrame, index: pd.DataFrame, school_year: pd.DataFrame, *,
                   min_n: int) -> pd.DataFrame:
    """Every year's gradient sample (schools with an index, a quality index, >= min_n)."""
    frames = [sample_mod.analysis_sample(schools, index, school_year, year=int(y), min_n=min_n)[0]
              .assign(year=int(y)) for y in sorted(schools["year"].unique())]
    return pd.concat(frames, ignore_index=True)


def fail_counts(results: pd.DataFrame, *, year: int, procedures: Sequence[str],
                subjects: Sequence[str], grades: Sequence[int]) -> pd.DataFrame:
    """Per school: students with «2» (or below the minimum) and all students, pooled over the
    year's quality components (``n_fail``, ``n_total``)."""
    r = results.loc[(results["year"] == year) & results["procedure"].isin(procedures)
                    & results["subject"].isin(subjects) & results["grade"].isin(grades)
                    & results["n_low"].notna()]
    return (r.groupby("school_id", sort=True)
            .agg(n_fail=("n_low", "sum"), n_total=("participants", "sum"))
            .astype("int64").reset_index())


def _lmm_design(fit: expected.ExpectedFit, data: pd.DataFrame) -> pd.DataFrame:
    """The expected model's design (with the constant) for the multilevel model."""
    X = expected.design(data, fit.spec, fit.basis, x=fit.x, levels=fit.levels)
    X = X[[c for c in fit.columns if c in X.columns]]
    X.insert(0, "Intercept", 1.0)
    return X


def multilevel_models(sample: pd.DataFrame, fit: expected.ExpectedFit, *, year: int,
                      random_slope: bool) -> tuple[pd.DataFrame, dict[str, mixed.LMMFit]]:
    """Schools within municipalities: empty and conditional models (REML, weights =
    participants scaled to mean 1, so ``var:residual`` is that of a school of average size)."""
    w = sample["n_students"].to_numpy(dtype="float64")
    w = w / w.mean()
    y = sample[QUALITY].to_numpy(dtype="float64")
    groups = sample["municipality"].astype(str).to_numpy()
    const = pd.DataFrame({"Intercept": np.ones(len(sample))})
    empty = mixed.fit_lmm(y, const, groups, weights=w)
    X = _lmm_design(fit, sample).reset_index(drop=True)
    Z = None
    if random_slope:
        Z = pd.DataFrame({"Intercept": 1.0, "social_index": sample["social_index"].to_numpy()})
    cond = mixed.fit_lmm(y, X, groups, Z, weights=w)
    for name, f in (("empty", empty), ("conditional", cond)):
        if not f.converged:
            raise ModelError(
                f"the {name} multilevel model of schools within municipalities did not "
                f"converge ({f.message}); no estimate is reported. "
                + ("Try multilevel.random_slope: false in " + SET_IN if random_slope else
                   "Check the municipalities' sizes and the quality index"))
    rows = [empty.to_estimates(model="multilevel_empty", outcome=QUALITY, year=year),
            cond.to_estimates(model="multilevel", outcome=QUALITY, year=year)]
    return estimates.concat(rows), {"empty": empty, "conditional": cond}


def component_points(results: pd.DataFrame, index: pd.DataFrame, *, year: int, min_n: int,
                     procedures: Sequence[str], subjects: Sequence[str], grades: Sequence[int],
                     formula: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The quality components of all years, and the reporting year's school x component
    values with at least ``min_n`` participants (for the small multiples)."""
    comp = quality.components(results, procedures, subjects, grades, formula)
    key = list(schema.SCHOOL_KEY)
    now = comp.loc[(comp["year"] == year) & (comp["participants"] >= min_n)]
    now = now.merge(index[key + ["social_index"]], on=key, how="inner")
    grade = now["grade"].astype("int64").astype(str)
    points = pd.DataFrame({
        "school_id": now["school_id"].to_numpy(),
        "outcome": (now["procedure"].astype(str) + "/" + now["subject"].astype(str) + "/"
                    + grade).to_numpy(),
        "social_index": now["social_index"].to_numpy(dtype="float64"),
        "value": now["value"].to_numpy(dtype="float64"),
        "n": now["participants"].to_numpy(dtype="int64")})
    points = points.dropna(subset=["social_index"])
    return comp, points.sort_values(["outcome", "school_id"], kind="stable").reset_index(drop=True)


def ses_link_stage(schools: pd.DataFrame, index: pd.DataFrame, school_year: pd.DataFrame,
                   results: pd.DataFrame, students_table: pd.DataFrame | None = None,
                   clusters: pd.DataFrame | None = None, *, year: int, min_n: int,
                   ses_link: Mapping[str, Any], multilevel: Mapping[str, Any],
                   procedures: Sequence[str], subjects: Sequence[str], grades: Sequence[int],
                   formula: str = "good_share") -> SesLinkResult:
    """Stage 03 on DataFrames (no files); see the module docstring.

    Raises
    ------
    InputError
        Too few schools or no variation (:func:`analysis.models.sample.check_sample`); a
        term or formula the data do not have.
    analysis.errors.ModelError
        A multilevel fit that did not converge or disagrees with statsmodels.
    """
    min_schools = int(ses_link["min_schools"])
    spec = expected.ExpectedSpec.from_params(ses_link)
    # a cluster term: schools without a cluster (no social index) are left out, booked
    terms = clusters if "cluster" in spec.terms and clusters is not None else None
    sample, book = sample_mod.analysis_sample(schools, index, school_year, year=year,
                                              min_n=min_n, clusters=terms)
    sample_mod.check_sample(sample, min_schools=min_schools, year=year, min_n=min_n,
                          excluded=book[0]["reason"].value_counts(sort=False).to_dict())
    notes: list[str] = []
    n_mun = int(sample["municipality"].nunique())
    if spec.cov_type == "cluster" and n_mun < MIN_CLUSTERS:
        spec = dataclasses.replace(spec, cov_type="HC3")
        notes.append(f"cov_type: {n_mun} municipalities are too few for errors clustered by "
                     f"municipality (at least {MIN_CLUSTERS}); HC3 used")
    fit = expected.fit_expected(sample, spec)
    sample = pd.concat([sample, fit.fitted], axis=1)
    rows = [fit.to_estimates(QUALITY, year)]
    common = dict(min_schools=min_schools, cov_type=spec.cov_type)
    rows.append(gradients.gradient_stats(sample, y=QUALITY, outcome=QUALITY, year=year,
                                         **common))
    for by in BY:
        rows.append(gradients.gradients_by(sample, y=QUALITY, by=by, outcome=QUALITY,
                                           year=year, **common))
    years = yearly_samples(schools, index, school_year, min_n=min_n)
    yearly = gradients.gradients_by(years, y=QUALITY, by="year", outcome=QUALITY, **common)
    rows.append(gradients.trend(yearly).query("year.isna()", engine="python"))
    rows.append(yearly.loc[yearly["year"] != year])
    comp, points = component_points(results, index, year=year, min_n=min_n,
                                    procedures=procedures, subjects=subjects, grades=grades,
                                    formula=formula)
    rows.append(gradients.component_gradients(comp, index, schools, min_n=min_n, **common))
    counts = sample[["school_id", "social_index", "municipality", *spec.terms]].merge(
        fail_counts(results, year=year, procedures=procedures, subjects=subjects,
                    grades=grades), on="school_id", how="inner")
    fits: dict[str, Any] = {"expected": fit}
    if len(counts) >= min_schools and counts["n_total"].sum() > 0:
        bfit = binomial.fit_binomial(counts, spec)
        rows.append(bfit.to_estimates(FAIL, year))
        fits["binomial"] = bfit
    if n_mun >= MIN_MUNICIPALITIES:
        ml_rows, ml_fits = multilevel_models(sample, fit, year=year,
                                             random_slope=bool(multilevel["random_slope"]))
        rows.append(ml_rows)
        fits.update(ml_fits)
    else:
        rows.append(estimates.make([{
            "model": "multilevel", "outcome": QUALITY, "year": year, "term": "icc",
            "level": "municipality", "n": n_mun, "reason": "too_few_municipalities"}]))
    books = [book]
    if students_table is not None and len(students_table):
        sdata, sbook = students.student_frame(students_table, sample, year=year,
                                              procedures=procedures, subjects=subjects,
                                              grades=grades)
        srows, sfits = students.fit_student_models(
            sdata, fixed=multilevel["student_fixed"], random=multilevel["student_random"],
            year=year, min_schools=min_schools)
        rows.append(srows)
        fits.update({f"student_{k}": v for k, v in sfits.items()})
        books.append(sbook)
    table = estimates.concat(rows)
    summary = {
        "year": year, "n_schools": fit.n_schools, "n_students": fit.n_students,
        "model": {"terms": list(spec.terms), "shape": spec.shape, "df": spec.df,
                  "support": list(spec.support), "support_bounds": list(fit.support_bounds),
                  "slope_at": spec.slope_at, "cov_type": spec.cov_type,
                  "dropped_terms": list(fit.dropped_terms), "notes": notes + list(fit.notes),
                  "columns": list(fit.columns)},
        # the statsmodels cross-check as pass/fail with its bound: the gap itself is
        # rounding noise (1e-12 .. 1e-9) that differs with the CPU (docs/reproducibility.md)
        "multilevel": {name: {"converged": f.converged, "boundary": f.boundary,
                              "message": f.message,
                              "statsmodels_check": mixed.cross_check_verdict(f)}
                       for name, f in fits.items() if isinstance(f, mixed.LMMFit)},
    }
    return SesLinkResult(sample, table, fit.curve(), points, summary, ledger.combine(books),
                         fits)
