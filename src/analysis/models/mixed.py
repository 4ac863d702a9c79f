"""Linear mixed models with one grouping factor, fitted exactly as lme4 does (profiled REML/ML).

The model, for observation ``i`` in group ``g``::

    y_i = x_i' beta + z_i' b_g + e_i,    b_g ~ N(0, sigma^2 Lambda Lambda'),
                                         e_i ~ N(0, sigma^2 / w_i)

with ``q`` random effects per group (``q = 1``: random intercept; ``q = 2``: intercept and
slope; any small ``q``), ``p`` fixed effects and prior weights ``w_i > 0`` (lme4's
``weights=``; e.g. the number of students behind a school's result).

The criterion is lme4's profiled deviance of Bates, Maechler, Bolker & Walker (2015),
"Fitting Linear Mixed-Effects Models Using lme4", J. Stat. Softw. 67(1), section 3.  With rows
multiplied by ``sqrt(w_i)`` and, per group, ``M_g = Lambda' Z_g'Z_g Lambda + I_q = L_g L_g'``::

    R_X R_X' = X'X - sum_g (Z_g'X_g)' Lambda M_g^-1 Lambda' (Z_g'X_g)
    r^2(theta) = penalised weighted residual sum of squares at beta-hat(theta), u-hat(theta)
    REML:  d_R(theta) = log|L|^2 + log|R_X|^2 + (n-p) [1 + log(2 pi r^2 / (n-p))] - sum log w
    ML:    d(theta)   = log|L|^2 + n [1 + log(2 pi r^2 / n)] - sum log w

(``log|L|^2 = sum_g log|M_g|``).  Everything comes from per-group sums ``Z_g'Z_g`` (G, q, q)
and ``Z_g'[X_g y_g]`` (G, q, p+1) computed once, so one evaluation costs
O(G (q^2 p + q^3) + p^3), with no per-group Python loop: the augmented matrix
``[X y]'[X y] - sum_g C_g'C_g`` (``C_g = L_g^-1 Lambda' Z_g'[X_g y_g]``) is factored once, and
its Cholesky factor holds ``R_X``, ``beta-hat`` and ``r^2`` (the last pivot squared).

``theta`` is lme4's: the lower triangle of ``Lambda`` (relative Cholesky factor of the
random-effect covariance, in units of sigma) in column-major order, diagonal >= 0.

The engine (sums, ``theta``, the criterion and its optimisation) is
:mod:`analysis.models.reml`; this module is the API: data in, :class:`LMMFit` out.

Results match lme4 (``REMLcrit()``/``deviance()``, ``fixef``, ``vcov``, ``VarCorr``,
``sigma``, ``ranef(condVar = TRUE)``).  An independent cross-check evaluates statsmodels'
``MixedLM.loglike`` at the optimum (see :func:`fit_lmm`, ``check``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from analysis.errors import ModelError
from analysis.models import estimates
from analysis.models.reml import (
    Profile,
    Solution,
    group_sums,
    optimise,
    solve_lower,
    solve_lower_t,
    tri_index,
)

__all__ = [
    "LMMFit",
    "ModelError",
    "criterion_at",
    "fit_formula",
    "fit_lmm",
]

#: Two-sided 95% normal quantile.
Z95 = estimates.Z95
#: A relative-factor diagonal below this is "on the boundary" (lme4's ``isSingular`` tol).
BOUNDARY_TOL = 1e-4
#: Relative tolerance of the statsmodels cross-check (on the log-likelihood).
CHECK_RTOL = 1e-6
# --- result ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LMMFit:
    """A fitted linear mixed model with one grouping factor.

    Attributes
    ----------
    fixed : Series, shape (p,)
        beta-hat, in units of y; index = fixed-effect names.
    fixed_se : Series, shape (p,)
        Standard errors, ``sqrt(diag(vcov))``.
    vcov : DataFrame, shape (p, p)
        ``sigma^2 (R_X R_X')^-1``, as lme4's ``vcov()``.
    sigma2 : float
        Residual variance for an observation of weight 1 (y units squared).
    cov_re : DataFrame, shape (q, q)
        Covariance of the random effects ``sigma^2 Lambda Lambda'``; index/columns = names.
    theta : array, shape (q (q + 1) / 2,)
        lme4's theta (column-major lower triangle of Lambda).
    criterion : float
        lme4's ``REMLcrit()`` (REML) or ``deviance()`` (ML) at the optimum.
    loglike : float
        ``-criterion / 2``: the restricted (REML) or ordinary log-likelihood.
    reml : bool
    n_obs, n_groups : int
    converged : bool
    boundary : bool
        Some diagonal element of Lambda is below :data:`BOUNDARY_TOL` (a variance is 0, or the
        covariance is singular); ``message`` says which.
    message : str
    ranef : DataFrame, shape (G, q)
        Conditional modes ``b_g = Lambda u_g``; index = group labels (sorted).
    ranef_sd : DataFrame, shape (G, q)
        Conditional SDs: square roots of the diagonal of ``sigma^2 Lambda M_g^-1 Lambda'``
        (lme4's ``condVar``).
    group_n : Series, shape (G,)
        Observations per group.
    statsmodels_check : float or None
        ``|loglike - (statsmodels MixedLM.loglike + sum(log w) / 2)|`` at the checked theta
        (see :func:`fit_lmm`); None when not checked.
    group : str
        Name of the grouping variable.
    intercept : str or None
        Name of the random intercept (a constant-one column of Z), if any.
    evaluations : int
        Criterion evaluations used.
    """

    fixed: pd.Series
    fixed_se: pd.Series
    vcov: pd.DataFrame
    sigma2: float
    cov_re: pd.DataFrame
    theta: np.ndarray
    criterion: float
    loglike: float
    reml: bool
    n_obs: int
    n_groups: int
    converged: bool
    boundary: bool
    message: str
    ranef: pd.DataFrame
    ranef_sd: pd.DataFrame
    group_n: pd.Series
    statsmodels_check: float | None
    group: str = "group"
    intercept: str | None = None
    evaluations: int = 0

    def icc(self) -> float | None:
        """Intraclass correlation ``tau2 / (tau2 + sigma2)`` for a random-intercept model.

        Returns
        -------
        float or None
            None unless ``q == 1`` and the random effect is an intercept.
        """
        if self.cov_re.shape[0] != 1 or self.intercept is None:
            return None
        tau2 = float(self.cov_re.iloc[0, 0])
        return tau2 / (tau2 + self.sigma2)

    def to_estimates(self, *, model: str, outcome: str, year: int | None = None,
                     subset: str = "all", level: str = "school",
                     group_level: str = "municipality", ranef: bool = True) -> pd.DataFrame:
        """Rows of the project's ESTIMATES table (:data:`ESTIMATES_COLUMNS`).

        Terms: ``coef:<name>`` per fixed effect (SE, 95% normal CI; level ``level``, n =
        observations); ``var:<group_level>`` (random intercept), ``var:<group_level>:<re>``,
        ``cov:<group_level>:<re1>:<re2>`` (``intercept`` for the random intercept; level
        ``group_level``, n = groups); ``var:residual`` (level ``level``, n = observations);
        ``icc`` (q = 1 with an intercept; level ``group_level``, n = groups).  Variance rows
        have no SE (``reason`` "no_standard_error", or "boundary" on a boundary fit).  With
        ``ranef``: one row per group (level ``group_level``, term = group label, estimate =
        conditional mode of the intercept, or of the first random effect without one;
        std_error = conditional SD; CI = +-1.96 SD; n = observations in the group).

        Returns
        -------
        DataFrame
            Columns :data:`ESTIMATES_COLUMNS` with dtypes :data:`ESTIMATES_DTYPES`.
        """
        rows: list[dict] = []

        def add(lvl: str, term: str, est: float | None, se: float | None, n: int,
                reason: str = "", ci: bool = True) -> None:
            if est is not None and not math.isfinite(est):
                est, reason = None, reason or "not_finite"
            if se is not None and not math.isfinite(se):
                se, reason = None, reason or "no_standard_error"
            lo = hi = None
            if ci and est is not None and se is not None:
                lo, hi = est - Z95 * se, est + Z95 * se
            rows.append({"level": lvl, "term": term, "estimate": est, "std_error": se,
                         "ci_low": lo, "ci_high": hi, "n": n, "reason": reason})

        for name in self.fixed.index:
            add(level, f"coef:{name}", float(self.fixed[name]), float(self.fixed_se[name]),
                self.n_obs)
        names = list(self.cov_re.index)
        label = {nm: ("intercept" if nm == self.intercept else nm) for nm in names}
        var_reason = "boundary" if self.boundary else "no_standard_error"
        for i, a in enumerate(names):
            term = f"var:{group_level}" if a == self.intercept else \
                f"var:{group_level}:{label[a]}"
            add(group_level, term, float(self.cov_re.iloc[i, i]), None, self.n_groups,
                var_reason)
        for i, a in enumerate(names):
            for j in range(i + 1, len(names)):
                b = names[j]
                first, second = (b, a) if b == self.intercept else (a, b)
                add(group_level, f"cov:{group_level}:{label[first]}:{label[second]}",
                    float(self.cov_re.iloc[i, j]), None, self.n_groups, var_reason)
        add(level, "var:residual", self.sigma2, None, self.n_obs, "no_standard_error")
        icc = self.icc()
        if icc is not None:
            add(group_level, "icc", icc, None, self.n_groups, var_reason)
        out = pd.DataFrame(rows)
        if ranef:
            col = self.intercept if self.intercept is not None else names[0]
            modes = self.ranef[col].to_numpy(dtype="float64")
            sds = self.ranef_sd[col].to_numpy(dtype="float64")
            out = pd.concat([out, pd.DataFrame({
                "level": group_level, "term": self.ranef.index.astype(str),
                "estimate": modes, "std_error": sds, "ci_low": modes - Z95 * sds,
                "ci_high": modes + Z95 * sds,
                "n": self.group_n.reindex(self.ranef.index).to_numpy(dtype="int64"),
                "reason": "boundary" if self.boundary else ""})], ignore_index=True)
        out.insert(0, "model", model)
        out.insert(1, "outcome", outcome)
        out.insert(2, "year", year)
        out.insert(3, "subset", subset)
        return estimates.make(out.to_dict("records"))


# --- statsmodels cross-check -----------------------------------------------------------------

def _statsmodels_loglike(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray,
                         beta: np.ndarray, cov_re_rel: np.ndarray, reml: bool) -> float:
    """statsmodels ``MixedLM.loglike`` (scale profiled out, ``profile_fe=False``).

    Parameters
    ----------
    y, X, Z : arrays, shapes (n,), (n, p), (n, q)
        Rows already multiplied by ``sqrt(w)``.
    codes : int array, shape (n,)
    beta : array, shape (p,)
        GLS estimate at this covariance (then statsmodels' quadratic form is lme4's r^2).
    cov_re_rel : array, shape (q, q)
        Random-effect covariance in units of the residual variance (``Lambda Lambda'``),
        non-singular.
    reml : bool
    """
    from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMParams

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MixedLM(y, X, groups=codes, exog_re=Z)
        model.reml = reml
        model.cov_pen = None        # set by MixedLM.fit; no penalty
        model.fe_pen = None
        params = MixedLMParams.from_components(fe_params=beta, cov_re=cov_re_rel)
        return float(model.loglike(params, profile_fe=False))


def _cross_check(f: Profile, sol: Solution, y: np.ndarray, X: np.ndarray, Z: np.ndarray,
                 codes: np.ndarray, reml: bool) -> float:
    """|our log-likelihood - statsmodels' (+ sum(log w) / 2)| at the optimum, or near it.

    statsmodels' profiled REML log-likelihood at ``beta-hat(theta)`` is
    ``-(log|V| + log|X'V^-1 X| + (n - p) [1 + log(2 pi qf / (n - p))]) / 2`` with
    ``V = I + Z Lambda Lambda' Z'`` per group and ``qf = r^2``: exactly ``-d_R / 2`` since
    ``|V| = |L|^2`` and ``X'V^-1 X = R_X R_X'``; likewise ML.  On rows scaled by ``sqrt(w)``
    it lacks lme4's ``-sum(log w)``, so ours = statsmodels + sum(log w) / 2.  statsmodels
    inverts the covariance, so at a boundary optimum (singular ``Lambda Lambda'``) the
    comparison is made at theta with its small diagonal elements raised to 0.5.
    """
    q = f.s.q
    r, c = tri_index(q)
    th = sol.theta.copy()
    diag = r == c
    if np.any(th[diag] < BOUNDARY_TOL):
        th[diag & (th < BOUNDARY_TOL)] = 0.5
        at = f.solve(th)
        if at is None:
            raise ModelError("cross-check: the criterion is not defined near the optimum")
    else:
        at = sol
    ours = -at.criterion / 2.0
    lam = at.lam
    theirs = _statsmodels_loglike(y, X, Z, codes, at.beta, lam @ lam.T, reml)
    gap = abs(ours - (theirs + f.s.sum_log_w / 2.0))
    if not np.isfinite(gap) or gap > CHECK_RTOL * max(1.0, abs(ours)):
        raise ModelError(
            f"cross-check failed: our {'REML' if reml else 'ML'} log-likelihood {ours:.10g} "
            f"and statsmodels' {theirs + f.s.sum_log_w / 2.0:.10g} (after adding "
            f"sum(log w)/2) differ by {gap:.3g} at theta = {np.round(th, 6).tolist()}")
    return float(gap)


def cross_check_verdict(fit: LMMFit) -> str:
    """The statsmodels cross-check as something that can be published: ``"agrees (gap <
    1e-06 relative)"`` or ``"not run"``.

    The gap itself is rounding noise whose value changes with the CPU and the BLAS build;
    a gap above :data:`CHECK_RTOL` never reaches here (:func:`_cross_check` raises).
    """
    if fit.statsmodels_check is None:
        return "not run"
    return f"agrees (gap < {CHECK_RTOL:.0e} relative)"


# --- fitting ---------------------------------------------------------------------------------

def _as_float(name: str, v, n: int | None = None) -> np.ndarray:
    if isinstance(v, pd.Series | pd.DataFrame):
        try:
            a = v.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be numeric: {e}") from e
    else:
        a = np.asarray(v, dtype=float)
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows, expected {n}")
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.isfinite(a).reshape(a.shape[0], -1).all(axis=1))
        raise ValueError(f"{name} has missing or infinite values (rows {bad[:10].tolist()}"
                         f"{' ...' if bad.size > 10 else ''}); drop or impute them first")
    return a


def _boundary_message(lam: np.ndarray, names: Sequence[str]) -> str:
    parts = []
    q = lam.shape[0]
    for j in range(q):
        if lam[j, j] < BOUNDARY_TOL:
            if np.all(np.abs(lam[j, :j]) < BOUNDARY_TOL):
                zero = lam[j, j] == 0 and np.all(lam[j, :j] == 0)
                parts.append(f"the variance of random effect '{names[j]}' is "
                             + ("0" if zero else f"near 0 (SD < {BOUNDARY_TOL:g} sigma)"))
            else:
                others = ", ".join(f"'{names[i]}'" for i in range(j))
                parts.append(f"random effect '{names[j]}' is perfectly correlated with "
                             f"{others} (singular covariance)")
    return "boundary (singular) fit: " + "; ".join(parts)


def _prepare(y, X: pd.DataFrame, groups, Z: pd.DataFrame | None, weights):
    """Validated float arrays, group codes (of sorted labels) and the Z used."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a DataFrame (its columns name the fixed effects)")
    n = len(X)
    yv = _as_float("y", y, n).reshape(-1)
    Xv = _as_float("X", X, n)
    if Z is None:
        Z = pd.DataFrame({"Intercept": np.ones(n)}, index=X.index)
    if not isinstance(Z, pd.DataFrame):
        raise TypeError("Z must be a DataFrame (its columns name the random effects)")
    Zv = _as_float("Z", Z, n)
    if Zv.shape[1] < 1:
        raise ValueError("Z has no columns: a mixed model needs at least one random effect")
    w = None
    if weights is not None:
        w = _as_float("weights", weights, n).reshape(-1)
        if np.any(w <= 0):
            raise ValueError("weights must be > 0 (drop observations with weight 0)")
    g = groups.reset_index(drop=True) if isinstance(groups, pd.Series) else \
        pd.Series(np.asarray(groups))
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} rows, expected {n}")
    if g.isna().any():
        raise ValueError(f"groups has missing labels (rows "
                         f"{np.flatnonzero(g.isna().to_numpy())[:10].tolist()})")
    codes, labels = pd.factorize(g, sort=True)
    G = len(labels)
    p = Xv.shape[1]
    if G < 2:
        raise ValueError(f"a mixed model needs at least 2 groups, got {G}")
    if p >= n:
        raise ValueError(f"p >= n: {p} fixed effects for {n} observations")
    if p == 0:
        raise ValueError("X has no columns (add a constant for an intercept)")
    _check_rank(Xv, [str(c) for c in X.columns], w)
    return yv, Xv, Zv, w, codes.astype(np.intp), labels, Z


def criterion_at(y, X: pd.DataFrame, groups, Z: pd.DataFrame | None = None, *, theta,
                 weights=None, reml: bool = True) -> float:
    """lme4's REML criterion (or ML deviance) at a given theta, without optimising.

    Parameters as :func:`fit_lmm`; ``theta`` : array, shape (q (q + 1) / 2,), lme4's order.

    Returns
    -------
    float
        ``REMLcrit()`` / ``deviance()`` of lme4 at ``theta`` (``inf`` where undefined).
    """
    yv, Xv, Zv, w, codes, _, _ = _prepare(y, X, groups, Z, weights)
    theta = np.asarray(theta, dtype=float).reshape(-1)
    q = Zv.shape[1]
    if theta.size != q * (q + 1) // 2:
        raise ValueError(f"theta has {theta.size} elements, expected {q * (q + 1) // 2}")
    return Profile(group_sums(yv, Xv, Zv, codes, w), reml)(theta)


def fit_lmm(y, X: pd.DataFrame, groups, Z: pd.DataFrame | None = None, *, weights=None,
            reml: bool = True, check: bool = True, tol: float = 1e-10) -> LMMFit:
    """Fit ``y = X beta + Z b_g + e`` with one grouping factor by profiled REML or ML.

    Parameters
    ----------
    y : array-like, shape (n,)
        Outcome (finite).
    X : DataFrame, shape (n, p)
        Fixed-effect design, including the constant if wanted; full column rank.
    groups : array-like, shape (n,)
        Group labels (no missing values; at least 2 groups).  Results are ordered by the
        sorted labels.
    Z : DataFrame, shape (n, q), optional
        Random-effect design; default a random intercept (one column ``Intercept``).
    weights : array-like, shape (n,), optional
        Prior weights ``w_i > 0``: residual variance ``sigma^2 / w_i`` (lme4's ``weights``).
    reml : bool
        REML (default) or maximum likelihood.
    check : bool
        Cross-check the criterion against statsmodels ``MixedLM.loglike`` at the optimum
        (O(n); at a boundary optimum, at a nearby non-singular theta) and raise
        :class:`ModelError` if they differ by more than :data:`CHECK_RTOL` relative.
    tol : float
        Tolerance on theta: Brent's ``xatol`` and the gradient root's ``xtol`` (x 1e-3) for
        q = 1; the last Newton step, relative, for q >= 2.

    Returns
    -------
    LMMFit

    Raises
    ------
    ValueError
        Missing/infinite values, non-positive weights, fewer than 2 groups, ``p >= n``, or a
        rank-deficient ``X``.
    ModelError
        The optimiser found no finite optimum, or the statsmodels cross-check disagrees.

    Notes
    -----
    q = 1: bounded Brent search of theta in [0, upper] (upper found by expanding from lme4's
    start theta = 1 by factors of 4), polished as the root of the analytic gradient; then
    theta = 0 is evaluated as well and the better kept (ties within rounding go to 0).
    q >= 2: L-BFGS-B with the analytic gradient from lme4's start Lambda = I (a diagonal
    element stuck at 0 where the criterion falls off the bound is moved off it and the
    search restarted), polished by projected Newton steps (Hessian from differences of the
    analytic gradient); every fit with one variance dropped (row and column of Lambda at 0)
    and the fit with all dropped are optimised too, and the best kept.

    The criterion is computed from sums, so its rounding noise is about 1e-13 relative; the
    gradient has no such cancellation, which is why the optimum is located through it (lme4's
    derivative-free BOBYQA stops at ``xtol_rel = 1e-4`` by default, so lme4's own estimates
    can differ from the exact optimum by more than ours do).

    Nothing is silent: a boundary fit sets ``boundary`` and says in ``message`` which
    variance is 0 (or which random effect is perfectly correlated with the others); a fit
    that did not converge sets ``converged = False``, says why in ``message`` and issues a
    ``RuntimeWarning``.
    """
    yv, Xv, Zv, w, codes, labels, Z = _prepare(y, X, groups, Z, weights)
    n, p = Xv.shape
    q = Zv.shape[1]
    G = len(labels)
    prof = Profile(group_sums(yv, Xv, Zv, codes, w), reml)
    opt = optimise(prof, q, tol)
    sol = prof.solve(opt.theta)
    if sol is None or not np.isfinite(opt.criterion):
        raise ModelError("the optimiser ended where the criterion is not defined")

    fixed_names = [str(c) for c in X.columns]
    re_names = [str(c) for c in Z.columns]
    RXinv = linalg.solve_triangular(sol.RX, np.eye(p), lower=True)
    vcov = sol.sigma2 * (RXinv.T @ RXinv)
    cov_re = sol.sigma2 * (sol.lam @ sol.lam.T)
    # conditional modes and variances
    Cx, cy = sol.C[:, :, :p], sol.C[:, :, p]
    v = cy - Cx @ sol.beta                                              # (G, q)
    u = solve_lower_t(sol.L, v[:, :, None])[:, :, 0]
    b = u @ sol.lam.T
    T = solve_lower(sol.L, np.broadcast_to(sol.lam.T, (G, q, q)))       # L_g^-1 Lambda'
    sd = np.sqrt(sol.sigma2 * (T ** 2).sum(axis=1))

    lam_diag = np.diag(sol.lam)
    boundary = bool(np.any(lam_diag < BOUNDARY_TOL))
    msgs = []
    if not opt.converged:
        msgs.append("not converged: " + (opt.note or "optimiser stopped early"))
    if boundary:
        msgs.append(_boundary_message(sol.lam, re_names))
    message = "; ".join(msgs) if msgs else "converged"
    if not opt.converged:
        warnings.warn(f"mixed model: {message}", RuntimeWarning, stacklevel=2)

    gap = None
    if check:
        sw = np.ones(n) if w is None else np.sqrt(w)
        gap = _cross_check(prof, sol, yv * sw, Xv * sw[:, None], Zv * sw[:, None], codes, reml)

    intercept = next((nm for nm, col in zip(re_names, Zv.T, strict=True)
                      if np.all(col == 1.0)), None)
    idx = pd.Index(labels, name=getattr(groups, "name", None))
    return LMMFit(
        fixed=pd.Series(sol.beta, index=fixed_names, name="estimate"),
        fixed_se=pd.Series(np.sqrt(np.diag(vcov)), index=fixed_names, name="std_error"),
        vcov=pd.DataFrame(vcov, index=fixed_names, columns=fixed_names),
        sigma2=float(sol.sigma2),
        cov_re=pd.DataFrame(cov_re, index=re_names, columns=re_names),
        theta=sol.theta.copy(),
        criterion=float(sol.criterion),
        loglike=-float(sol.criterion) / 2.0,
        reml=reml,
        n_obs=n,
        n_groups=G,
        converged=opt.converged,
        boundary=boundary,
        message=message,
        ranef=pd.DataFrame(b, index=idx, columns=re_names),
        ranef_sd=pd.DataFrame(sd, index=idx, columns=re_names),
        group_n=pd.Series(np.bincount(codes, minlength=G), index=idx, name="n"),
        statsmodels_check=gap,
        group=str(getattr(groups, "name", None) or "group"),
        intercept=intercept,
        evaluations=prof.evaluations,
    )


def _check_rank(X: np.ndarray, names: list[str], w: np.ndarray | None) -> None:
    """Raise ValueError if X (weighted) is rank deficient: condition number above 1e6."""
    Xw = X if w is None else X * np.sqrt(w)[:, None]
    xtx = Xw.T @ Xw
    d = np.sqrt(np.diag(xtx))
    zero = d == 0
    if zero.any():
        raise ValueError("X has all-zero columns: "
                         + ", ".join(n for n, z in zip(names, zero, strict=True) if z))
    corr = xtx / np.outer(d, d)
    ev, vec = np.linalg.eigh(corr)
    if ev[0] <= 1e-12 * ev[-1]:
        involved = [names[i] for i in np.flatnonzero(np.abs(vec[:, 0]) > 0.1)]
        raise ValueError(f"X is rank deficient (collinear columns: {', '.join(involved)}); "
                         "drop one of them")


def fit_formula(data: pd.DataFrame, fixed: str, group: str, random: str = "1", *,
                weights: str | None = None, reml: bool = True, check: bool = True,
                tol: float = 1e-10) -> LMMFit:
    """Fit a mixed model from patsy formulas (lme4's ``y ~ fixed + (random | group)``).

    Parameters
    ----------
    data : DataFrame, shape (n, ...)
    fixed : str
        patsy formula of the outcome and fixed effects, e.g. ``"y ~ x1 + C(type) + x1:x2"``.
    group : str
        Column of group labels.
    random : str
        patsy right-hand side of the random effects: ``"1"`` (random intercept) or
        ``"1 + ses_w"`` (intercept and slope); ``"0 + x"`` for a slope alone.
    weights : str, optional
        Column of prior weights (> 0).
    reml, check, tol
        As :func:`fit_lmm`.

    Raises
    ------
    ValueError
        Refused as lme4 refuses, or where patsy would fit nonsense silently: a column is
        missing or has missing values (nothing is dropped silently); a column used as a
        number (not inside ``C(...)``) holds text, which would make it a factor of every
        distinct value (:func:`_check_numbers`); the grouping factor has as many levels as
        observations, or the random effects are as many as the observations
        (:func:`_check_group_sizes`); or as :func:`fit_lmm`.
    """
    import patsy

    for col in [group] + ([weights] if weights else []):
        if col not in data.columns:
            raise ValueError(f"column '{col}' is not in the data")
    used = _formula_columns(data, fixed, random)
    missing = [c for c in used + [group] + ([weights] if weights else [])
               if data[c].isna().any()]
    if missing:
        raise ValueError(f"missing values in column(s) {', '.join(map(repr, missing))}: "
                         "drop or impute those rows first (nothing is dropped silently)")
    _check_numbers(data, used, f"{fixed} + {random}")
    frame = data.copy(deep=False)
    for c, col in _categorical_columns(data, used, f"{fixed} + {random}").items():
        frame[c] = col
    try:
        # NA checks were done above on the columns; patsy's per-value NA scan is slow
        na = patsy.NAAction(NA_types=[])
        yd, Xd = patsy.dmatrices(fixed, frame, return_type="dataframe", NA_action=na)
        Zd = patsy.dmatrix(random, frame, return_type="dataframe", NA_action=na)
    except patsy.PatsyError as e:
        raise ValueError(f"formula '{fixed}' / random '{random}': {e}") from e
    if yd.shape[1] != 1:
        raise ValueError(f"formula '{fixed}' must have one numeric outcome")
    _check_group_sizes(data[group], group, Zd.shape[1], random)
    w = data[weights] if weights else None
    return fit_lmm(yd.iloc[:, 0], Xd, data[group], Zd, weights=w, reml=reml, check=check,
                   tol=tol)


def _formula_columns(data: pd.DataFrame, *formulas: str) -> list[str]:
    """Columns of ``data`` named in the formulas (as whole words)."""
    import re

    words = set()
    for f in formulas:
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", f))
    return [c for c in data.columns if isinstance(c, str) and c in words]


def _uses(name: str, formula: str) -> tuple[int, int]:
    """How many times column ``name`` appears in ``formula``: as ``C(name...)``, and in all."""
    import re

    col = re.escape(name)
    inside = len(re.findall(rf"\bC\(\s*{col}\s*[,)]", formula))
    anywhere = len(re.findall(rf"(?<![A-Za-z0-9_.]){col}(?![A-Za-z0-9_.])", formula))
    return inside, anywhere


def _check_numbers(data: pd.DataFrame, used: list[str], formula: str,
                   shown: int = 5) -> None:
    """Refuse a column used as a number in ``formula`` that holds text.

    patsy makes a text column a factor, a level per distinct value: a numeric column with
    "n/a" in a few rows (or numbers stored as text, e.g. with decimal commas) becomes a
    factor of hundreds of levels, and the model is fitted without a word.  A text column
    is refused when it is used outside ``C(...)`` and some of its values read as numbers
    (a decimal comma counts).  Text columns of labels only (no number among them),
    columns inside ``C(...)``, categorical and boolean columns stay factors.

    Raises
    ------
    ValueError
        Naming the column and its most frequent non-numeric values with their row counts.
    """
    for c in used:
        col = data[c]
        if (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
                or isinstance(col.dtype, pd.CategoricalDtype)):
            continue
        inside, anywhere = _uses(c, formula)
        if inside == anywhere:  # only as C(column): categories, as asked
            continue
        counts = col.value_counts(sort=False)
        text = counts.index.map(lambda v: v.strip().replace(",", ".") if isinstance(v, str)
                                else v)
        numeric = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").notna()
        if not numeric.any():
            continue  # labels, not numbers: a factor, as patsy and R make it
        fix = f"wrap it in C({c}) to use it as categories"
        if numeric.all():
            examples = ", ".join(repr(v) for v in counts.index[:3])
            raise ValueError(
                f"column '{c}' is used as a number in the formula but holds numbers stored "
                f"as text ({examples}, ...); convert it to numbers (pandas.to_numeric, with "
                f"'.' as the decimal point), or {fix}")
        words = counts[~numeric.to_numpy()].sort_values(ascending=False, kind="stable")
        listed = ", ".join(f"{v!r} ({k} row{'s' if k > 1 else ''})"
                           for v, k in words.iloc[:shown].items())
        more = f" and {len(words) - shown} more" if len(words) > shown else ""
        raise ValueError(
            f"column '{c}' is used as a number in the formula but holds text: {listed}{more}; "
            f"drop or impute those rows and convert the column to numbers, or {fix}")


def _check_group_sizes(groups: pd.Series, name: str, q: int, random: str) -> None:
    """Refuse what lme4 refuses: grouping factor levels or random effects >= observations.

    lme4 stops with "number of levels of each grouping factor must be < number of
    observations" and "number of observations <= number of random effects": with a random
    intercept per observation it cannot be told from the residual, and the fit would only
    be a boundary one.

    Parameters
    ----------
    groups : Series, shape (n,)
    name : str
        The grouping column (named in the message).
    q : int
        Random effects per group.
    random : str
        The random part of the formula (named in the message).
    """
    n, n_groups = len(groups), groups.nunique()
    if n_groups >= n:
        raise ValueError(
            f"grouping factor '{name}' has {n_groups} levels for {n} observations: the "
            "number of levels must be less than the number of observations (one row per "
            "group leaves no variation within groups; lme4 refuses this too)")
    if n_groups * q >= n:
        raise ValueError(
            f"{n} observations for {n_groups * q} random effects (({random} | {name}): {q} "
            f"for each of the {n_groups} levels of '{name}'): the observations must outnumber "
            "the random effects, or their variances cannot be told from the residual one "
            "(lme4 refuses this too); simplify the random part")


def _categorical_columns(data: pd.DataFrame, used: list[str],
                         formula: str) -> dict[str, pd.Series]:
    """Used columns that patsy treats as categorical, as pandas Categoricals (fast in patsy).

    Converted: non-numeric columns (strings, objects, booleans), and numeric columns that
    appear only as ``C(column...)``.  Levels are sorted, as patsy sorts them, so the design
    matrix and its column names are unchanged, and patsy's slow per-value handling of
    strings is avoided.
    """
    out = {}
    for c in used:
        col = data[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            continue
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            out[c] = col.astype("category")
        else:
            inside, anywhere = _uses(c, formula)
            if inside and inside == anywhere:
                out[c] = col.astype("category")
    return out
