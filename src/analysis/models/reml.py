"""The REML/ML engine of :mod:`analysis.models.mixed`: lme4's profiled criterion and its optimum.

Per-group sufficient statistics computed once (:func:`group_sums`), lme4's ``theta`` and the
relative covariance factor ``Lambda`` (:func:`theta_to_lambda`), the profiled deviance and
its analytic gradient (:class:`Profile`), and its minimisation over ``theta``
(:func:`optimise`: Brent and a gradient root for one random effect; L-BFGS-B, every
boundary fit and a Newton polish for more).  The formulas are in :mod:`analysis.models.mixed`'s
docstring (Bates et al. 2015, section 3); :func:`analysis.models.mixed.fit_lmm` is the API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from analysis.errors import ModelError
from analysis.models.optim import newton_polish

#: Upper limit of theta searched for q = 1 (tau / sigma); reaching it means no finite optimum.
THETA_MAX = 1e6


# --- per-group sufficient statistics ---------------------------------------------------------

@dataclass(frozen=True)
class Sums:
    """Weighted cross-products of one model, by group.

    Attributes
    ----------
    ZtZ : array, shape (G, q, q)
        ``Z_g' W_g Z_g``.
    ZtA : array, shape (G, q, p + 1)
        ``Z_g' W_g [X_g y_g]``.
    AtA : array, shape (p + 1, p + 1)
        ``[X y]' W [X y]``.
    n, p, q : int
        Observations, fixed effects, random effects per group.
    sum_log_w : float
        ``sum(log w_i)`` (0 without weights).
    """

    ZtZ: np.ndarray
    ZtA: np.ndarray
    AtA: np.ndarray
    n: int
    p: int
    q: int
    sum_log_w: float


def group_sums(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray,
               w: np.ndarray | None) -> Sums:
    """Per-group cross-products (rows sorted by group code with a stable sort).

    Parameters
    ----------
    y : array, shape (n,)
    X : array, shape (n, p)
    Z : array, shape (n, q)
    codes : int array, shape (n,)
        Group codes 0..G-1, every code present.
    w : array, shape (n,), or None
        Prior weights (> 0).
    """
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    A = np.column_stack([X[order], y[order]])
    Zs = Z[order]
    if w is not None:
        sw = np.sqrt(w[order])
        A *= sw[:, None]
        Zs = Zs * sw[:, None]
    n, q = Zs.shape
    if q == 1:
        ZtA = np.add.reduceat(A * Zs, starts, axis=0)[:, None, :]
        ZtZ = np.add.reduceat(Zs[:, 0] ** 2, starts)[:, None, None]
    else:
        ZtA = np.add.reduceat(Zs[:, :, None] * A[:, None, :], starts, axis=0)
        ZtZ = np.add.reduceat(Zs[:, :, None] * Zs[:, None, :], starts, axis=0)
    return Sums(ZtZ=ZtZ, ZtA=ZtA, AtA=A.T @ A, n=n, p=X.shape[1], q=q,
                 sum_log_w=0.0 if w is None else float(np.log(w).sum()))


# --- theta <-> Lambda -----------------------------------------------------------------------

def tri_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each theta element (lme4: column-major lower triangle)."""
    rows = [i for j in range(q) for i in range(j, q)]
    cols = [j for j in range(q) for i in range(j, q)]
    return np.array(rows, dtype=int), np.array(cols, dtype=int)


def theta_to_lambda(theta: np.ndarray, q: int) -> np.ndarray:
    """Lower-triangular relative covariance factor from lme4's theta.

    Parameters
    ----------
    theta : array, shape (q (q + 1) / 2,)
    q : int

    Returns
    -------
    array, shape (q, q)
        ``Lambda``, with random-effect covariance ``sigma^2 Lambda Lambda'``.
    """
    r, c = tri_index(q)
    lam = np.zeros((q, q))
    lam[r, c] = theta
    return lam


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_g X_g = B_g`` for a stack of small lower-triangular ``L``.

    Forward substitution vectorised over groups (q is small): faster than batched
    ``np.linalg.solve`` on (G, q, q) stacks.

    Parameters
    ----------
    L : array, shape (G, q, q)
    B : array, shape (G, q, m)

    Returns
    -------
    array, shape (G, q, m)
    """
    q = L.shape[1]
    X = np.empty(np.broadcast_shapes(L.shape[:1] + B.shape[1:], B.shape))
    for i in range(q):
        acc = B[:, i, :].copy()
        for j in range(i):
            acc -= L[:, i, j, None] * X[:, j, :]
        X[:, i, :] = acc / L[:, i, i, None]
    return X


def solve_lower_t(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_g' X_g = B_g`` (back substitution); shapes as :func:`solve_lower`."""
    q = L.shape[1]
    X = np.empty(np.broadcast_shapes(L.shape[:1] + B.shape[1:], B.shape))
    for i in reversed(range(q)):
        acc = B[:, i, :].copy()
        for j in range(i + 1, q):
            acc -= L[:, j, i, None] * X[:, j, :]
        X[:, i, :] = acc / L[:, i, i, None]
    return X


# --- the profiled criterion ------------------------------------------------------------------

@dataclass(frozen=True)
class Solution:
    """Penalised least squares solution at one theta."""

    theta: np.ndarray
    criterion: float
    beta: np.ndarray        # (p,)
    RX: np.ndarray          # (p, p) lower: R_X R_X' = X'V^-1 X (in units of sigma^-2)
    r2: float               # penalised weighted residual sum of squares
    sigma2: float
    lam: np.ndarray         # (q, q)
    L: np.ndarray           # (G, q, q) lower Cholesky factors of M_g
    C: np.ndarray           # (G, q, p + 1) L_g^-1 Lambda' Z_g'[X_g y_g]


class Profile:
    """lme4's profiled REML criterion (or ML deviance) as a function of theta."""

    def __init__(self, sums: Sums, reml: bool):
        self.s = sums
        self.reml = reml
        self.evaluations = 0

    def solve(self, theta: np.ndarray) -> Solution | None:
        """Solve the penalised least squares problem; None when it is not defined."""
        s = self.s
        theta = np.asarray(theta, dtype=float)
        p, q = s.p, s.q
        self.evaluations += 1
        if q == 1:
            t = float(theta[0])
            Lg = np.sqrt(t * t * s.ZtZ[:, 0, 0] + 1.0)          # (G,)
            C = (t / Lg)[:, None] * s.ZtA[:, 0, :]             # (G, p + 1)
            ldL2 = 2.0 * np.log(Lg).sum()
            L = Lg[:, None, None]
            lam = np.array([[t]])
            S = C
            C = C[:, None, :]
        else:
            lam = theta_to_lambda(theta, q)
            M = lam.T @ s.ZtZ @ lam
            M[:, np.arange(q), np.arange(q)] += 1.0
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                return None
            C = solve_lower(L, lam.T @ s.ZtA)                      # (G, q, p + 1)
            ldL2 = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
            S = C.reshape(-1, p + 1)
        aug = s.AtA - S.T @ S
        try:
            R = np.linalg.cholesky(aug)
        except np.linalg.LinAlgError:
            return None
        RX = R[:p, :p]
        r2 = float(R[p, p]) ** 2
        if not (r2 > 0 and np.isfinite(r2)):
            return None
        ldRX2 = 2.0 * np.log(np.diag(RX)).sum()
        if self.reml:
            df = s.n - p
            crit = ldL2 + ldRX2 + df * (1.0 + math.log(2.0 * math.pi * r2 / df)) - s.sum_log_w
        else:
            df = s.n
            crit = ldL2 + df * (1.0 + math.log(2.0 * math.pi * r2 / df)) - s.sum_log_w
        if not np.isfinite(crit):
            return None
        beta = linalg.solve_triangular(RX.T, R[p, :p], lower=False)
        return Solution(theta=theta.copy(), criterion=float(crit), beta=beta, RX=RX, r2=r2,
                         sigma2=r2 / df, lam=lam, L=L, C=C)

    def __call__(self, theta: np.ndarray) -> float:
        sol = self.solve(np.atleast_1d(theta))
        return math.inf if sol is None else sol.criterion

    def gradient(self, sol: Solution) -> np.ndarray:
        """Analytic gradient of the criterion with respect to theta, at a solution.

        With ``V_g = I + Z_g Lambda Lambda' Z_g'`` (rows scaled by sqrt(w)) and
        ``dV_g/dtheta_k = Z_g D_k Z_g'``, ``D_k = E_k Lambda' + Lambda E_k'``::

            d crit / d theta_k = <D_k, S>,   S = sum_g [Z_g'V_g^-1 Z_g
                                   - (REML) Q_g (X'V^-1 X)^-1 Q_g' - (df / r^2) s_g s_g']

        with ``Q_g = Z_g'V_g^-1 X_g`` and ``s_g = Z_g'V_g^-1 (y_g - X_g beta-hat)`` (the last
        term by the envelope theorem), and ``<D_k, S> = 2 (S Lambda)[i_k, j_k]``.  Unlike
        differences of criterion values, it has no cancellation, so the optimum is located
        to near machine precision.

        Returns
        -------
        array, shape (q (q + 1) / 2,)
        """
        s = self.s
        p, q = s.p, s.q
        lam, L, C = sol.lam, sol.L, sol.C
        if q == 1:
            d = L[:, 0, 0] ** 2                                   # 1 + theta^2 z'z
            W = s.ZtA[:, 0, :] / d[:, None]                       # Z'V^-1 [X y]
            P = s.ZtZ[:, 0, :] / d[:, None]                       # Z'V^-1 Z, (G, 1)
            W = W[:, None, :]
            P = P[:, :, None]
        else:
            W = s.ZtA - s.ZtZ @ (lam @ solve_lower_t(L, C))
            T = solve_lower(L, lam.T @ s.ZtZ)
            P = s.ZtZ - np.swapaxes(T, 1, 2) @ T
        Q = W[:, :, :p]
        e = W[:, :, p] - Q @ sol.beta                             # (G, q)
        df = s.n - p if self.reml else s.n
        S = P.sum(axis=0) - (df / sol.r2) * (e.T @ e)
        if self.reml:
            RXinv = linalg.solve_triangular(sol.RX, np.eye(p), lower=True)
            Y = np.swapaxes(Q @ RXinv.T, 0, 1).reshape(q, -1)      # (q, G p)
            S -= Y @ Y.T
        r, c = tri_index(q)
        return 2.0 * (S @ lam)[r, c]

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        sol = self.solve(np.atleast_1d(theta))
        if sol is None:
            return math.inf, np.full(np.size(theta), np.nan)
        return sol.criterion, self.gradient(sol)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.value_and_grad(theta)[1]


# --- optimisation ----------------------------------------------------------------------------

@dataclass
class Opt:
    theta: np.ndarray
    criterion: float
    converged: bool
    note: str


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Is (theta, crit) ``a`` better than ``b``: a lower criterion, ties within rounding
    going to the smaller theta (the simpler model)."""
    noise = 1e-12 * max(1.0, abs(b[1]))
    return a[1] < b[1] - noise or (abs(a[1] - b[1]) <= noise and a[0] < b[0])


def _optimise_q1(f: Profile, tol: float) -> Opt:
    """q = 1: bounded Brent search on [0, upper], a root of the analytic gradient, theta = 0.

    ``upper`` is found by expanding from lme4's start theta = 1 by factors of 4 until the
    criterion rises.  Brent locates the minimum to the criterion's rounding noise; it is then
    polished to ``tol`` as the root of the analytic gradient (bracketed, ``brentq``).
    """
    def fun(t: float) -> float:
        return f(np.array([t]))

    def grad(t: float) -> float:
        return float(f.grad(np.array([t]))[0])

    f1 = fun(1.0)
    hi_t, f_hi = 1.0, f1
    best = (1.0, f1)
    while True:
        t = hi_t * 4.0
        ft = fun(t)
        if ft < best[1]:
            best = (t, ft)
        if not ft < f_hi or t >= THETA_MAX:
            hi_t = t
            break
        hi_t, f_hi = t, ft
    res = optimize.minimize_scalar(fun, bounds=(0.0, hi_t), method="bounded",
                                   options={"xatol": tol, "maxiter": 1000})
    cand = (float(res.x), float(res.fun))
    if not _better(cand, best):
        cand = best
    converged, note = bool(res.success), ("" if res.success else str(res.message))
    # polish: the root of the gradient near Brent's point
    tb = cand[0]
    if tb > 0 and np.isfinite(cand[1]):
        width = 1e-6 * tb
        for _ in range(12):
            a, b = max(tb - width, 0.0), min(tb + width, hi_t)
            ga, gb = grad(a), grad(b)
            if ga < 0 < gb:
                root = optimize.brentq(grad, a, b, xtol=tol * 1e-3, rtol=1e-15, maxiter=200)
                fr = fun(root)
                if fr <= cand[1] + 1e-10 * max(1.0, abs(cand[1])):
                    cand, converged, note = (root, fr), True, ""
                break
            width *= 8.0
    zero = (0.0, fun(0.0))
    finite = [c for c in (cand, zero) if np.isfinite(c[1])]
    if not finite:
        raise ModelError("the REML/ML criterion is not finite anywhere tried "
                         "(theta = 0, 1 and the bounded search)")
    t_best, f_best = zero if (np.isfinite(zero[1]) and not _better(cand, zero)) else cand
    if t_best == 0.0:
        converged, note = True, ""
    if t_best >= 0.999 * THETA_MAX:
        converged = False
        note = ("no finite optimum: the random-effect variance grows without bound "
                "relative to the residual variance")
    return Opt(np.array([t_best]), f_best, converged, note)


def _optimise_free(f: Profile, q: int, free: np.ndarray, tol: float) -> Opt:
    """Minimise over the theta elements in ``free`` (the others held at 0)."""
    r, c = tri_index(q)
    k = r.size
    lower_all = np.where(r == c, 0.0, -np.inf)

    def embed(z: np.ndarray) -> np.ndarray:
        th = np.zeros(k)
        th[free] = z
        return th

    def fun(z: np.ndarray) -> float:
        return f(embed(z))

    def grad(z: np.ndarray) -> np.ndarray:
        return f.grad(embed(z))[free]

    def fg(z: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = f.value_and_grad(embed(z))
        return v, g[free]

    x0 = np.where(r == c, 1.0, 0.0)[free]          # lme4's start: Lambda = I
    lower = lower_all[free]
    if x0.size == 0:
        return Opt(np.zeros(k), f(np.zeros(k)), True, "")
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    diag = np.flatnonzero((r == c)[free])
    x = x0
    for _ in range(1 + diag.size):
        res = optimize.minimize(fg, x, method="L-BFGS-B", jac=True, bounds=bounds,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
        if not np.isfinite(res.fun):
            raise ModelError(f"the optimiser failed: criterion not finite ({res.message})")
        x = np.asarray(res.x, dtype=float)
        # The criterion is even in each diagonal element of Lambda, so its gradient there is
        # 0 at the bound: a diagonal element stuck at 0 may be a saddle.  Move it off the
        # bound if the criterion falls that way, and restart.
        kicked = False
        for i in diag:
            if x[i] <= 0:
                xi = x.copy()
                xi[i] = 1e-3 * max(1.0, float(np.max(np.abs(x))))
                if grad(xi)[i] < 0:
                    x, kicked = xi, True
        if not kicked:
            break
    x, fx, ok = newton_polish(fun, grad, x, lower, tol)
    note = "" if ok else (f"Newton polish did not settle after L-BFGS-B ({res.message}); "
                          "the optimum may be inaccurate")
    return Opt(embed(x), fx, ok, note)


def optimise(f: Profile, q: int, tol: float) -> Opt:
    """Global fit plus every boundary fit (each variance dropped, and all); the best wins."""
    if q == 1:
        return _optimise_q1(f, tol)
    r, c = tri_index(q)
    k = r.size
    cands = [_optimise_free(f, q, np.ones(k, dtype=bool), tol)]
    for j in range(q):
        free = (r != j) & (c != j)                    # drop row and column j of Lambda
        cands.append(_optimise_free(f, q, free, tol))
    cands.append(Opt(np.zeros(k), f(np.zeros(k)), True, ""))
    finite = [o for o in cands if np.isfinite(o.criterion)]
    if not finite:
        raise ModelError("the REML/ML criterion is not finite at any candidate optimum")
    best = min(finite, key=lambda o: o.criterion)
    # a fit within rounding of the best with fewer non-zero parameters is preferred (simpler)
    near = [o for o in finite
            if o.criterion <= best.criterion + 1e-12 * max(1.0, abs(best.criterion))]
    return min(near, key=lambda o: (np.count_nonzero(o.theta), o.criterion))
