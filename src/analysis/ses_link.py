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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from . import ledger, schema

COV_TYPES = ("HC0", "HC1", "HC2", "HC3", "nonrobust")


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
    per 1 SD of the social index; ``r2`` is a share (0..1).
    """

    slope: float
    slope_se: float
    slope_ci_low: float
    slope_ci_high: float
    slope_p: float
    intercept: float
    r2: float
    quad: float
    quad_se: float
    quad_p: float
    n_schools: int
    n_students: int
    cov_type: str
    quadratic_in_fit: bool

    def to_dict(self, ndigits: int = 6) -> dict:
        """Plain dict with floats rounded (for metrics.json: stable bytes)."""
        return {k: round(v, ndigits) if isinstance(v, float) else v
                for k, v in asdict(self).items()}


def fit_gradient(data: pd.DataFrame, *, quadratic: bool = False, cov_type: str = "HC3",
                 y: str = "quality_index", x: str = "social_index",
                 weight: str = "n_students") -> tuple[Gradient, pd.DataFrame]:
    """Fit the gradient and return it with per-school fitted values and residuals.

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        One row per school with columns ``y``, ``x`` and ``weight``.
    quadratic : bool
        Whether the headline model (which gives ``fitted``) includes ``x²``.  The squared
        term's coefficient is always estimated and reported, from a second fit if needed.

    Returns
    -------
    gradient : Gradient
    fitted : DataFrame, same index as ``data``
        ``fitted`` (expected quality given context) and ``residual`` (observed − fitted).
    """
    X = data[[x]].rename(columns={x: "x"})
    Xq = X.assign(x2=X["x"] ** 2)
    yv, w = data[y].to_numpy(), data[weight].to_numpy()
    lin = weighted_ols(yv, X, w, cov_type)
    quad = weighted_ols(yv, Xq, w, cov_type)
    head = quad if quadratic else lin
    z = 1.959963984540054
    grad = Gradient(
        slope=float(head.params["x"]), slope_se=float(head.bse["x"]),
        slope_ci_low=float(head.params["x"] - z * head.bse["x"]),
        slope_ci_high=float(head.params["x"] + z * head.bse["x"]),
        slope_p=float(head.pvalues["x"]), intercept=float(head.params["const"]),
        r2=float(head.rsquared), quad=float(quad.params["x2"]), quad_se=float(quad.bse["x2"]),
        quad_p=float(quad.pvalues["x2"]), n_schools=int(len(data)),
        n_students=int(data[weight].sum()), cov_type=cov_type, quadratic_in_fit=quadratic,
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
