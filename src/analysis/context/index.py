"""The social well-being index of a school (индекс социального благополучия).

:class:`SocialIndex` turns the social passport indicators of a school into one number,
higher = more favourable, following the scikit-learn estimator pattern (``fit`` /
``transform``, fitted attributes end in ``_``).

Data that cannot support it stops the run with an :class:`~analysis.errors.InputError`
naming the parameter to change: too few indicators that vary between the schools of a year
(``index.indicators`` / ``index.min_indicators``).  An indicator without variation (or without values) in a year is left out
of that year's index with an :class:`~analysis.ingest.io.InputWarning` and a record for the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis import ledger
from analysis.errors import InputError, Problem
from analysis.ingest import schema
from analysis.ingest.io import InputWarning

METHODS = ("mean_z", "pca")
#: Where an analyst changes a parameter named in a message.
SET_IN = "params.yaml (for make report DATA=<folder>: the params.yaml in that folder)"
#: Reasons an indicator is left out of a year's index (``index_warnings`` records).
NO_VARIANCE, NO_VALUES = "no_variance", "no_values"
#: A range (max - min) at most this, relative to the values' magnitude (at least 1), counts
#: as no variation: differences at the level of floating-point rounding.
_TOLERANCE = 1e-12


def is_constant(values: pd.Series | np.ndarray) -> bool:
    """Whether the non-missing ``values`` (shape (n,)) are all the same number (or none)."""
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return True
    return bool(np.ptp(v) <= _TOLERANCE * max(1.0, float(np.abs(v).max())))


def _single_year(years: pd.Series | pd.Index) -> int | None:
    """The one year among ``years``, if they hold exactly one."""
    found = pd.unique(pd.Series(np.asarray(years)).dropna())
    return int(found[0]) if len(found) == 1 else None


class SocialIndex:
    """Social well-being index from school-level shares.

    Each indicator is standardised across schools (z-score), multiplied by its sign
    (+1 if it raises well-being) and combined:

    - ``mean_z`` -- the mean of the available signed z-scores (the PISA ESCS approach since
      2018); a school with fewer than ``min_indicators`` available gets no index;
    - ``pca`` -- the first principal component of the signed z-scores, missing z-scores
      set to 0 (the mean), oriented so that it correlates positively with ``mean_z``.

    The combined score is standardised again, so the index has mean 0 and SD 1 over the
    schools it was fitted on: "+1" reads as one standard deviation more favourable than
    the average school.

    An indicator that has the same value for every school (no variance), or no value at
    all, says nothing about context: it is left out (``dropped_``) with an
    :class:`~analysis.ingest.io.InputWarning`.  When fewer than ``min_indicators`` usable
    indicators remain, no school could get an index and ``fit`` raises
    :class:`~analysis.errors.InputError` naming ``index.indicators`` /
    ``index.min_indicators``, the year (from a ``year`` column with one value) and the
    constant indicators with their values.

    Parameters
    ----------
    indicators : mapping of column name -> sign (+1 or -1)
    method : {"mean_z", "pca"}
    min_indicators : int
        Least number of available indicators for a school to get an index, and least number
        of usable (varying) indicators for the index to be fitted at all.

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
        Mean and SD (ddof=0) of each indicator.
    weights_ : Series, shape (n_indicators,)
        Weights on the signed z-scores (equal for ``mean_z``; PC1 loadings for ``pca``).
    centre_, spread_ : float
        Mean and SD of the raw combined score, used to standardise it.
    """

    def __init__(self, indicators: Mapping[str, int], method: str = "mean_z",
                 min_indicators: int = 2):
        if method not in METHODS:
            raise ValueError(f"index method must be one of {METHODS}, got '{method}'")
        bad = {k: v for k, v in indicators.items() if v not in (1, -1)}
        if bad:
            raise ValueError(f"index indicator signs must be +1 or -1, got {bad}")
        self.indicators = dict(indicators)
        self.method = method
        self.min_indicators = int(min_indicators)

    def _signed_z(self, X: pd.DataFrame) -> pd.DataFrame:
        z = (X[self.columns_] - self.mean_) / self.scale_
        return z * pd.Series({c: self.indicators[c] for c in self.columns_})

    def _raw(self, X: pd.DataFrame) -> pd.Series:
        z = self._signed_z(X)
        available = z.notna().sum(axis=1)
        if self.method == "mean_z":
            raw = z.mean(axis=1)
        else:
            raw = z.fillna(0.0) @ self.weights_
        return raw.where(available >= self.min_indicators)

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
            values = X[c].astype("float64") if c in X.columns else pd.Series(dtype="float64")
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
        n = len(self.columns_)
        self.weights_ = pd.Series(1.0 / n, index=self.columns_)
        if self.method == "pca":
            z = self._signed_z(data).fillna(0.0).to_numpy()
            _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
            w = pd.Series(vt[0], index=self.columns_)
            self.weights_ = w if w.sum() >= 0 else -w
        raw = self._raw(data)
        self.centre_ = float(raw.mean())
        self.spread_ = float(raw.std(ddof=0)) or 1.0
        return self

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

    def transform(self, X: pd.DataFrame) -> pd.Series:
        """Index per row of ``X`` (NaN where fewer than ``min_indicators`` are available)."""
        return ((self._raw(X.astype({c: "float64" for c in self.columns_})) - self.centre_)
                / self.spread_).rename("social_index")

    def fit_transform(self, X: pd.DataFrame) -> pd.Series:
        return self.fit(X).transform(X)


def social_index_by_year(schools: pd.DataFrame, indicators: Mapping[str, int],
                         method: str = "mean_z", min_indicators: int = 2, *,
                         index_warnings: list[dict] | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit the index separately in each year (each year's schools are its reference).

    Parameters
    ----------
    schools : DataFrame, one row per school-year
        ``year``, ``school_id`` and the indicator columns (shares on 0..1).
    indicators, method, min_indicators
        As for :class:`SocialIndex`.
    index_warnings : list, optional
        Receives one record per indicator left out of a year's index, in year order:
        ``{"year": int, "indicator": str, "reason": "no_variance" | "no_values"}``.

    Returns
    -------
    index : DataFrame, one row per school-year with an index
        ``year, school_id, social_index, n_indicators``.
    ledger, accounting : DataFrame
        School-years without an index (reason ``too_few_indicators``).

    Raises
    ------
    InputError
        In some years, fewer than ``min_indicators`` indicators vary between the schools
        (one problem per such year).
    """
    frames, problems = [], []
    for year, grp in schools.groupby("year", sort=True):
        try:
            est = SocialIndex(indicators, method, min_indicators).fit(grp)
        except InputError as exc:  # every year's problem at once
            problems += exc.problems
            continue
        if index_warnings is not None:
            index_warnings.extend({"year": int(year), "indicator": c, "reason": r}
                                  for c, r in est.dropped_.items())
        frames.append(pd.DataFrame({
            "year": grp["year"], "school_id": grp["school_id"],
            "social_index": est.transform(grp),
            "n_indicators": grp[est.columns_].notna().sum(axis=1).astype("int64"),
        }))
    if problems:
        raise InputError(problems)
    index = pd.concat(frames).sort_values(list(schema.SCHOOL_KEY), kind="stable")
    missing = index["social_index"].isna()
    led, acc = ledger.record(schools.loc[index.index], missing, analysis="social_index",
                             table="schools", reason="too_few_indicators")
    return index.loc[~missing].reset_index(drop=True), led, acc
