"""The social well-being index of a school (индекс социального благополучия).

:class:`SocialIndex` turns the social passport indicators of a school into one number,
higher = more favourable, following the scikit-learn estimator pattern (``fit`` /
``transform``, fitted attributes end in ``_``).  As the OECD PISA ESCS index, it combines
the signed z-scores of the indicators (their mean, the first principal component, or
explicit weights), imputes a school's missing components by regression on its observed
ones, and is standardised to mean 0 and SD 1 within the year; :func:`bands` cuts it into
ordered bands (1 = least favourable) at edges in SD units.

Data that cannot support it stops the run with an :class:`~analysis.errors.InputError`
naming the parameter to change: too few indicators that vary between the schools of a year
(``index.indicators`` / ``index.min_indicators``).  An indicator without variation (or
without values) in a year is left out of that year's index with an
:class:`~analysis.errors.InputWarning` and a record for the report.  Bad parameters
(``index.method``, ``index.weights``, ``index.band_edges``) raise :class:`ValueError`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
import pandas as pd

from analysis import ledger
from analysis.errors import SET_IN, InputError, InputWarning, Problem
from analysis.ingest import schema
from analysis.numeric import is_constant

METHODS = ("mean_z", "pca", "weights")
#: Band edges in SD units of the standardised index: k edges give k + 1 ordered bands,
#: 1 = least favourable (7 bands, as the 3..7 values in the regional documents).
DEFAULT_BAND_EDGES: tuple[float, ...] = (-1.5, -1.0, -0.5, 0.5, 1.0, 1.5)
#: Reasons an indicator is left out of a year's index (``index_warnings`` records).
NO_VARIANCE, NO_VALUES = "no_variance", "no_values"
#: How a missing component was imputed (``imputation_`` records).
BY_REGRESSION, BY_MEAN = "regression", "mean"


def _single_year(years: pd.Series | pd.Index) -> int | None:
    """The one year among ``years``, if they hold exactly one."""
    found = pd.unique(pd.Series(np.asarray(years)).dropna())
    return int(found[0]) if len(found) == 1 else None


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_weights(weights: Mapping[str, float] | None, indicators: Mapping[str, int],
                   method: str) -> dict[str, float] | None:
    """``weights`` as a dict of positive floats, or ValueError naming ``index.weights``."""
    if weights is None:
        if method == "weights":
            raise ValueError("index.method = 'weights' needs index.weights: a positive number "
                             f"for each indicator of index.indicators; set them in {SET_IN}")
        return None
    if not isinstance(weights, Mapping):  # an analyst's params.yaml: a value problem
        raise ValueError(  # noqa: TRY004
            f"index.weights must map each indicator to a positive number, got {weights!r}; "
            f"change index.weights in {SET_IN}")
    unknown = [k for k in weights if k not in indicators]
    bad = {k: v for k, v in weights.items()
           if not _is_number(v) or not math.isfinite(float(v)) or float(v) <= 0}
    missing = ([k for k in indicators if k not in weights] if method == "weights" else [])
    if unknown or bad or missing:
        parts = [f"not in index.indicators: {', '.join(map(str, unknown))}" if unknown else "",
                 f"not a positive number: {bad}" if bad else "",
                 f"no weight for: {', '.join(missing)}" if missing else ""]
        raise ValueError("index.weights must give a positive number for each indicator of "
                         "index.indicators (the sign comes from index.indicators) ["
                         + "; ".join(p for p in parts if p) + f"]; change index.weights in "
                         f"{SET_IN}")
    return {k: float(v) for k, v in weights.items()}


def check_band_edges(edges: Sequence[float]) -> np.ndarray:
    """``edges`` as an array, shape (k,), or ValueError naming ``index.band_edges``.

    At least one finite number, strictly increasing (SD units of the standardised index).
    """
    ok = (not isinstance(edges, (str, bytes, Mapping)) and isinstance(edges, Sequence | np.ndarray)
          and len(edges) >= 1 and all(_is_number(e) for e in edges))
    e = np.asarray(edges, dtype="float64") if ok else np.array([np.nan])
    if not ok or e.ndim != 1 or not np.isfinite(e).all() or (np.diff(e) <= 0).any():
        raise ValueError("index.band_edges must be at least one finite number in strictly "
                         "increasing order (SD units of the social index, e.g. "
                         f"{list(DEFAULT_BAND_EDGES)}), got {edges!r}; change "
                         f"index.band_edges in {SET_IN}")
    return e


def bands(index: pd.Series, edges: Sequence[float] = DEFAULT_BAND_EDGES) -> pd.Series:
    """Ordered band of each value of the standardised ``index``.

    Parameters
    ----------
    index : Series, shape (n,)
        Social index (SD units, NaN = no index).
    edges : sequence of float, shape (k,)
        Strictly increasing band edges (``index.band_edges``); a value exactly on an edge
        goes to the upper band.

    Returns
    -------
    Series, shape (n,), dtype Int64, named ``social_band``
        1 (below ``edges[0]``, least favourable) .. k + 1 (at or above ``edges[-1]``); NA
        where the index is NaN.

    Raises
    ------
    ValueError
        ``edges`` empty, not numbers or not strictly increasing (names ``index.band_edges``).
    """
    e = check_band_edges(edges)
    v = pd.to_numeric(index, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    band = np.searchsorted(e, v, side="right").astype("int64") + 1
    return pd.Series(pd.arrays.IntegerArray(band, np.isnan(v)), index=index.index,
                     name="social_band")


def _share_explained(z: np.ndarray, score: np.ndarray) -> float:
    """Share of the total variance of ``z`` (n, p) explained by ``score`` (n,).

    ``sum_j Var(z_j) corr(z_j, score)^2 / sum_j Var(z_j)`` = ``sum_j Cov(z_j, score)^2 /
    (Var(score) sum_j Var(z_j))``; NaN when either variance is 0 (or no rows).
    """
    if len(z) == 0:
        return float("nan")
    zc, sc = z - z.mean(axis=0), score - score.mean()
    var_s, total = float(sc @ sc), float((zc * zc).sum())
    if var_s <= 0 or total <= 0:
        return float("nan")
    cov = zc.T @ sc
    return float(min(1.0, (cov @ cov) / (var_s * total)))


class SocialIndex:
    """Social well-being index from school-level shares.

    Each indicator is standardised across schools (z-score, SD with ddof=0), multiplied by
    its sign (+1 if it raises well-being) and combined:

    - ``mean_z`` -- the mean of the signed z-scores (the PISA ESCS approach since 2018);
    - ``pca`` -- the first principal component of the signed z-scores (PISA before 2018),
      oriented so that higher = better-off (loadings sum to >= 0);
    - ``weights`` -- ``sum_j w_j z_j / sum_j w_j`` with the analyst's positive ``weights``.

    Missing components (``impute=True``, as PISA): a school with at least
    ``min_indicators`` observed indicators but some missing gets each missing signed
    z-score predicted by an OLS regression (with intercept) on its observed ones, fitted
    on the complete cases (schools with every used indicator observed).  Schools are
    grouped by their pattern of missing indicators, one regression per pattern.  When
    there are fewer than (number observed + 2) complete cases, the missing z-score is set
    to the mean, 0 (recorded in ``imputation_``).  The index is computed on the completed
    z-scores.  With ``impute=False``, ``mean_z`` averages the available z-scores and
    ``pca`` / ``weights`` set missing z-scores to 0.  A school with fewer than
    ``min_indicators`` observed indicators gets no index (NaN) either way.

    The combined score is standardised again, so the index has mean 0 and SD 1 over the
    schools it was fitted on that have one: "+1" reads as one standard deviation more
    favourable than the average school.

    An indicator that has the same value for every school (no variance), or no value at
    all, says nothing about context: it is left out (``dropped_``, its weight too, the
    others renormalised) with an :class:`~analysis.errors.InputWarning`.  When fewer
    than ``min_indicators`` usable indicators remain, no school could get an index and
    ``fit`` raises :class:`~analysis.errors.InputError` naming ``index.indicators`` /
    ``index.min_indicators``, the year (from a ``year`` column with one value) and the
    constant indicators with their values.

    Parameters
    ----------
    indicators : mapping of column name -> sign (+1 or -1)
    method : {"mean_z", "pca", "weights"}
    min_indicators : int
        Least number of observed indicators for a school to get an index, and least number
        of usable (varying) indicators for the index to be fitted at all.
    weights : mapping of column name -> positive float, optional
        Weight of each indicator for ``method="weights"`` (required then, one per
        indicator; ignored by the other methods, but still checked).
    impute : bool
        Impute missing components by regression (see above).

    Attributes
    ----------
    columns_ : list of str
        Indicators used: present in the data with at least two different values.
    dropped_ : dict of str -> str
        Indicators left out, with the reason: ``"no_variance"`` or ``"no_values"``
        (absent column or all missing), in the order of ``indicators``.
    constant_values_ : dict of str -> float
        The one value (a share) of each ``"no_variance"`` indicator.
    mean_, scale_ : Series, shape (n_indicators,)
        Mean and SD (ddof=0) of each indicator (shares).
    weights_ : Series, shape (n_indicators,)
        Effective weights on the signed z-scores: summing to 1 for ``mean_z`` / ``weights``;
        the PC1 loadings (unit length) for ``pca``.
    variance_explained_ : float
        Share (0..1) of the total variance of the completed signed z-scores (schools with an
        index) explained by the index; for ``pca`` the first component's
        ``explained_variance_ratio_``.  NaN when undefined (no variance).
    n_complete_ : int
        Schools with every used indicator observed (the imputation regressions' sample).
    complete_mean_, complete_cov_ : ndarray, shapes (n_indicators,), (n_indicators, n_indicators)
        Mean and covariance of the signed z-scores over the complete cases: the
        regression of any missing components on the observed ones follows from them.
    imputation_ : dict of str -> dict
        For each indicator with imputed values in the fitted data: ``{"n_imputed": int,
        "method": "regression" | "mean", "n_mean": int}``; ``"mean"`` when some of them
        (``n_mean``) fell back to the mean for lack of complete cases.
    n_imputed_schools_ : int
        Fitted schools with an index and at least one imputed component.
    centre_, spread_ : float
        Mean and SD of the raw combined score, used to standardise it.
    """

    def __init__(self, indicators: Mapping[str, int], method: str = "mean_z",
                 min_indicators: int = 2, *, weights: Mapping[str, float] | None = None,
                 impute: bool = True):
        if method not in METHODS:
            raise ValueError(f"index.method must be one of {METHODS}, got '{method}'; change "
                             f"index.method in {SET_IN}")
        bad = {k: v for k, v in indicators.items() if v not in (1, -1)}
        if bad:
            raise ValueError(f"index indicator signs must be +1 or -1, got {bad}; change "
                             f"index.indicators in {SET_IN}")
        self.indicators = dict(indicators)
        self.method = method
        self.min_indicators = int(min_indicators)
        self.weights = _check_weights(weights, self.indicators, method)
        self.impute = bool(impute)

    # --- the computation, on arrays -------------------------------------------------------

    def _signed_z(self, X: pd.DataFrame) -> np.ndarray:
        """Signed z-scores, shape (n_schools, n_indicators), NaN where missing."""
        data = X[self.columns_].to_numpy(dtype="float64", na_value=np.nan)
        signs = np.array([self.indicators[c] for c in self.columns_], dtype="float64")
        return (data - self.mean_.to_numpy()) / self.scale_.to_numpy() * signs

    def _complete(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Fill in the missing z-scores of the schools that get an index.

        Returns
        -------
        completed : ndarray, shape (n, p)
            ``z`` with the missing values of eligible schools filled (by regression, the
            mean 0, or 0 without imputation); rows of ineligible schools all NaN.
        eligible : ndarray of bool, shape (n,)
        n_imputed : ndarray of int, shape (n,)
            Components imputed per school (0 without imputation).
        patterns : list of (missing column positions, n schools, method)
        """
        n, p = z.shape
        observed = ~np.isnan(z)
        eligible = observed.sum(axis=1) >= max(self.min_indicators, 1)
        completed = z.copy()
        completed[~eligible] = np.nan
        n_imputed = np.zeros(n, dtype="int64")
        patterns: list[tuple[np.ndarray, int, str]] = []
        todo = np.flatnonzero(eligible & ~observed.all(axis=1))
        if not self.impute:
            completed[todo] = np.nan_to_num(completed[todo], nan=0.0)
        if not self.impute or todo.size == 0:
            return completed, eligible, n_imputed, patterns
        codes = observed[todo] @ (1 << np.arange(p, dtype="int64"))
        uniq, inverse = np.unique(codes, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        groups = np.split(todo[order], np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1])
        mu, cov = self.complete_mean_, self.complete_cov_
        for code, rows in zip(uniq, groups, strict=True):
            has = (int(code) >> np.arange(p)) & 1 == 1
            obs, miss = np.flatnonzero(has), np.flatnonzero(~has)
            if self.n_complete_ >= len(obs) + 2:
                beta = np.linalg.lstsq(cov[np.ix_(obs, obs)], cov[np.ix_(obs, miss)],
                                       rcond=None)[0]
                completed[np.ix_(rows, miss)] = mu[miss] + (z[np.ix_(rows, obs)] - mu[obs]) @ beta
                how = BY_REGRESSION
            else:
                completed[np.ix_(rows, miss)] = 0.0
                how = BY_MEAN
            n_imputed[rows] = len(miss)
            patterns.append((miss, len(rows), how))
        return completed, eligible, n_imputed, patterns

    def _raw(self, z: np.ndarray, completed: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        """Combined score before standardisation, shape (n,), NaN where not eligible."""
        if self.method == "mean_z" and not self.impute:
            observed = ~np.isnan(z)
            count = observed.sum(axis=1)
            raw = np.where(observed, z, 0.0).sum(axis=1) / np.maximum(count, 1)
        else:
            raw = np.where(eligible[:, None], completed, 0.0) @ self.weights_.to_numpy()
        return np.where(eligible, raw, np.nan)

    def _compute(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                 np.ndarray, np.ndarray, list]:
        z = self._signed_z(X)
        completed, eligible, n_imputed, patterns = self._complete(z)
        return z, completed, eligible, n_imputed, self._raw(z, completed, eligible), patterns

    # --- the estimator --------------------------------------------------------------------

    def fit(self, X: pd.DataFrame) -> SocialIndex:
        """Fit on a table with one row per school and the indicator columns (shares).

        Parameters
        ----------
        X : DataFrame, shape (n_schools, ...)
            Indicator columns as shares on 0..1 (missing = NaN); other columns, e.g.
            ``year``, are ignored except to name the year in messages.

        Raises
        ------
        InputError
            Fewer than ``min_indicators`` indicators vary between the schools.
        """
        self.columns_, self.dropped_, self.constant_values_ = [], {}, {}
        for c in self.indicators:
            values = (pd.to_numeric(X[c], errors="coerce").astype("float64")
                      if c in X.columns else pd.Series(dtype="float64"))
            if values.notna().sum() == 0:
                self.dropped_[c] = NO_VALUES
            elif is_constant(values):
                self.dropped_[c] = NO_VARIANCE
                self.constant_values_[c] = float(values.dropna().iloc[0])
            else:
                self.columns_.append(c)
        year = _single_year(X["year"]) if "year" in X.columns else None
        for c, reason in self.dropped_.items():
            warnings.warn(self._dropped_text(c, reason, year), InputWarning, stacklevel=2)
        if len(self.columns_) < max(self.min_indicators, 1):
            raise InputError(self._too_few(year, len(X)))
        data = X[self.columns_].astype("float64")
        self.mean_ = data.mean()
        self.scale_ = data.std(ddof=0).replace(0.0, 1.0)
        p = len(self.columns_)
        z = self._signed_z(data)
        complete = z[~np.isnan(z).any(axis=1)]
        self.n_complete_ = len(complete)
        self.complete_mean_ = complete.mean(axis=0) if len(complete) else np.zeros(p)
        self.complete_cov_ = (np.cov(complete, rowvar=False, ddof=0).reshape(p, p)
                              if len(complete) else np.zeros((p, p)))
        completed, eligible, n_imputed, patterns = self._complete(z)
        self.weights_ = self._weights(completed[eligible])
        raw = self._raw(z, completed, eligible)[eligible]
        self.centre_ = float(raw.mean()) if raw.size else 0.0
        self.spread_ = (float(raw.std()) if raw.size else 0.0) or 1.0
        filled = completed[eligible]
        self.variance_explained_ = _share_explained(filled, raw)
        self.imputation_ = self._imputation(patterns)
        self.n_imputed_schools_ = int((n_imputed > 0).sum())
        return self

    def _weights(self, completed: np.ndarray) -> pd.Series:
        """Effective weights on the signed z-scores from the completed rows, shape (n, p)."""
        p = len(self.columns_)
        if self.method == "weights":
            w = np.array([self.weights[c] for c in self.columns_])
            return pd.Series(w / w.sum(), index=self.columns_)
        if self.method == "mean_z":
            return pd.Series(1.0 / p, index=self.columns_)
        if len(completed) < 2:  # no variation to analyse: equal loadings of unit length
            return pd.Series(1.0 / np.sqrt(p), index=self.columns_)
        _, _, vt = np.linalg.svd(completed - completed.mean(axis=0), full_matrices=False)
        w = vt[0]
        total = w.sum()
        if total < 0 or (total == 0 and w[np.flatnonzero(w)[0]] < 0):
            w = -w
        return pd.Series(w + 0.0, index=self.columns_)

    def _imputation(self, patterns: list) -> dict[str, dict]:
        counts = np.zeros(len(self.columns_), dtype="int64")
        by_mean = np.zeros(len(self.columns_), dtype="int64")
        for miss, n, how in patterns:
            counts[miss] += n
            if how == BY_MEAN:
                by_mean[miss] += n
        return {c: {"n_imputed": int(counts[j]),
                    "method": BY_MEAN if by_mean[j] else BY_REGRESSION,
                    "n_mean": int(by_mean[j])}
                for j, c in enumerate(self.columns_) if counts[j]}

    def _dropped_text(self, column: str, reason: str, year: int | None) -> str:
        when = f" in {year}" if year is not None else ""
        why = (f"has the same value {self.constant_values_[column]:.4g} for every school "
               "that has one" if reason == NO_VARIANCE else "has no values")
        return (f"social indicator '{column}' {why}{when}: left out of the social index"
                f"{when} (index.indicators)")

    def _too_few(self, year: int | None, n_schools: int) -> Problem:
        when = f", year {year}" if year is not None else ""
        constant = [f"{c} = {v:.4g}" for c, v in self.constant_values_.items()]
        empty = [c for c, r in self.dropped_.items() if r == NO_VALUES]
        details = "; ".join(part for part in (
            "the same value for every school: " + ", ".join(constant) if constant else "",
            "no values: " + ", ".join(empty) if empty else "",
            "usable: " + ", ".join(self.columns_) if self.columns_ else "") if part)
        return Problem(
            file=f"schools ({n_schools} schools{when})", column="index.indicators",
            value=f"{len(self.columns_)} of {len(self.indicators)} indicators vary between "
                  "schools",
            expected=(f"at least index.min_indicators = {self.min_indicators} social "
                      "indicators that vary between the schools (an indicator with one value "
                      f"for every school says nothing about their context) [{details}]; "
                      "check these columns of the schools table, or change index.indicators "
                      f"or index.min_indicators in {SET_IN}"))

    def transform_detail(self, X: pd.DataFrame) -> pd.DataFrame:
        """Index per row of ``X`` with how it was obtained.

        Returns
        -------
        DataFrame, shape (n_rows, 4), indexed like ``X``
            ``social_index`` (float, NaN where fewer than ``min_indicators`` indicators are
            observed), ``n_indicators`` (observed used indicators), ``n_imputed``
            (components imputed), ``imputed`` (bool, ``n_imputed > 0``).
        """
        z, _, _, n_imputed, raw, _ = self._compute(X)
        return pd.DataFrame({
            "social_index": (raw - self.centre_) / self.spread_,
            "n_indicators": (~np.isnan(z)).sum(axis=1).astype("int64"),
            "n_imputed": n_imputed, "imputed": n_imputed > 0,
        }, index=X.index)

    def transform(self, X: pd.DataFrame) -> pd.Series:
        """Index per row of ``X``, shape (n_rows,) (NaN where fewer than ``min_indicators``
        indicators are observed)."""
        raw = self._compute(X)[4]
        return pd.Series((raw - self.centre_) / self.spread_, index=X.index,
                         name="social_index")

    def fit_transform(self, X: pd.DataFrame) -> pd.Series:
        return self.fit(X).transform(X)


INDEX_COLUMNS = ("year", "school_id", "social_index", "social_band", "n_indicators",
                 "n_imputed", "imputed")


def social_index_by_year(schools: pd.DataFrame, indicators: Mapping[str, int],
                         method: str = "mean_z", min_indicators: int = 2, *,
                         weights: Mapping[str, float] | None = None, impute: bool = True,
                         band_edges: Sequence[float] = DEFAULT_BAND_EDGES,
                         index_warnings: list[dict] | None = None,
                         summaries: list[dict] | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit the index separately in each year (each year's schools are its reference).

    Parameters
    ----------
    schools : DataFrame, one row per school-year
        ``year``, ``school_id`` and the indicator columns (shares on 0..1).
    indicators, method, min_indicators, weights, impute
        As for :class:`SocialIndex`.
    band_edges : sequence of float
        Edges of the bands in SD units (``index.band_edges``), see :func:`bands`.
    index_warnings : list, optional
        Receives one record per indicator left out of a year's index, in year order:
        ``{"year": int, "indicator": str, "reason": "no_variance" | "no_values"}``.
    summaries : list, optional
        Receives one record per year, in year order (plain JSON-serialisable types):
        ``{"year": int, "method": str, "weights": {indicator: float} (effective weights on
        the signed z-scores), "variance_explained": float | None, "n_schools": int
        (schools with an index), "n_imputed_schools": int, "imputation": {indicator:
        {"n_imputed", "method", "n_mean"}}}``.

    Returns
    -------
    index : DataFrame, one row per school-year with an index
        ``year, school_id, social_index, social_band, n_indicators, n_imputed, imputed``.
    ledger, accounting : DataFrame
        School-years without an index (reason ``too_few_indicators``).

    Raises
    ------
    InputError
        In some years, fewer than ``min_indicators`` indicators vary between the schools
        (one problem per such year).
    ValueError
        Bad ``method``, signs, ``weights`` or ``band_edges`` (named as in params.yaml).
    """
    check_band_edges(band_edges)
    SocialIndex(indicators, method, min_indicators, weights=weights, impute=impute)
    frames, problems, found = [], [], []
    for year, grp in schools.groupby("year", sort=True):
        try:
            est = SocialIndex(indicators, method, min_indicators, weights=weights,
                              impute=impute).fit(grp)
        except InputError as exc:  # every year's problem at once
            problems += exc.problems
            continue
        if index_warnings is not None:
            index_warnings.extend({"year": int(year), "indicator": c, "reason": r}
                                  for c, r in est.dropped_.items())
        detail = est.transform_detail(grp)
        found.append({
            "year": int(year), "method": method,
            "weights": {c: float(w) for c, w in est.weights_.items()},
            "variance_explained": (None if np.isnan(est.variance_explained_)
                                   else float(est.variance_explained_)),
            "n_schools": int(detail["social_index"].notna().sum()),
            "n_imputed_schools": int(detail["imputed"].sum()),
            "imputation": {c: dict(v) for c, v in est.imputation_.items()},
        })
        frames.append(pd.concat([grp[["year", "school_id"]], detail], axis=1))
    if problems:
        raise InputError(problems)
    if summaries is not None:
        summaries.extend(found)
    index = pd.concat(frames).sort_values(list(schema.SCHOOL_KEY), kind="stable")
    index.insert(3, "social_band", bands(index["social_index"], band_edges))
    missing = index["social_index"].isna()
    led, acc = ledger.record(schools.loc[index.index], missing, analysis="social_index",
                             table="schools", reason="too_few_indicators")
    return index.loc[~missing, list(INDEX_COLUMNS)].reset_index(drop=True), led, acc
