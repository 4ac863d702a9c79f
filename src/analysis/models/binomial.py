"""The share of «2» (or of results below the minimum) as binomial counts.

A school-level logistic GLM of the counts ``fails`` out of ``total`` on the same design as
the expected-result model (:mod:`analysis.models.expected`: the bounded index shape plus the
categorical terms).  Using the counts rather than the shares makes a school weigh by its
number of participants: a share from 3 pupils says little and counts little.

Overdispersion: schools differ beyond binomial noise (teachers, marking), so the model is
read as quasi-binomial.  The dispersion ``phi`` = Pearson chi² / residual df is reported
(``"dispersion"``); the standard errors are cluster-robust by municipality (sandwich errors
do not assume the binomial variance, so they hold under overdispersion), with the
model-based errors scaled by sqrt(phi) kept as :attr:`BinomialFit.quasi`.

Rows for the estimates table (model ``"binomial"``, level ``"school"``, ``n`` = schools):
``coef:<column>`` (log-odds), ``"odds_ratio_per_sd"`` (odds ratio per 1 SD of the index at
``spec.slope_at``; interval = the exponentiated log-odds interval; SE by the delta method,
OR x SE(log OR)), ``"ame_per_sd"`` (average over schools of the derivative of the
predicted share with respect to the index, share per 1 SD, delta-method SE -- the
convention of statsmodels ``get_margeff``) and ``"dispersion"`` (no SE).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit

from analysis.errors import SET_IN, InputError, Problem
from analysis.models import estimates
from analysis.models.expected import (
    ExpectedSpec,
    IndexBasis,
    check_columns,
    check_rows,
    combination,
    design,
    fit_kwargs,
    index_rows,
    model_frame,
)

MODEL = "binomial"


@dataclass
class BinomialFit:
    """A fitted binomial model of the failing share (see :func:`fit_binomial`).

    Attributes
    ----------
    spec : ExpectedSpec
    basis : IndexBasis
    levels : dict
        term -> (reference, *levels) as fitted.
    columns : tuple of str
        Design columns with coefficients (``const`` first).
    dropped_terms, notes : tuple of str
        As in :class:`~analysis.models.expected.ExpectedFit`.
    result : statsmodels GLMResults
        Binomial logit fit with the robust covariance of ``spec.cov_type``.
    quasi : statsmodels GLMResults
        The same fit with model-based errors at the dispersion ``scale`` (quasi-binomial:
        binomial errors x sqrt(phi)).
    fitted : DataFrame, index of the schools used
        ``observed`` and ``fitted`` share (0..1), ``residual`` (observed - fitted) and
        ``pearson`` residual.
    excluded : Index
        Index labels of the schools left out for ``total`` = 0.
    typical : Series
        ``total``-weighted means of the dummy columns (the typical school of :meth:`curve`).
    n_schools : int
        Schools used.
    n_total : int
        Participants summed over the schools used.
    """

    spec: ExpectedSpec
    basis: IndexBasis
    levels: dict[str, tuple[str, ...]]
    columns: tuple[str, ...]
    dropped_terms: tuple[str, ...]
    notes: tuple[str, ...]
    result: Any
    quasi: Any
    fitted: pd.DataFrame
    excluded: pd.Index
    typical: pd.Series
    x: str
    n_schools: int
    n_total: int
    x_range: tuple[float, float]
    x_values: np.ndarray = field(repr=False)
    design: pd.DataFrame = field(repr=False)
    model_name: str = field(default=MODEL)

    @property
    def dispersion(self) -> float:
        """phi: Pearson chi² / residual df (or as ``scale`` chose); 1 = binomial (no SE)."""
        return float(self.quasi.scale)

    @property
    def quasi_bse(self) -> pd.Series:
        """Model-based standard errors x sqrt(phi) (log-odds), by design column."""
        return pd.Series(np.asarray(self.quasi.bse, dtype="float64"), index=list(self.columns))

    def _index_rows(self, grid: np.ndarray, derivative: bool) -> np.ndarray:
        return index_rows(self.basis, self.columns, self.typical, grid, derivative)

    def slope_at(self, x0: float) -> tuple[float, float]:
        """Slope of the log-odds on the index at ``x0``: (estimate, se), per 1 SD."""
        c = combination(self.result, self._index_rows(np.array([float(x0)]), True))
        return float(c["estimate"].iloc[0]), float(c["std_error"].iloc[0])

    def ame(self) -> tuple[float, float]:
        """Average marginal effect of the index on the share, per 1 SD (delta method).

        The mean over the schools used of dp/dx = p (1 - p) * d(log-odds)/dx.

        Returns
        -------
        (estimate, se) : floats
            Share (0..1) per 1 SD of the index.
        """
        beta = np.asarray(self.result.params, dtype="float64")
        X = self.design.to_numpy()
        G = self._index_rows(self.x_values, True)
        p = expit(X @ beta)
        slope = G @ beta
        q = p * (1 - p)
        est = float(np.mean(q * slope))
        jac = np.mean((q * (1 - 2 * p) * slope)[:, None] * X + q[:, None] * G, axis=0)
        V = np.asarray(self.result.cov_params(), dtype="float64")
        return est, float(np.sqrt(jac @ V @ jac))

    def curve(self, grid: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
        """Predicted share over the index for a typical school, with a 95% interval.

        The interval is built on the log-odds scale and transformed, so it stays in 0..1.

        Returns
        -------
        DataFrame, shape (len(grid), 4)
            ``x``, ``fit``, ``ci_low``, ``ci_high`` (shares); default grid 101 points from
            the smallest to the largest index.
        """
        g = (np.linspace(*self.x_range, 101) if grid is None
             else np.asarray(grid, dtype="float64"))
        c = combination(self.result, self._index_rows(g, False))
        return pd.DataFrame({"x": g, "fit": expit(c["estimate"].to_numpy()),
                             "ci_low": expit(c["ci_low"].to_numpy()),
                             "ci_high": expit(c["ci_high"].to_numpy())})

    def predict(self, new_data: pd.DataFrame) -> pd.Series:
        """Predicted share of the schools of ``new_data`` (Series ``fitted``, 0..1)."""
        X = design(new_data, self.spec, self.basis, x=self.x, levels=self.levels)
        X.insert(0, "const", 1.0)
        params = np.asarray(self.result.params, dtype="float64")
        return pd.Series(expit(X[list(self.columns)].to_numpy() @ params),
                         index=new_data.index, name="fitted")

    def to_estimates(self, outcome: str, year: int | None, subset: str = "all") -> pd.DataFrame:
        """Rows of the estimates table (module docstring)."""
        labels = {"model": self.model_name, "outcome": outcome, "year": year,
                  "subset": subset, "level": "school", "n": self.n_schools}
        coefs = estimates.from_statsmodels(self.result, names=list(self.columns), **labels)
        c = combination(self.result,
                        self._index_rows(np.array([self.spec.slope_at]), True)).iloc[0]
        odds = float(np.exp(c["estimate"]))
        ame, ame_se = self.ame()
        rows = [{**labels, "term": "odds_ratio_per_sd", "estimate": odds,
                 "std_error": odds * float(c["std_error"]),
                 "ci_low": float(np.exp(c["ci_low"])), "ci_high": float(np.exp(c["ci_high"]))},
                {**labels, "term": "ame_per_sd", "estimate": ame, "std_error": ame_se,
                 "ci_low": ame - estimates.Z95 * ame_se, "ci_high": ame + estimates.Z95 * ame_se},
                {**labels, "term": "dispersion", "estimate": self.dispersion,
                 "reason": "no_standard_error"}]
        return pd.concat([coefs, estimates.make(rows)], ignore_index=True)


def estimate_dispersion(result: Any, scale: str | float = "X2") -> float:
    """The dispersion phi of a binomial GLM fit with counts.

    Parameters
    ----------
    result : statsmodels GLMResults
        A Binomial fit (2-column endog: fails, non-fails).
    scale : "X2", "dev" or float
        Pearson chi² / residual df, deviance / residual df, or a fixed value.

    Returns
    -------
    float
        1 under the binomial model; > 1 when schools vary more than binomially.

    Notes
    -----
    Computed here rather than by ``GLM.fit(scale="X2")``: in statsmodels 0.14-0.15 that
    estimate leaves out the number of trials of 2-column binomial data (it divides the
    squared residuals of the *shares* by p(1 - p), without the factor n), while
    ``pearson_chi2`` and ``deviance`` include it.
    """
    if isinstance(scale, str):
        kind = scale.lower()
        if kind == "x2":
            return float(result.pearson_chi2 / result.df_resid)
        if kind == "dev":
            return float(result.deviance / result.df_resid)
        raise ValueError(f"scale must be 'X2', 'dev' or a number, got '{scale}'")
    value = float(scale)
    if not value > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return value


def fit_binomial(data: pd.DataFrame, spec: ExpectedSpec | None = None, *, fails: str = "n_fail",
                 total: str = "n_total", x: str = "social_index",
                 cluster: str = "municipality", scale: str | float = "X2") -> BinomialFit:
    """Fit the binomial (logit) model of ``fails`` out of ``total`` per school.

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        ``fails`` and ``total`` (counts, 0 <= fails <= total), ``x`` (social index, SD
        units), ``cluster`` (municipality, for ``cov_type="cluster"``) and the columns of
        ``spec.terms``.  Schools with ``total`` = 0 are left out (listed in ``excluded``;
        the caller books them in the ledger).
    spec : ExpectedSpec, optional
        The design (shape and terms) and ``cov_type``; default :class:`ExpectedSpec()`.
    scale : "X2", "dev" or float
        Dispersion of the quasi-binomial fit (:attr:`BinomialFit.quasi`): Pearson chi² /
        df (``"X2"``), deviance / df, or a fixed value.

    Returns
    -------
    BinomialFit

    Raises
    ------
    InputError
        Missing columns (terms: ``ses_link.terms``) or values, counts that are negative or
        with ``fails > total``, too few schools for the coefficients, or fewer than 2
        municipalities for cluster-robust errors.
    """
    spec = ExpectedSpec() if spec is None else spec
    needed = {fails: "the number failing («2» or below the minimum)",
              total: "the number of participants", x: "the social index"}
    if spec.cov_type == "cluster":
        needed[cluster] = f"the municipality (cluster-robust errors; or cov_type HC3 in {SET_IN})"
    check_columns(data, spec, needed)
    check_rows(data, list(needed), 1)
    f_all = data[fails].to_numpy(dtype="float64")
    t_all = data[total].to_numpy(dtype="float64")
    bad = (f_all < 0) | (t_all < 0) | (f_all > t_all)
    if bad.any():
        raise InputError(Problem(
            file="the binomial model's schools", column=f"{fails}, {total}",
            value=f"{int(bad.sum())} schools with negative counts or {fails} > {total}",
            expected=f"0 <= {fails} <= {total}"))
    used = t_all > 0
    d = data.loc[used]
    f, t = f_all[used], t_all[used]
    frame = model_frame(d, spec, x=x, weights=t)
    check_rows(d, [], frame.X.shape[1])
    kwargs = fit_kwargs(spec, d, cluster)
    endog = np.column_stack([f, t - f])
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        model = sm.GLM(endog, frame.X, family=sm.families.Binomial())
        result = model.fit(**kwargs)
        quasi = model.fit(scale=estimate_dispersion(result, scale))
    p = np.asarray(result.fittedvalues, dtype="float64")
    observed = f / t
    fitted = pd.DataFrame({"observed": observed, "fitted": p, "residual": observed - p,
                           "pearson": (f - t * p) / np.sqrt(t * p * (1 - p))}, index=d.index)
    xv = d[x].to_numpy(dtype="float64")
    return BinomialFit(
        spec=spec, basis=frame.basis, levels=frame.levels, columns=tuple(frame.X.columns),
        dropped_terms=frame.dropped_terms, notes=frame.notes, result=result, quasi=quasi,
        fitted=fitted, excluded=data.index[~used], typical=frame.typical, x=x,
        n_schools=int(used.sum()), n_total=round(float(t.sum())),
        x_range=(float(xv.min()), float(xv.max())), x_values=xv, design=frame.X)
