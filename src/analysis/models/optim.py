"""Shared numerical optimisation: a projected Newton polish after a quasi-Newton optimiser.

L-BFGS-B stops where its gradient or criterion tolerance is met, which leaves the optimum
uncertain in its last 4-8 digits and makes it depend on the path the optimiser took: a
different BLAS kernel or CPU moves it by 1e-12 .. 1e-9.  A few Newton steps from there
converge quadratically, to within rounding of the true optimum, whatever the path
(docs/reproducibility.md).  Used by the REML engine (:mod:`analysis.models.mixed`) and
the beta-binomial prior of ШНОР (:mod:`analysis.flags.shnor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def newton_polish(fun: Callable[[np.ndarray], float], grad: Callable[[np.ndarray], np.ndarray],
                   x: np.ndarray, lower: np.ndarray, tol: float,
                   maxiter: int = 50) -> tuple[np.ndarray, float, bool]:
    """Projected Newton steps: analytic gradient, Hessian by central differences of it.

    Parameters
    ----------
    fun, grad : callable
        The criterion and its analytic gradient, of ``x`` (shape (k,)).
    x : ndarray, shape (k,)
        A starting point near the optimum (an L-BFGS-B result).
    lower : ndarray, shape (k,)
        Lower bounds (``-inf`` for none).
    tol : float
        Stop when the Newton step is below ``tol`` relative to ``1 + max|x|`` (that last
        step is taken).
    maxiter : int

    Coordinates at their lower bound whose gradient points outwards stay fixed.  A step is
    taken when it lowers the criterion, or leaves it equal within rounding while lowering the
    gradient (near the optimum the criterion is flat to rounding).

    Returns
    -------
    x, f(x), converged
        ``converged``: the last Newton step was below ``tol`` relative, or below 1e-7
        relative when the criterion's rounding noise stopped the iteration.
    """
    x = np.maximum(x, lower)
    fx, gx = fun(x), grad(x)
    k = x.size
    last = math.inf
    for _ in range(maxiter):
        free = ~((x <= lower) & (gx >= 0))
        if not free.any():
            return x, fx, True
        h = 1e-5 * np.maximum(np.abs(x), 1e-2)
        H = np.zeros((k, k))
        for i in np.flatnonzero(free):
            e = np.zeros(k)
            e[i] = h[i]
            H[:, i] = (grad(x + e) - grad(x - e)) / (2 * h[i])
        Hf = H[np.ix_(free, free)]
        Hf = (Hf + Hf.T) / 2
        w, V = np.linalg.eigh(Hf)
        floor = 1e-10 * max(float(np.abs(w).max()), 1e-300)
        w = np.maximum(np.abs(w), floor)
        step = np.zeros(k)
        step[free] = -(V @ ((V.T @ gx[free]) / w))
        size = float(np.max(np.abs(step)) / (1.0 + np.max(np.abs(x))))
        last = size
        if size < tol:
            # take this last, tiny step too: the error left is then its square, far below
            # rounding, so the optimum no longer depends on the path (CPU, BLAS) that led here
            xn = np.maximum(x + step, lower)
            fn = fun(xn)
            if fn <= fx + 1e-12 * max(1.0, abs(fx)):
                x, fx = xn, fn
            return x, fx, True
        gnorm = float(np.linalg.norm(gx[free]))
        t = 1.0
        moved = False
        while t > 1e-8:
            xn = np.maximum(x + t * step, lower)
            fn = fun(xn)
            if fn < fx - 1e-13 * max(1.0, abs(fx)):
                moved = True
            elif fn <= fx + 1e-12 * max(1.0, abs(fx)):
                gn = grad(xn)
                fr = ~((xn <= lower) & (gn >= 0))
                moved = bool(np.linalg.norm(gn[fr]) < gnorm)
            if moved:
                break
            t *= 0.5
        if not moved:
            return x, fx, last < 1e-7
        x, fx, gx = xn, fn, grad(xn)
    return x, fx, last < 1e-7
