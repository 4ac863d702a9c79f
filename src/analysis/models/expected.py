"""The expected-result model: what a school's result would be given its context.

A school-level weighted least squares regression of the quality index on a *shape* of the
social index (:class:`IndexBasis`) plus categorical *terms* (settlement type, school type,
optionally the context cluster), weighted by the number of participants behind each
school's quality index.  Its ``fitted`` values are the expected result and the residuals
feed the flags (stage 04).

Why the terms: without them a gymnasium's or lyceum's selection premium reads as a school
effect, and such schools in low context are flagged "above expectation" far more often than
ordinary schools.  With the terms each school is compared with schools of its own type and
settlement type at the same index.

Why the shape is bounded: a polynomial over the whole index bends where there are hardly
any schools (a quadratic bottomed out at index -2.3 and rose again at -4).  Every shape here
is curved only inside the *support* -- between two quantiles of the schools' index
(:attr:`ExpectedSpec.support`) -- and a straight line (the tangent at the bound) outside.

Standard errors are cluster-robust by municipality by default (statsmodels
``cov_type="cluster"``), with statsmodels' default small-sample correction
``G/(G-1) * (N-1)/(N-K)`` (G municipalities, N schools, K coefficients) and normal
intervals; with few municipalities (under ~30-40) such errors are still too small, so the
report should say how many municipalities there are.  ``HC0`` .. ``HC3`` are the
alternatives.

The slope of the expected result on the index depends on where it is taken once the shape
bends; it is stated at a named point (:attr:`ExpectedSpec.slope_at`, index 0 = the region's
mean school) as ``"slope_at:<x>"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis.errors import SET_IN, InputError, Problem
from analysis.models import estimates

SHAPES = ("linear", "quadratic", "spline")
COV_TYPES = ("cluster", "HC0", "HC1", "HC2", "HC3")
#: Name of the model in the estimates table.
MODEL = "expected"


def _spec_problem(field_name: str, value: object, expected: str) -> InputError:
    return InputError(Problem(file="params.yaml", column=f"ses_link.{field_name}",
                              value=str(value), expected=f"{expected}; set it in {SET_IN}"))


@dataclass(frozen=True)
class ExpectedSpec:
    """What the expected-result model contains (params.yaml ``ses_link``).

    Attributes
    ----------
    terms : tuple of str
        Categorical columns of the schools table entered as dummies (most frequent level
        as reference), e.g. ``("settlement_type", "school_type", "cluster")``.
    shape : {"linear", "quadratic", "spline"}
        Shape of the index: a line; a square bounded to the support; a natural cubic spline.
    df : int
        Spline degrees of freedom = number of index columns (>= 1; 1 is a line).
    support : (float, float)
        Quantiles (0..1) of the schools' index bounding the curved part; outside the fit is
        the tangent line.
    cov_type : {"cluster", "HC0", "HC1", "HC2", "HC3"}
        ``cluster`` = cluster-robust by municipality.
    slope_at : float
        Index value (SD units) where the slope is stated.

    Raises
    ------
    InputError
        A field out of range, naming ``ses_link.<field>``.
    """

    terms: tuple[str, ...] = ("settlement_type", "school_type")
    shape: str = "spline"
    df: int = 3
    support: tuple[float, float] = (0.025, 0.975)
    cov_type: str = "cluster"
    slope_at: float = 0.0

    @classmethod
    def from_params(cls, ses_link: Mapping[str, Any]) -> ExpectedSpec:
        """The expected-result model of ``params.yaml`` ``ses_link``."""
        return cls(terms=tuple(ses_link.get("terms") or ()), shape=ses_link["shape"],
                   df=ses_link["spline_df"], support=tuple(ses_link["support"]),
                   cov_type=ses_link["cov_type"], slope_at=ses_link["slope_at"])

    def __post_init__(self) -> None:
        terms = (self.terms,) if isinstance(self.terms, str) else tuple(self.terms)
        object.__setattr__(self, "terms", tuple(str(t) for t in terms))
        if len(set(self.terms)) != len(self.terms):
            raise _spec_problem("terms", list(self.terms), "column names without repeats")
        if self.shape not in SHAPES:
            raise _spec_problem("shape", self.shape, f"one of {SHAPES}")
        if isinstance(self.df, bool) or int(self.df) != self.df or int(self.df) < 1:
            raise _spec_problem("spline_df", self.df, "a whole number >= 1 (1 = a straight line)")
        object.__setattr__(self, "df", int(self.df))
        lo, hi = (float(v) for v in self.support)
        if not 0.0 <= lo < hi <= 1.0:
            raise _spec_problem("support", list(self.support),
                                "two quantiles 0 <= low < high <= 1, e.g. [0.025, 0.975]")
        object.__setattr__(self, "support", (lo, hi))
        if self.cov_type not in COV_TYPES:
            raise _spec_problem("cov_type", self.cov_type, f"one of {COV_TYPES}")
        if not np.isfinite(float(self.slope_at)):
            raise _spec_problem("slope_at", self.slope_at, "a finite index value, e.g. 0")
        object.__setattr__(self, "slope_at", float(self.slope_at))


class IndexBasis:
    """Columns of the social index that are curved inside the support and linear outside.

    sklearn-like: :meth:`fit` learns the bounds (and knots) from the schools' index,
    :meth:`transform` builds the columns, :meth:`derivative` their derivatives.

    Parameters
    ----------
    shape : {"linear", "quadratic", "spline"}
        ``linear``: one column ``x``.  ``quadratic``: ``x`` and ``x2`` = x² inside
        [lo, hi] and the tangent line outside (``lo² + 2 lo (x - lo)`` below lo, the same at
        hi).  ``spline``: a natural cubic spline in the truncated-power basis of ESL
        (Hastie, Tibshirani & Friedman, 2009, eq. 5.4-5.5): ``x`` and ``ns1`` ..
        ``ns<K-2>`` with K knots -- boundary knots lo and hi and ``df - 1`` interior knots at
        equally spaced quantiles of the index between them -- linear beyond the boundary
        knots by construction.
    df : int
        Spline degrees of freedom (number of columns); ignored by the other shapes.
    support : (float, float)
        Quantiles of the index giving lo and hi (unweighted: quantiles of schools).

    Attributes
    ----------
    bounds_ : (float, float)
        lo and hi in index units.
    knots_ : ndarray, shape (K,)
        Spline knots (boundary included); empty for the other shapes.
    columns_ : tuple of str
        Names of the columns.
    notes_ : list of str
        What was simplified (a degenerate support makes the shape linear; tied quantiles
        merge spline knots, leaving fewer columns).
    """

    def __init__(self, shape: str = "spline", df: int = 3,
                 support: tuple[float, float] = (0.025, 0.975)) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got '{shape}'")
        self.shape = shape
        self.df = int(df)
        self.support = (float(support[0]), float(support[1]))

    def fit(self, x: pd.Series | np.ndarray | Sequence[float]) -> IndexBasis:
        """Learn the bounds and knots from the schools' index.

        Parameters
        ----------
        x : array-like, shape (n_schools,)
            The social index (SD units), no missing values.

        Returns
        -------
        self
        """
        v = np.asarray(x, dtype="float64")
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError("IndexBasis.fit: the index must be non-empty and finite")
        lo, hi = (float(q) for q in np.quantile(v, self.support))
        self.bounds_ = (lo, hi)
        self.notes_: list[str] = []
        self.fitted_shape_ = self.shape
        if self.shape != "linear" and not hi > lo:
            self.notes_.append(f"the index support [{lo:g}, {hi:g}] has no width: the "
                               f"{self.shape} shape is a straight line")
            self.fitted_shape_ = "linear"
        self.knots_ = np.array([], dtype="float64")
        if self.fitted_shape_ == "linear" or (self.fitted_shape_ == "spline" and self.df == 1):
            self.fitted_shape_ = "linear"
            self.columns_: tuple[str, ...] = ("x",)
        elif self.fitted_shape_ == "quadratic":
            self.columns_ = ("x", "x2")
        else:
            inside = v[(v >= lo) & (v <= hi)]
            probs = np.arange(1, self.df) / self.df
            interior = np.quantile(inside, probs)
            interior = np.unique(interior[(interior > lo) & (interior < hi)])
            if interior.size < self.df - 1:
                self.notes_.append(f"tied index values leave {interior.size} distinct interior "
                                   f"spline knots instead of {self.df - 1}")
            self.knots_ = np.concatenate([[lo], interior, [hi]])
            self.columns_ = ("x", *(f"ns{j}" for j in range(1, self.knots_.size - 1)))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "bounds_"):
            raise RuntimeError("IndexBasis: call fit() first")

    def _frame(self, cols: list[np.ndarray], x: object) -> pd.DataFrame:
        index = x.index if isinstance(x, pd.Series) else None
        return pd.DataFrame(dict(zip(self.columns_, cols, strict=True)), index=index,
                            dtype="float64")

    def transform(self, x: pd.Series | np.ndarray | Sequence[float]) -> pd.DataFrame:
        """The basis columns at ``x``.

        Parameters
        ----------
        x : array-like, shape (n,)
            Index values (SD units); a Series keeps its index.

        Returns
        -------
        DataFrame, shape (n, len(columns_)), float64
            Units: ``x`` in SD, ``x2`` in SD², spline columns in SD² (ESL scaling).
        """
        self._check_fitted()
        v = np.asarray(x, dtype="float64")
        cols = [v]
        if self.fitted_shape_ == "quadratic":
            lo, hi = self.bounds_
            cols.append(np.where(v < lo, lo**2 + 2 * lo * (v - lo),
                                 np.where(v > hi, hi**2 + 2 * hi * (v - hi), v**2)))
        elif self.fitted_shape_ == "spline":
            k = self.knots_
            last = k[-1]

            def d(j: int) -> np.ndarray:
                return ((np.clip(v - k[j], 0, None) ** 3 - np.clip(v - last, 0, None) ** 3)
                        / (last - k[j]))

            d_last = d(k.size - 2)
            cols.extend(d(j) - d_last for j in range(k.size - 2))
        return self._frame(cols, x)

    def derivative(self, x: pd.Series | np.ndarray | Sequence[float]) -> pd.DataFrame:
        """d(basis column)/dx at ``x``, same columns as :meth:`transform`.

        Returns
        -------
        DataFrame, shape (n, len(columns_)), float64
            Per SD of the index (``x`` gives 1 everywhere).
        """
        self._check_fitted()
        v = np.asarray(x, dtype="float64")
        cols = [np.ones_like(v)]
        if self.fitted_shape_ == "quadratic":
            lo, hi = self.bounds_
            cols.append(2 * np.clip(v, lo, hi))
        elif self.fitted_shape_ == "spline":
            k = self.knots_
            last = k[-1]

            def dd(j: int) -> np.ndarray:
                return (3 * (np.clip(v - k[j], 0, None) ** 2 - np.clip(v - last, 0, None) ** 2)
                        / (last - k[j]))

            dd_last = dd(k.size - 2)
            cols.extend(dd(j) - dd_last for j in range(k.size - 2))
        return self._frame(cols, x)


def term_levels(data: pd.DataFrame, terms: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Levels of each categorical term, reference first.

    The reference is the most frequent level (count of schools; ties: alphabetical), the
    other levels follow alphabetically.  Levels are compared as strings.

    Returns
    -------
    dict
        term -> ``(reference, *other_levels)``.
    """
    out: dict[str, tuple[str, ...]] = {}
    for term in terms:
        counts = data[term].dropna().astype(str).value_counts()
        if counts.empty:
            out[term] = ()
            continue
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ref = order[0][0]
        out[term] = (ref, *sorted(k for k in counts.index if k != ref))
    return out


def check_columns(data: pd.DataFrame, spec: ExpectedSpec, needed: Mapping[str, str]) -> None:
    """InputError for spec terms or needed columns that ``data`` lacks."""
    missing_terms = [t for t in spec.terms if t not in data.columns]
    problems = []
    if missing_terms:
        problems.append(Problem(
            file="the expected model's schools", column="ses_link.terms",
            value=", ".join(missing_terms),
            expected=("columns the schools data have (they have: "
                      f"{', '.join(map(str, data.columns))}); remove the missing ones from "
                      f"ses_link.terms in {SET_IN}")))
    for column, role in needed.items():
        if column not in data.columns:
            problems.append(Problem(file="the expected model's schools", column=column,
                                    value="no such column", expected=role))
    if problems:
        raise InputError(problems)


def design(data: pd.DataFrame, spec: ExpectedSpec, basis: IndexBasis, *,
           x: str = "social_index",
           levels: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The design matrix (without the constant) of the expected model.

    Parameters
    ----------
    data : DataFrame, shape (n, ...)
        Column ``x`` and the columns of ``spec.terms``.
    spec : ExpectedSpec
    basis : IndexBasis
        Fitted.
    x : str
        The index column.
    levels : mapping, optional
        term -> (reference, *levels) as learned on the fitting data (:func:`term_levels`);
        default: learned from ``data``.  Give the fitting levels when predicting.

    Returns
    -------
    DataFrame, shape (n, n_basis + n_dummies), float64, index of ``data``
        The basis columns, then per term one 0/1 column per non-reference level, named
        ``"<term>[<level>]"``.  A level absent from ``data`` gives a column of zeros; a term
        with a single level gives no column.

    Raises
    ------
    InputError
        A term column missing (``ses_link.terms``), a missing term value, or a level not
        among ``levels``.
    """
    check_columns(data, spec, {x: "the social index"})
    if levels is None:
        levels = term_levels(data, spec.terms)
    parts = [basis.transform(data[x])]
    for term in spec.terms:
        known = list(levels.get(term, ()))
        values = data[term]
        if values.isna().any():
            raise InputError(Problem(
                file="the expected model's schools", column=term,
                value=f"{int(values.isna().sum())} schools without a value",
                expected=f"a value of {term} for every school (or drop it from ses_link.terms "
                         f"in {SET_IN})"))
        values = values.astype(str)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InputError(Problem(
                file="the schools to predict", column=term, value=", ".join(unknown),
                expected=f"levels the expected model was fitted on: {', '.join(known)}"))
        parts.append(pd.DataFrame(
            {f"{term}[{level}]": (values == level).to_numpy(dtype="float64")
             for level in known[1:]}, index=data.index, dtype="float64"))
    out = pd.concat(parts, axis=1)
    out.index = data.index
    return out.astype("float64")


@dataclass
class ModelFrame:
    """What :func:`fit_expected` and the binomial model share: basis, levels and design."""

    basis: IndexBasis
    levels: dict[str, tuple[str, ...]]
    #: Design with ``const`` first, only estimable columns.
    X: pd.DataFrame
    dropped_terms: tuple[str, ...]
    notes: tuple[str, ...]
    #: Weighted means of the dummy columns (the "typical school" of :meth:`curve`).
    typical: pd.Series


def model_frame(data: pd.DataFrame, spec: ExpectedSpec, *, x: str,
                weights: np.ndarray) -> ModelFrame:
    """Fit the index basis, learn the term levels and build the estimable design.

    Terms with a single level are dropped (``dropped_terms``); a column that adds nothing
    to the rank of the columns before it (e.g. a type that coincides with a settlement
    type, or ``x2`` with only two distinct index values) is left out with a note.
    """
    basis = IndexBasis(spec.shape, spec.df, spec.support).fit(data[x])
    notes = list(basis.notes_)
    levels = term_levels(data, spec.terms)
    dropped = []
    for term in spec.terms:
        if len(levels[term]) < 2:
            dropped.append(term)
            only = levels[term][0] if levels[term] else "none"
            notes.append(f"term {term} dropped: a single level ({only}) among the schools")
    full = design(data, spec, basis, x=x, levels=levels)
    full.insert(0, "const", 1.0)
    kept: list[str] = []
    rank = 0
    values = full.to_numpy()
    for j, col in enumerate(full.columns):
        trial = np.linalg.matrix_rank(values[:, [*map(full.columns.get_loc, kept), j]])
        if trial > rank:
            kept.append(col)
            rank = trial
        else:
            notes.append(f"column {col} left out: it is a combination of the columns before "
                         "it among these schools")
    for term in spec.terms:
        cols = [f"{term}[{level}]" for level in levels[term][1:]]
        if term not in dropped and cols and not any(c in kept for c in cols):
            dropped.append(term)
    X = full[kept]
    dummies = [c for c in kept if c != "const" and c not in basis.columns_]
    w = np.asarray(weights, dtype="float64")
    typical = pd.Series(np.average(X[dummies].to_numpy(), axis=0, weights=w)
                        if dummies else [], index=dummies, dtype="float64")
    return ModelFrame(basis, levels, X, tuple(dropped), tuple(notes), typical)


def cluster_groups(data: pd.DataFrame, cluster: str) -> np.ndarray:
    """Integer codes of the clusters (municipalities), sorted by name.

    Raises
    ------
    InputError
        A school without a municipality, or fewer than 2 municipalities.
    """
    values = data[cluster]
    if values.isna().any():
        raise InputError(Problem(
            file="the expected model's schools", column=cluster,
            value=f"{int(values.isna().sum())} schools without a value",
            expected="a municipality for every school (cluster-robust errors group by it)"))
    codes, uniques = pd.factorize(values.astype(str), sort=True)
    if len(uniques) < 2:
        raise InputError(Problem(
            file="the expected model's schools", column="ses_link.cov_type",
            value=f"cluster, with {len(uniques)} municipality",
            expected=f"schools in 2 or more municipalities for cluster-robust errors, or "
                     f"cov_type HC3 in {SET_IN}"))
    return codes


def fit_kwargs(spec: ExpectedSpec, data: pd.DataFrame, cluster: str) -> dict:
    """``fit`` keywords of statsmodels for ``spec.cov_type``."""
    if spec.cov_type == "cluster":
        return {"cov_type": "cluster", "cov_kwds": {"groups": cluster_groups(data, cluster)}}
    return {"cov_type": spec.cov_type}


def combination(result: Any, L: np.ndarray) -> pd.DataFrame:
    """Linear combinations ``L @ beta`` of a statsmodels fit with SE and 95% interval.

    Parameters
    ----------
    result : statsmodels results (its own covariance and distribution are used)
    L : array, shape (m, n_params)

    Returns
    -------
    DataFrame, shape (m, 4)
        ``estimate``, ``std_error``, ``ci_low``, ``ci_high``.
    """
    L = np.atleast_2d(np.asarray(L, dtype="float64"))
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        test = result.t_test(L)
        ci = np.asarray(test.conf_int(alpha=0.05), dtype="float64").reshape(-1, 2)
    return pd.DataFrame({"estimate": np.asarray(test.effect, dtype="float64").ravel(),
                         "std_error": np.asarray(test.sd, dtype="float64").ravel(),
                         "ci_low": ci[:, 0], "ci_high": ci[:, 1]})


def index_rows(basis: IndexBasis, columns: Sequence[str], typical: pd.Series,
               grid: np.ndarray, derivative: bool) -> np.ndarray:
    """Rows of a contrast matrix over the coefficients ``columns`` along the index.

    Parameters
    ----------
    grid : array, shape (m,)
        Index values (SD units).
    derivative : bool
        False: the basis at ``grid``, the constant 1 and the dummies at ``typical`` (the
        expected value for a typical school).  True: the derivative of the basis, 0 for the
        constant and the dummies (the slope in the index).

    Returns
    -------
    ndarray, shape (m, len(columns))
    """
    b = (basis.derivative if derivative else basis.transform)(grid)
    L = np.zeros((grid.size, len(columns)))
    for j, col in enumerate(columns):
        if col in b.columns:
            L[:, j] = b[col].to_numpy()
        elif not derivative:
            L[:, j] = 1.0 if col == "const" else float(typical[col])
    return L


def check_rows(data: pd.DataFrame, columns: Sequence[str], n_params: int) -> None:
    """InputError for missing values in ``columns`` or too few schools for the model."""
    for column in columns:
        bad = data[column].isna()
        if bad.any():
            raise InputError(Problem(
                file="the expected model's schools", column=column,
                value=f"{int(bad.sum())} schools without a value",
                expected="a value for every school (the sample drops such schools first)"))
    if len(data) <= n_params:
        raise InputError(Problem(
            file="the expected model's schools", column="ses_link.terms",
            value=f"{len(data)} schools for {n_params} coefficients",
            expected=f"more schools than coefficients: fewer terms, or a lower ses_link.spline_df, "
                     f"in {SET_IN}"))


@dataclass
class ExpectedFit:
    """A fitted expected-result model (see :func:`fit_expected`).

    Attributes
    ----------
    spec : ExpectedSpec
    basis : IndexBasis
    levels : dict
        term -> (reference, *levels) as fitted.
    columns : tuple of str
        Design columns with coefficients (``const`` first).
    dropped_terms : tuple of str
        Terms of ``spec.terms`` that could not be estimated (a single level).
    notes : tuple of str
        What was simplified or left out, in words.
    result : statsmodels RegressionResults
        The WLS fit (robust covariance per ``spec.cov_type``).
    fitted : DataFrame, index of the data
        ``fitted`` (expected quality, index points) and ``residual`` (observed - fitted).
    typical : Series
        Weighted means of the dummy columns: the typical school of :meth:`curve`.
    x, y, weight, cluster : str
        Column names used.
    n_schools, n_students : int
    x_range : (float, float)
        Smallest and largest index among the schools.
    """

    spec: ExpectedSpec
    basis: IndexBasis
    levels: dict[str, tuple[str, ...]]
    columns: tuple[str, ...]
    dropped_terms: tuple[str, ...]
    notes: tuple[str, ...]
    result: Any
    fitted: pd.DataFrame
    typical: pd.Series
    x: str
    y: str
    weight: str
    cluster: str
    n_schools: int
    n_students: int
    x_range: tuple[float, float]
    model_name: str = field(default=MODEL)

    @property
    def r2(self) -> float:
        """Weighted R² of the fit (share 0..1)."""
        return float(self.result.rsquared)

    @property
    def support_bounds(self) -> tuple[float, float]:
        """(lo, hi): the index range (SD units) where the shape may bend."""
        return self.basis.bounds_

    def _index_rows(self, grid: np.ndarray, derivative: bool) -> np.ndarray:
        return index_rows(self.basis, self.columns, self.typical, grid, derivative)

    def slope_at(self, x0: float) -> tuple[float, float]:
        """Slope of the expected result on the index at ``x0`` (delta method).

        Returns
        -------
        (estimate, se) : floats
            Index points per 1 SD of the social index: ``g'beta`` and ``sqrt(g'Vg)`` with g
            the derivative of the basis at ``x0`` and V the (robust) covariance.
        """
        c = combination(self.result, self._index_rows(np.array([float(x0)]), True))
        return float(c["estimate"].iloc[0]), float(c["std_error"].iloc[0])

    def curve(self, grid: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
        """Expected result over the index for a typical school, with a 95% interval.

        Parameters
        ----------
        grid : array-like, optional
            Index values; default 101 points from the smallest to the largest index.

        Returns
        -------
        DataFrame, shape (len(grid), 4)
            ``x``, ``fit``, ``ci_low``, ``ci_high`` (quality-index points); the dummies at
            their weighted sample means.
        """
        g = (np.linspace(*self.x_range, 101) if grid is None
             else np.asarray(grid, dtype="float64"))
        c = combination(self.result, self._index_rows(g, False))
        return pd.DataFrame({"x": g, "fit": c["estimate"].to_numpy(),
                             "ci_low": c["ci_low"].to_numpy(),
                             "ci_high": c["ci_high"].to_numpy()})

    def predict(self, new_data: pd.DataFrame) -> pd.Series:
        """Expected result of the schools of ``new_data`` (same columns as the fit's).

        Returns
        -------
        Series ``fitted``, index of ``new_data``
            Quality-index points.  Raises :class:`InputError` on a level not seen in the fit.
        """
        X = design(new_data, self.spec, self.basis, x=self.x, levels=self.levels)
        X.insert(0, "const", 1.0)
        params = np.asarray(self.result.params, dtype="float64")
        return pd.Series(X[list(self.columns)].to_numpy() @ params, index=new_data.index,
                         name="fitted")

    def to_estimates(self, outcome: str, year: int | None, subset: str = "all",
                     points: Sequence[float] = ()) -> pd.DataFrame:
        """Rows of the estimates table (model ``"expected"``, level ``"school"``).

        Terms: ``coef:<column>`` per coefficient; ``slope_at:<x %g>`` at ``spec.slope_at``
        and at each of ``points`` (index points per SD, delta-method SE); ``r2`` (share);
        ``support_low`` / ``support_high`` (index SD units); the last three without standard
        errors.  ``n`` = number of schools.
        """
        labels = {"model": self.model_name, "outcome": outcome, "year": year,
                  "subset": subset, "level": "school", "n": self.n_schools}
        coefs = estimates.from_statsmodels(self.result, names=list(self.columns), **labels)
        at = list(dict.fromkeys(f"{float(x0) + 0.0:g}" for x0 in (self.spec.slope_at, *points)))
        grid = np.array([float(x0) for x0 in at])
        slopes = combination(self.result, self._index_rows(grid, True))
        lo, hi = self.support_bounds
        rows = [{**labels, "term": f"slope_at:{x0}", **slopes.iloc[j].to_dict()}
                for j, x0 in enumerate(at)]
        rows += [{**labels, "term": "r2", "estimate": self.r2, "reason": "no_standard_error"},
                 {**labels, "term": "support_low", "estimate": lo,
                  "reason": "no_standard_error"},
                 {**labels, "term": "support_high", "estimate": hi,
                  "reason": "no_standard_error"}]
        return pd.concat([coefs, estimates.make(rows)], ignore_index=True)


def fit_expected(data: pd.DataFrame, spec: ExpectedSpec | None = None, *,
                 y: str = "quality_index", x: str = "social_index", weight: str = "n_students",
                 cluster: str = "municipality") -> ExpectedFit:
    """Fit the expected-result model.

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        One row per school: ``y`` (quality index, 0..1), ``x`` (social index, SD units),
        ``weight`` (participants, > 0), ``cluster`` (municipality, for ``cov_type="cluster"``)
        and the columns of ``spec.terms``; no missing values.
    spec : ExpectedSpec, optional
        Default :class:`ExpectedSpec()`.

    Returns
    -------
    ExpectedFit

    Raises
    ------
    InputError
        A column of ``spec.terms`` missing (naming ``ses_link.terms``), another needed
        column missing, missing values, weights not positive, as many coefficients as
        schools, or fewer than 2 municipalities for cluster-robust errors.
    """
    spec = ExpectedSpec() if spec is None else spec
    needed = {y: "the quality index", x: "the social index",
              weight: "the number of participants (the weight)"}
    if spec.cov_type == "cluster":
        needed[cluster] = f"the municipality (cluster-robust errors; or cov_type HC3 in {SET_IN})"
    check_columns(data, spec, needed)
    check_rows(data, list(needed), 1)
    w = data[weight].to_numpy(dtype="float64")
    if not np.all(w > 0):
        raise InputError(Problem(file="the expected model's schools", column=weight,
                                 value=f"{int((w <= 0).sum())} schools with weight <= 0",
                                 expected="a positive number of participants"))
    frame = model_frame(data, spec, x=x, weights=w)
    check_rows(data, [], frame.X.shape[1])
    kwargs = fit_kwargs(spec, data, cluster)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sm.WLS(data[y].to_numpy(dtype="float64"), frame.X, weights=w).fit(**kwargs)
    fitted = pd.DataFrame({"fitted": np.asarray(result.fittedvalues, dtype="float64")},
                          index=data.index)
    fitted["residual"] = data[y].to_numpy(dtype="float64") - fitted["fitted"]
    xv = data[x].to_numpy(dtype="float64")
    return ExpectedFit(
        spec=spec, basis=frame.basis, levels=frame.levels, columns=tuple(frame.X.columns),
        dropped_terms=frame.dropped_terms, notes=frame.notes, result=result, fitted=fitted,
        typical=frame.typical, x=x, y=y, weight=weight, cluster=cluster,
        n_schools=len(data), n_students=round(float(w.sum())),
        x_range=(float(xv.min()), float(xv.max())))
