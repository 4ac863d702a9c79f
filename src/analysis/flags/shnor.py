"""The ШНОР list: the federal rule as written, and how sure each listing is.

The federal rule (:func:`shnor`): a school is listed for the reporting ``year`` if it has

1. low results in at least two assessment procedures in ``year``, or
2. low results in at least one procedure in each of ``year − 1`` and ``year``,

a «low result» being a share of «2» (ВПР) or of results below the minimum (ОГЭ, ЕГЭ) of at
least the threshold (30%; exactly 30% counts).  Procedures with no participants never count.

The rule reads an observed share as the truth, so a «30% of "2"» from 3 pupils weighs as
much as one from 300.  :func:`shnor_probabilistic` keeps the rule and adds, for every
procedure, the posterior probability that the school's *true* share is at or above the
threshold, and for every school the probability that it truly meets the rule:

- the prior of a procedure's true share is a beta distribution whose mean depends on the
  school's context ("similar schools") and whose spread is the between-school
  over-dispersion; both come from a beta-binomial regression fitted by maximum likelihood
  (:func:`fit_beta_binomial`), one per procedure (ВПР, ОГЭ, ЕГЭ);
- the posterior given ``k`` low results of ``n`` is ``Beta(alpha + k, beta + n − k)``
  (:func:`posterior_low`);
- procedures are treated as independent, so the count of truly-low procedures of a year is
  Poisson-binomial; :func:`rule_probability` combines the two years.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import betainc, betaln, digamma, expit, gammaln, logit

from analysis.errors import ModelError
from analysis.ingest import schema
from analysis.models.optim import newton_polish

#: Below either, a procedure's prior is the pooled share with :data:`POOLED_RHO`.
MIN_FIT_ROWS = 20
MIN_FIT_SCHOOLS = 5
POOLED_RHO = 0.1
#: Bounds of the intra-class correlation and of the coefficients during the fit.
RHO_BOUNDS = (1e-6, 0.99)
COEF_BOUND = 40.0
#: Mean of the prior kept inside (0, 1) so that alpha and beta stay positive.
MU_CLIP = (1e-10, 1.0 - 1e-10)
#: Probabilities clipped in :func:`rule_probability` (as the ШНОР tables show them).
P_CLIP = (1e-12, 1.0 - 1e-12)
#: A stop of L-BFGS-B that is not "success" still counts as converged below this
#: largest absolute gradient of the mean log-likelihood (free parameters only).
GRAD_TOL = 1e-4

PROC_COLUMNS = ("year", "school_id", "procedure", "subject", "grade", "participants", "n_low",
                "share_low", "low", "prior_mean", "p_low", "prior")
PROC_ORDER = ["school_id", "year", "procedure", "subject", "grade"]


# --------------------------------------------------------------------------- the rule


def low_procedures(results: pd.DataFrame, years: Sequence[int], *, threshold: float,
                   procedures: Sequence[str], min_participants: int = 0) -> pd.DataFrame:
    """Result rows that count as a «low result» for the ШНОР rule.

    A procedure (one procedure x subject x grade of a school-year) is low when the share of
    «2» (marked) or below the minimum threshold (scored) is at least ``threshold``.
    Procedures with fewer than ``min_participants`` participants (and none at all) do not
    count.
    """
    r = results.loc[results["year"].isin(years) & results["procedure"].isin(procedures)
                    & (results["participants"] > 0)
                    & (results["participants"] >= min_participants)]
    return r.loc[r["share_low"] >= threshold - 1e-12].reset_index(drop=True)


def shnor(results: pd.DataFrame, schools: pd.DataFrame, year: int, *, threshold: float,
          procedures: Sequence[str], min_participants: int = 0) -> pd.DataFrame:
    """The ШНОР rule (federal method) for the reporting ``year``.

    A school is on the list if it meets at least one of:

    1. low results in at least two assessment procedures in ``year``;
    2. low results in at least one procedure in each of ``year − 1`` and ``year``.

    Returns
    -------
    DataFrame, one row per school present in ``year``
        ``school_id, n_low_year, n_low_prev, criterion_1, criterion_2, shnor``.
    """
    low = low_procedures(results, [year - 1, year], threshold=threshold,
                         procedures=procedures, min_participants=min_participants)
    counts = low.groupby(["school_id", "year"]).size().unstack("year")
    out = schools.loc[schools["year"] == year, ["school_id"]].drop_duplicates()
    out["n_low_year"] = out["school_id"].map(counts.get(year, pd.Series(dtype=float)))
    out["n_low_prev"] = out["school_id"].map(counts.get(year - 1, pd.Series(dtype=float)))
    out[["n_low_year", "n_low_prev"]] = out[["n_low_year", "n_low_prev"]].fillna(0).astype(
        "int64")
    out["criterion_1"] = out["n_low_year"] >= 2
    out["criterion_2"] = (out["n_low_year"] >= 1) & (out["n_low_prev"] >= 1)
    out["shnor"] = out["criterion_1"] | out["criterion_2"]
    return out.sort_values("school_id", kind="stable").reset_index(drop=True)


def shnor_details(results: pd.DataFrame, shnor_table: pd.DataFrame, year: int, *,
                  threshold: float, procedures: Sequence[str],
                  min_participants: int = 0) -> pd.DataFrame:
    """The low procedures behind each ШНОР school (for the report's list)."""
    ids = shnor_table.loc[shnor_table["shnor"], "school_id"]
    low = low_procedures(results, [year - 1, year], threshold=threshold,
                         procedures=procedures, min_participants=min_participants)
    cols = list(schema.RESULT_KEY) + ["participants", "n_low", "share_low"]
    return low.loc[low["school_id"].isin(ids), cols].sort_values(
        ["school_id", "year", "procedure", "subject", "grade"], kind="stable"
    ).reset_index(drop=True)


# --------------------------------------------------------------- beta-binomial prior


@dataclass(frozen=True)
class BetaBinomialFit:
    """A beta-binomial regression fitted by maximum likelihood (:func:`fit_beta_binomial`).

    Attributes
    ----------
    coef : Series
        Log-odds coefficients of the mean, indexed by the columns of ``X``.
    rho : float
        Intra-class correlation ``1 / (alpha + beta + 1)``, ``0 < rho < 1``.
    loglik : float
        Log-likelihood at the optimum, binomial coefficients included (equals
        ``scipy.stats.betabinom.logpmf`` summed over the rows used).
    converged : bool
    n_obs : int
        Rows used (rows with ``n == 0`` are ignored).
    """

    coef: pd.Series
    rho: float
    loglik: float
    converged: bool
    n_obs: int

    def mean(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Prior mean ``expit(X @ coef)`` (clipped to :data:`MU_CLIP`)."""
        Xa = X[list(self.coef.index)] if isinstance(X, pd.DataFrame) else X
        eta = np.asarray(Xa, dtype="float64") @ self.coef.to_numpy(dtype="float64")
        return np.clip(expit(eta), *MU_CLIP)

    def prior(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beta prior ``(alpha, beta)`` of each row of ``X``.

        Returns
        -------
        alpha, beta : ndarray
            ``mu (1 − rho) / rho`` and ``(1 − mu) (1 − rho) / rho``.
        """
        mu = self.mean(X)
        s = (1.0 - self.rho) / self.rho
        return mu * s, (1.0 - mu) * s


def _as_design(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.astype("float64")
    Xa = np.asarray(X, dtype="float64")
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    return pd.DataFrame(Xa, columns=[f"x{j}" for j in range(Xa.shape[1])])


def _log_binom(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _loglik_terms(params: np.ndarray, k: np.ndarray, n: np.ndarray, X: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row log-likelihoods (without binomial coefficients), d/d eta and d/d logit(rho)."""
    eta = X @ params[:-1]
    mu = np.clip(expit(eta), *MU_CLIP)
    s = np.exp(-params[-1])  # (1 − rho) / rho
    a, b = mu * s, (1.0 - mu) * s
    ll = betaln(k + a, n - k + b) - betaln(a, b)
    c = digamma(s) - digamma(n + s)
    da = digamma(k + a) - digamma(a) + c
    db = digamma(n - k + b) - digamma(b) + c
    d_eta = s * mu * (1.0 - mu) * (da - db)
    d_t = -s * (mu * da + (1.0 - mu) * db)
    return ll, d_eta, d_t


def beta_binomial_loglik(params: np.ndarray, k: np.ndarray, n: np.ndarray,
                         X: pd.DataFrame | np.ndarray) -> tuple[float, np.ndarray]:
    """Beta-binomial log-likelihood and its analytic gradient.

    Parameters
    ----------
    params : ndarray, shape (p + 1,)
        Mean coefficients (log-odds, one per column of ``X``), then ``logit(rho)``.
    k, n : array-like of int
        Low results and participants per row (rows with ``n == 0`` contribute nothing).
    X : DataFrame or ndarray, shape (rows, p)

    Returns
    -------
    loglik : float
        Sum of ``betabinom.logpmf(k, n, alpha, beta)``.
    grad : ndarray, shape (p + 1,)
        Its gradient with respect to ``params``.
    """
    k_, n_ = np.asarray(k, dtype="float64"), np.asarray(n, dtype="float64")
    Xa = np.asarray(_as_design(X), dtype="float64")
    keep = n_ > 0
    k_, n_, Xa = k_[keep], n_[keep], Xa[keep]
    ll, d_eta, d_t = _loglik_terms(np.asarray(params, dtype="float64"), k_, n_, Xa)
    grad = np.append(Xa.T @ d_eta, d_t.sum())
    return float(ll.sum() + _log_binom(k_, n_).sum()), grad


def _glm_start(k: np.ndarray, n: np.ndarray, X: np.ndarray, iters: int = 25) -> np.ndarray:
    """Binomial GLM (logit) by damped IRLS: the starting mean coefficients."""
    p = X.shape[1]
    y = k / n
    beta = np.zeros(p)
    ridge = 1e-8 * np.eye(p)
    for _ in range(iters):
        eta = np.clip(X @ beta, -15.0, 15.0)
        mu = expit(eta)
        v = mu * (1.0 - mu)
        w = n * v
        z = eta + (y - mu) / v
        xw = X * w[:, None]
        new = np.linalg.solve(xw.T @ X + ridge * max(w.sum(), 1.0), xw.T @ z)
        if np.max(np.abs(new - beta)) < 1e-8:
            beta = new
            break
        beta = new
    return beta


def _rho_start(k: np.ndarray, n: np.ndarray, mu: np.ndarray, p: int) -> float:
    """Moment estimate of rho from the Pearson dispersion of the binomial start."""
    v = np.clip(n * mu * (1.0 - mu), 1e-12, None)
    phi = np.sum((k - n * mu) ** 2 / v) / max(len(k) - p, 1)
    rho = (phi - 1.0) / max(float(np.mean(n - 1.0)), 1.0)
    return float(np.clip(rho, 0.005, 0.5))


def fit_beta_binomial(k: pd.Series | np.ndarray, n: pd.Series | np.ndarray,
                      X: pd.DataFrame | np.ndarray, *, max_iter: int = 1000
                      ) -> BetaBinomialFit:
    """Beta-binomial regression of ``k`` low results out of ``n`` by maximum likelihood.

    ``mu_i = expit(X_i @ coef)``, ``alpha_i = mu_i (1 − rho) / rho``,
    ``beta_i = (1 − mu_i) (1 − rho) / rho``.  The parameters ``(coef, logit rho)`` are
    found by L-BFGS-B with the analytic gradient (:func:`beta_binomial_loglik`), starting
    from a binomial GLM and a moment estimate of rho; columns are scaled to unit root mean
    square while optimising (coefficients are reported on the original scale).

    Parameters
    ----------
    k, n : array-like of int
        Low results and participants; rows with ``n == 0`` are ignored.
    X : DataFrame or ndarray
        Design of the mean (full column rank; include the intercept(s)).
    max_iter : int
        Iteration limit of the optimiser.

    Returns
    -------
    BetaBinomialFit

    Raises
    ------
    analysis.errors.ModelError
        The optimiser did not converge, or no row has participants.
    """
    Xd = _as_design(X)
    k_all, n_all = np.asarray(k, dtype="float64"), np.asarray(n, dtype="float64")
    keep = n_all > 0
    k_, n_ = k_all[keep], n_all[keep]
    Xa = Xd.to_numpy(dtype="float64")[keep]
    if len(k_) == 0:
        raise ModelError("the beta-binomial prior has no results with participants to fit")
    scale = np.sqrt(np.mean(Xa ** 2, axis=0))
    scale[scale == 0] = 1.0
    Xs = Xa / scale
    n_obs = len(k_)
    const = float(_log_binom(k_, n_).sum())

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        ll, d_eta, d_t = _loglik_terms(theta, k_, n_, Xs)
        return -float(ll.sum()) / n_obs, -np.append(Xs.T @ d_eta, d_t.sum()) / n_obs

    b0 = _glm_start(k_, n_, Xs)
    rho0 = _rho_start(k_, n_, expit(np.clip(Xs @ b0, -15, 15)), Xs.shape[1])
    bound = COEF_BOUND * scale
    b0 = np.clip(b0, -bound, bound)
    theta0 = np.append(b0, logit(rho0))
    bounds = [(-c, c) for c in bound] + [tuple(logit(np.array(RHO_BOUNDS)))]
    res = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": max_iter, "ftol": 1e-13, "gtol": 1e-8})
    _, g = objective(res.x)
    lo, hi = np.array(bounds).T
    free = ~(((res.x <= lo + 1e-10) & (g > 0)) | ((res.x >= hi - 1e-10) & (g < 0)))
    converged = bool(res.success) or bool(np.max(np.abs(g[free]), initial=0.0) < GRAD_TOL)
    if not converged or not np.all(np.isfinite(res.x)):
        raise ModelError(
            "the beta-binomial prior of the share of low results did not converge "
            f"({res.message}); the probabilities of the ШНОР list cannot be computed")
    theta = np.asarray(res.x, dtype="float64")
    if np.all((theta > lo + 1e-10) & (theta < hi - 1e-10)):
        # an interior optimum: Newton steps take it from L-BFGS-B's stopping point (which
        # moves with the CPU in the 10th digit) to within rounding of the maximum
        theta, _, _ = newton_polish(lambda t: objective(t)[0], lambda t: objective(t)[1],
                                    theta, np.full(theta.size, -np.inf), 1e-10, maxiter=10)
    coef = pd.Series(theta[:-1] / scale, index=Xd.columns, name="coef")
    return BetaBinomialFit(coef=coef, rho=float(expit(theta[-1])),
                           loglik=-objective(theta)[0] * n_obs + const, converged=converged,
                           n_obs=n_obs)


def posterior_low(k: np.ndarray | pd.Series, n: np.ndarray | pd.Series,
                  alpha: np.ndarray | float, beta: np.ndarray | float,
                  threshold: float) -> np.ndarray:
    """Posterior probability that the true share is at least ``threshold``.

    Parameters
    ----------
    k, n : array-like
        Low results and participants.
    alpha, beta : array-like or float
        Beta prior of the true share.
    threshold : float

    Returns
    -------
    ndarray
        ``P(share >= threshold | k of n) = beta.sf(threshold, alpha + k, beta + n − k)``
        (evaluated as ``betainc(beta + n − k, alpha + k, 1 − threshold)``).
    """
    k_ = np.asarray(k, dtype="float64")
    n_ = np.asarray(n, dtype="float64")
    a = np.asarray(alpha, dtype="float64") + k_
    b = np.asarray(beta, dtype="float64") + n_ - k_
    # beta.sf(t, a, b) = I_{1-t}(b, a): the same number, computed ~15x faster than
    # stats.beta.sf / special.betaincc at national scale.
    return np.asarray(betainc(b, a, 1.0 - threshold), dtype="float64")


# ---------------------------------------------------------- probabilistic ШНОР list


def rule_probability(procs: pd.DataFrame, year: int) -> pd.Series:
    """Probability that each school truly meets the ШНОР rule.

    Procedures are independent with probabilities ``p_low``; ``C_y`` and ``C_prev`` count
    the truly low procedures of ``year`` and ``year − 1``:
    ``P(rule) = P(C_y >= 2) + P(C_y == 1) P(C_prev >= 1)``.  The Poisson-binomial
    probabilities come from the exact recursion over a school's procedures
    (:func:`_poisson_binomial_head`), whose terms are all sums of products of
    non-negative numbers: a probability of 1e-9 keeps its relative precision (``1 - P(0) -
    P(1)`` would cancel to an absolute 1e-16 and change with the CPU).

    Parameters
    ----------
    procs : DataFrame with ``school_id``, ``year``, ``p_low``
    year : int

    Returns
    -------
    Series indexed by ``school_id`` (schools with a row in either year), in [0, 1].
    """
    ids = pd.Index(pd.unique(procs["school_id"].to_numpy()), name="school_id").sort_values()
    heads = {}
    for y in (year, year - 1):
        part = procs.loc[procs["year"] == y]
        heads[y] = _poisson_binomial_head(
            ids.get_indexer(part["school_id"].to_numpy()),
            part["p_low"].to_numpy(dtype="float64").clip(*P_CLIP), len(ids))
    _, one_y, two_y = heads[year]
    _, one_prev, two_prev = heads[year - 1]
    out = two_y + one_y * (one_prev + two_prev)
    return pd.Series(np.clip(out, 0.0, 1.0), index=ids, name="p_rule")


def _poisson_binomial_head(group: np.ndarray, p: np.ndarray, n_groups: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(C = 0)``, ``P(C = 1)`` and ``P(C >= 2)`` of a sum of independent Bernoullis per
    group, by the recursion ``(q0, q1, q2) <- (q0 (1 - p), q1 (1 - p) + q0 p, q2 + q1 p)``
    over each group's trials, vectorised across groups (one pass per trial position).

    Parameters
    ----------
    group : ndarray of int, shape (n,)
        Group code of each trial, in ``0 .. n_groups - 1``.
    p : ndarray of float, shape (n,)
        Success probability of each trial.
    n_groups : int

    Returns
    -------
    q0, q1, q2 : ndarray of float, shape (n_groups,)
        A group without trials has ``(1, 0, 0)``.
    """
    q0, q1, q2 = np.ones(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    if len(group) == 0:
        return q0, q1, q2
    order = np.argsort(group, kind="stable")
    g, pp = group[order], p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    position = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    by = np.argsort(position, kind="stable")  # trial k of every group in one block
    bounds = np.searchsorted(position[by], np.arange(int(position.max()) + 2))
    for k in range(len(bounds) - 1):
        at = by[bounds[k]:bounds[k + 1]]
        gi, pk = g[at], pp[at]
        a0, a1 = q0[gi], q1[gi]
        q2[gi] = q2[gi] + a1 * pk
        q1[gi] = a1 * (1.0 - pk) + a0 * pk
        q0[gi] = a0 * (1.0 - pk)
    return q0, q1, q2


def _context_rows(rows: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Context of each result row: its own year's, else the school's latest."""
    cols = ["social_index", "settlement_type", "school_type"]
    ctx = context[["year", "school_id", *cols]].drop_duplicates(["year", "school_id"])
    key = rows[["year", "school_id"]].reset_index(drop=True)
    exact = key.merge(ctx, on=["year", "school_id"], how="left")
    latest = ctx.sort_values("year", kind="stable").drop_duplicates("school_id", keep="last")
    other = key[["school_id"]].merge(latest.drop(columns="year"), on="school_id", how="left")
    out = pd.DataFrame(index=key.index)
    has = exact[cols].notna().any(axis=1)
    for c in cols:
        out[c] = exact[c].where(has, other[c])
    return out


def _independent(X: pd.DataFrame, tol: float = 1e-9) -> list[str]:
    """Columns of ``X`` kept in order while each adds rank (greedy on the Gram matrix)."""
    A = X.to_numpy(dtype="float64")
    G = A.T @ A
    kept: list[int] = []
    for j in range(G.shape[0]):
        r = G[j, j]
        if kept:
            c = np.linalg.lstsq(G[np.ix_(kept, kept)], G[kept, j], rcond=None)[0]
            r = G[j, j] - G[j, kept] @ c
        if G[j, j] > 0 and r > tol * G[j, j]:
            kept.append(j)
    return [X.columns[j] for j in kept]


def shnor_design(rows: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Design of the prior mean for the result rows of one procedure.

    One-hot subject x grade x year cells (intercepts, all levels), ``social_index``
    (0 where missing) with ``social_index_missing`` when any is missing, and dummies of
    ``settlement_type`` and ``school_type`` (first level dropped; a missing type is its own
    level).  Constant context columns and columns adding no rank are dropped.

    Returns
    -------
    DataFrame, one row per row of ``rows`` (positional), float columns.
    """
    ctx = _context_rows(rows, context)
    cell = (rows["subject"].astype(str) + "|" + rows["grade"].astype(str) + "|"
            + rows["year"].astype(str)).to_numpy()
    cells = pd.get_dummies(pd.Series(cell), prefix="cell", prefix_sep=":", dtype="float64")
    si = pd.to_numeric(ctx["social_index"], errors="coerce").astype("float64")
    extra = pd.DataFrame({"social_index": si.fillna(0.0).to_numpy()})
    if si.isna().any():
        extra["social_index_missing"] = si.isna().to_numpy(dtype="float64")
    for c in ("settlement_type", "school_type"):
        lev = ctx[c].astype("string").fillna("(missing)").astype(str).reset_index(drop=True)
        extra = extra.join(pd.get_dummies(lev, prefix=c, prefix_sep=":", drop_first=True,
                                          dtype="float64"))
    extra = extra.loc[:, extra.nunique(dropna=False) > 1]
    X = pd.concat([cells.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)
    return X[_independent(X)]


def _empty_procs(results: pd.DataFrame) -> pd.DataFrame:
    out = results.iloc[:0][["year", "school_id", "procedure", "subject", "grade",
                            "participants"]].copy()
    out["n_low"] = pd.Series(dtype="int64")
    out["share_low"] = pd.Series(dtype="float64")
    out["low"] = pd.Series(dtype="bool")
    for c in ("prior_mean", "p_low"):
        out[c] = pd.Series(dtype="float64")
    out["prior"] = pd.Series(dtype="object")
    return out.reset_index(drop=True)


def shnor_probabilistic(results: pd.DataFrame, context: pd.DataFrame, year: int, *,
                        threshold: float, procedures: Sequence[str],
                        min_participants: int = 0, min_n: int = 10,
                        sure: float = 0.9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ШНОР list with the probability that each listing is true.

    Parameters
    ----------
    results : DataFrame
        Tidy results (:func:`analysis.ingest.prepare.tidy_results`).
    context : DataFrame
        One row per (``year``, ``school_id``) with ``social_index`` (float, may be NaN),
        ``settlement_type`` and ``school_type``.
    year : int
        Reporting year; ``year − 1`` is the previous year of criterion 2.
    threshold : float
        Share of low results that makes a procedure low (exactly at it counts).
    procedures : sequence of str
        Procedures that count (e.g. ``["VPR", "OGE", "EGE"]``).
    min_participants : int
        Procedures with fewer participants are left out (as in :func:`shnor`).
    min_n : int
        A listed school whose every low procedure has fewer participants is labelled
        ``"few_participants"``.
    sure : float
        A listed school with ``p_rule >= sure`` is ``"reliable"``, otherwise
        ``"borderline"``.

    Returns
    -------
    procs : DataFrame, one row per counted result row of ``year − 1`` and ``year``
        ``year, school_id, procedure, subject, grade, participants, n_low, share_low, low,
        prior_mean, p_low, prior`` (``prior`` is ``"fitted"`` or ``"pooled"``: a procedure
        with fewer than 20 rows or 5 schools gets its pooled share as prior mean and
        rho = 0.1); sorted by school, year, procedure, subject, grade.
    schools : DataFrame, one row per school of ``year`` (in the results or in ``context``)
        ``school_id, shnor, n_low_year, n_low_prev, p_rule, max_p_low, n_low_small,
        label``.  ``shnor`` is the exact rule (as :func:`shnor`); ``p_rule`` the probability
        it truly holds (0 without rows); ``max_p_low`` the largest ``p_low`` of ``year``
        (0 if none); ``n_low_small`` the low procedures of both years with fewer than
        ``min_n`` participants; ``label`` is ``"few_participants"``, ``"reliable"`` or
        ``"borderline"`` for listed schools and ``""`` otherwise.

    Raises
    ------
    analysis.errors.ModelError
        A procedure's beta-binomial prior did not converge.
    """
    sel = (results["year"].isin([year - 1, year]) & results["procedure"].isin(procedures)
           & (results["participants"] > 0) & (results["participants"] >= min_participants)
           & results["n_low"].notna())
    r = results.loc[sel].sort_values(PROC_ORDER, kind="stable").reset_index(drop=True)
    if r.empty:
        procs = _empty_procs(results)
    else:
        procs = r[["year", "school_id", "procedure", "subject", "grade",
                   "participants"]].copy()
        k = r["n_low"].to_numpy(dtype="int64")
        n = r["participants"].to_numpy(dtype="int64")
        procs["n_low"] = k
        procs["share_low"] = k / n
        procs["low"] = procs["share_low"] >= threshold - 1e-12
        alpha = np.empty(len(r))
        beta = np.empty(len(r))
        kind = np.empty(len(r), dtype=object)
        for _, idx in r.groupby("procedure", sort=True).indices.items():
            part = r.iloc[idx]
            if len(part) < MIN_FIT_ROWS or part["school_id"].nunique() < MIN_FIT_SCHOOLS:
                mu = float(np.clip(k[idx].sum() / n[idx].sum(), 1e-6, 1.0 - 1e-6))
                s = (1.0 - POOLED_RHO) / POOLED_RHO
                alpha[idx], beta[idx], kind[idx] = mu * s, (1.0 - mu) * s, "pooled"
            else:
                X = shnor_design(part, context)
                fit = fit_beta_binomial(k[idx], n[idx], X)
                alpha[idx], beta[idx] = fit.prior(X)
                kind[idx] = "fitted"
        procs["prior_mean"] = alpha / (alpha + beta)
        procs["p_low"] = posterior_low(k, n, alpha, beta, threshold)
        procs["prior"] = kind
    schools = _school_table(procs, context, year, min_n=min_n, sure=sure)
    return procs.reset_index(drop=True), schools


def _school_table(procs: pd.DataFrame, context: pd.DataFrame, year: int, *, min_n: int,
                  sure: float) -> pd.DataFrame:
    ids = pd.concat([procs.loc[procs["year"] == year, "school_id"],
                     context.loc[context["year"] == year, "school_id"]], ignore_index=True)
    out = pd.DataFrame({"school_id": ids.drop_duplicates().sort_values().to_numpy()})
    sid = out["school_id"]
    low = procs.loc[procs["low"]]
    counts = low.groupby(["school_id", "year"]).size().unstack("year")
    for col, y in (("n_low_year", year), ("n_low_prev", year - 1)):
        c = counts[y] if y in counts.columns else pd.Series(dtype="float64")
        out[col] = sid.map(c).fillna(0).astype("int64")
    out["shnor"] = (out["n_low_year"] >= 2) | ((out["n_low_year"] >= 1)
                                               & (out["n_low_prev"] >= 1))
    out["p_rule"] = sid.map(rule_probability(procs, year)).fillna(0.0).astype("float64")
    max_p = procs.loc[procs["year"] == year].groupby("school_id")["p_low"].max()
    out["max_p_low"] = sid.map(max_p).fillna(0.0).astype("float64")
    small = (low["participants"] < min_n).groupby(low["school_id"]).agg(["sum", "all"])
    out["n_low_small"] = sid.map(small["sum"]).fillna(0).astype("int64")
    all_small = sid.map(small["all"]).astype("boolean").fillna(False).astype(bool)
    label = np.where(all_small, "few_participants",
                     np.where(out["p_rule"] >= sure, "reliable", "borderline"))
    out["label"] = np.where(out["shnor"], label, "")
    return out[["school_id", "shnor", "n_low_year", "n_low_prev", "p_rule", "max_p_low",
                "n_low_small", "label"]]
