"""Stage 03: the link between the schools' social status and their results.

A school-level weighted least squares regression of the quality index on the social
index, weighted by the number of students behind each school's quality index, with
heteroskedasticity-robust (sandwich) standard errors.  The fit gives the *socio-economic
gradient* in PISA's terms:

- **slope** -- quality-index points per 1 SD of the social index;
- **strength** -- share of between-school variance in quality explained (weighted R²);
- **curvilinearity** -- the coefficient of a squared index term, from a second model.

Each school's expected quality given its context (``fitted``) and its ``residual`` feed
the flags of stage 04.

No regression is run on data that cannot carry one: fewer than ``ses_link.min_schools``
schools, or a social or quality index with the same value for every school, stop the run
with an :class:`~analysis.errors.InputError` naming what to change.  A statistic that still
cannot be computed is ``None`` in :meth:`Gradient.to_dict`, with its reason code in
``unavailable`` (:data:`REASONS`), never NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis import ledger
from analysis.context.index import SET_IN, is_constant
from analysis.errors import InputError, Problem
from analysis.ingest import schema

COV_TYPES = ("HC0", "HC1", "HC2", "HC3", "nonrobust")
#: Default least number of schools for the gradient (params.yaml: ``ses_link.min_schools``).
MIN_SCHOOLS = 10
#: Smallest ``min_schools`` allowed: a line through fewer points has no residual variation.
MIN_SCHOOLS_FLOOR = 3
#: Why a statistic of :class:`Gradient` is ``None`` (codes of ``Gradient.unavailable``).
REASONS = {
    "too_few_degrees_of_freedom": "the model has as many coefficients as schools",
    "too_few_distinct_index_values": "the squared term needs 3 or more distinct index values",
    "full_leverage_school": "a school alone determines a coefficient (HC2/HC3 undefined)",
    "not_finite": "the computation gave no finite number",
}
#: Fields of :class:`Gradient` that may be unavailable (``None``).
STAT_FIELDS = ("slope", "slope_se", "slope_ci_low", "slope_ci_high", "slope_p", "intercept",
               "r2", "quad", "quad_se", "quad_p")


def weighted_ols(y: np.ndarray, X: pd.DataFrame, weights: np.ndarray | None = None,
                 cov_type: str = "HC3"):
    """Weighted least squares with a constant, via statsmodels.

    Parameters
    ----------
    y : array, shape (n,)
    X : DataFrame, shape (n, p)
        Regressors without the constant (added here as ``const``).
    weights : array, shape (n,), optional
        Analytic weights (inverse variance up to a factor), e.g. the number of students.
    cov_type : {"HC0", "HC1", "HC2", "HC3", "nonrobust"}

    Returns
    -------
    statsmodels RegressionResults
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got '{cov_type}'")
    design = sm.add_constant(X.astype("float64"), has_constant="add")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype="float64")
    return sm.WLS(np.asarray(y, dtype="float64"), design, weights=w).fit(cov_type=cov_type)


@dataclass(frozen=True)
class Gradient:
    """The socio-economic gradient of school quality (see module docstring).

    Units: ``slope``, ``intercept`` and their SEs in quality-index points (0..1 scale)
    per 1 SD of the social index; ``r2`` is a share (0..1); ``quad`` in points per SD².
    A statistic that could not be computed is ``None`` (or non-finite when built by hand),
    and ``unavailable`` maps its field name to a reason code (:data:`REASONS`).
    """

    slope: float | None
    slope_se: float | None
    slope_ci_low: float | None
    slope_ci_high: float | None
    slope_p: float | None
    intercept: float | None
    r2: float | None
    quad: float | None
    quad_se: float | None
    quad_p: float | None
    n_schools: int
    n_students: int
    cov_type: str
    quadratic_in_fit: bool
    unavailable: Mapping[str, str] = field(default_factory=dict)
    #: Extra terms of the expected-quality model besides the index (e.g. ``"cluster"``).
    controls: tuple[str, ...] = ()

    def to_dict(self, ndigits: int | None = None) -> dict:
        """Plain dict for JSON (ses_link.json, metrics.json), never NaN or infinite.

        Floats are rounded to ``ndigits`` decimals when given (for display); the files are
        written with :data:`analysis.outputs.FLOAT_DIGITS` significant digits anyway.

        Returns
        -------
        dict
            The fields; a statistic that is missing or not finite is ``None`` and listed in
            ``"unavailable"`` (``{field: reason_code}``, empty when all were computed;
            ``"not_finite"`` unless a more specific reason was recorded).
        """
        out = asdict(self)
        unavailable = dict(self.unavailable)
        for k in STAT_FIELDS:
            v = out[k]
            if v is None or not math.isfinite(v):
                out[k] = None
                unavailable.setdefault(k, "not_finite")
            else:
                out[k] = float(v) if ndigits is None else round(float(v), ndigits)
        out["unavailable"] = {k: unavailable[k] for k in STAT_FIELDS if k in unavailable}
        return out


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
        ``no_social_index``).

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
                     "no_social_index": "no social index"}
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


def _leverage_one(fit) -> bool:
    """Whether some school has leverage 1: it alone determines a coefficient, and HC2/HC3
    (which divide by 1 - h) are undefined, even where rounding makes them finite."""
    q, _ = np.linalg.qr(np.asarray(fit.model.wexog, dtype="float64"))
    return bool(np.any((q**2).sum(axis=1) >= 1.0 - 1e-8))


def _why(fit, cov_type: str) -> str:
    """Reason code for a non-finite statistic of ``fit``."""
    if fit.df_resid < 1:
        return "too_few_degrees_of_freedom"
    if cov_type in ("HC2", "HC3") and _leverage_one(fit):
        return "full_leverage_school"
    return "not_finite"


def fit_gradient(data: pd.DataFrame, *, quadratic: bool = False, cov_type: str = "HC3",
                 min_schools: int = MIN_SCHOOLS, y: str = "quality_index",
                 x: str = "social_index", weight: str = "n_students",
                 groups: pd.Series | None = None) -> tuple[Gradient, pd.DataFrame]:
    """Fit the gradient and return it with per-school fitted values and residuals.

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        One row per school with columns ``y``, ``x`` and ``weight``.
    quadratic : bool
        Whether the headline model (which gives ``fitted``) includes ``x²``.  The squared
        term's coefficient is reported either way, from a second fit if needed.  When it
        cannot be estimated (fewer than 3 distinct ``x``, or as many schools as
        coefficients) its statistics are unavailable and the headline model is the linear
        one (``quadratic_in_fit`` is then False).
    cov_type : {"HC0", "HC1", "HC2", "HC3", "nonrobust"}
        Standard errors; with HC2/HC3 a school of leverage 1 makes them unavailable
        (``full_leverage_school``).
    min_schools : int
        Least number of schools (params.yaml ``ses_link.min_schools``).
    groups : Series, optional, aligned with ``data``
        A categorical term of the expected-quality model (the context cluster,
        ``ses_link.cluster_term``): one indicator per group but the first, so the slope is
        then the within-group gradient and ``intercept`` that of the first group.  Its
        name is recorded in ``controls``.

    Returns
    -------
    gradient : Gradient
    fitted : DataFrame, same index as ``data``
        ``fitted`` (expected quality given context) and ``residual`` (observed − fitted).

    Raises
    ------
    InputError
        Too few schools, or ``x`` or ``y`` constant (:func:`check_sample`).
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got '{cov_type}'")
    check_sample(data, min_schools=min_schools, y=y, x=x)
    X = data[[x]].rename(columns={x: "x"})
    Xq = X.assign(x2=X["x"] ** 2)
    controls: tuple[str, ...] = ()
    if groups is not None:
        dummies = pd.get_dummies(pd.Categorical(groups.to_numpy()), prefix="g",
                                 drop_first=True, dtype="float64")
        dummies.index = X.index
        X, Xq = X.join(dummies), Xq.join(dummies)
        controls = (str(groups.name or "group"),)
    yv, w = data[y].to_numpy(), data[weight].to_numpy()
    unavailable: dict[str, str] = {}
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lin = weighted_ols(yv, X, w, cov_type)
        quad = None
        if X["x"].nunique() < 3:
            unavailable.update(dict.fromkeys(("quad", "quad_se", "quad_p"),
                                             "too_few_distinct_index_values"))
        elif len(data) <= Xq.shape[1] + 1:  # coefficients: const, x, x2
            unavailable.update(dict.fromkeys(("quad", "quad_se", "quad_p"),
                                             "too_few_degrees_of_freedom"))
        else:
            quad = weighted_ols(yv, Xq, w, cov_type)
        head = quad if quadratic and quad is not None else lin
        z = 1.959963984540054
        values = {
            "slope": head.params["x"], "slope_se": head.bse["x"],
            "slope_ci_low": head.params["x"] - z * head.bse["x"],
            "slope_ci_high": head.params["x"] + z * head.bse["x"],
            "slope_p": head.pvalues["x"], "intercept": head.params["const"],
            "r2": head.rsquared,
        }
        if quad is not None:
            values.update(quad=quad.params["x2"], quad_se=quad.bse["x2"],
                          quad_p=quad.pvalues["x2"])
    # HC2/HC3 with a school of leverage 1: the robust errors are not defined
    for fit, names in ((head, ("slope_se", "slope_ci_low", "slope_ci_high", "slope_p")),
                       (quad, ("quad_se", "quad_p"))):
        if fit is not None and cov_type in ("HC2", "HC3") and _leverage_one(fit):
            for name in names:
                values[name] = float("nan")
    stats: dict[str, float | None] = dict.fromkeys(("quad", "quad_se", "quad_p"))
    for name, value in values.items():
        value = float(value)
        if math.isfinite(value):
            stats[name] = value
        else:
            stats[name] = None
            unavailable[name] = _why(quad if name.startswith("quad") else head, cov_type)
    grad = Gradient(
        **stats, n_schools=int(len(data)), n_students=int(data[weight].sum()),
        cov_type=cov_type, quadratic_in_fit=head is quad,
        unavailable={k: unavailable[k] for k in STAT_FIELDS if k in unavailable},
        controls=controls,
    )
    fitted = pd.DataFrame({"fitted": head.fittedvalues}, index=data.index)
    fitted["residual"] = data[y] - fitted["fitted"]
    return grad, fitted


def analysis_sample(schools: pd.DataFrame, index: pd.DataFrame, school_year: pd.DataFrame,
                    *, year: int, min_n: int) -> tuple[pd.DataFrame, tuple]:
    """Schools of the reporting year that enter the gradient, and the ledger of the rest.

    A school of ``year`` is used when it has a social index, a quality index and at least
    ``min_n`` students behind the quality index.

    Returns
    -------
    sample : DataFrame, one row per used school
        School columns plus ``social_index``, ``quality_index``, ``n_students``.
    (ledger, accounting) : tuple of DataFrame
    """
    key = list(schema.SCHOOL_KEY)
    scope = schools.loc[schools["year"] == year]
    merged = (scope.merge(index[key + ["social_index"]], on=key, how="left")
              .merge(school_year, on=key, how="left"))
    merged.index = scope.index
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    reason = reason.mask(merged["n_students"] < min_n, "below_min_n")
    reason = reason.mask(merged["quality_index"].isna(), "no_quality_results")
    reason = reason.mask(merged["social_index"].isna(), "no_social_index")
    excluded = reason.notna()
    book = ledger.record(scope, excluded, analysis="ses_link", table="schools", reason=reason)
    return merged.loc[~excluded].reset_index(drop=True), book
