"""The context features schools are clustered on, and their encoding into one matrix.

- :func:`context_features` joins the social index onto the schools and picks the features:
  numeric ones (the index, ``log_enrollment``, any ``share_*``) and categorical ones
  (``settlement_type``, ``school_type``).
- :class:`ContextEncoder` turns them into one numeric matrix in which every variable
  carries the same total variance (z-scores; scaled, centred one-hot dummies).
- :func:`distinct_rows` counts the distinct context profiles in that matrix: the most
  clusters any method can form.

It is the bottom of the cluster modules: the estimator (:mod:`analysis.context.clusters`),
its stability (:mod:`analysis.context.stability`) and the profiles and names
(:mod:`analysis.context.profiles`) import from here, with the few checks they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import SET_IN, InputError, Problem
from analysis.ingest import schema

#: Default clustering features (``clusters.numeric`` and ``clusters.categorical``).  On the
#: demo region they recover the planted context groups (municipality kind x settlement type)
#: best; adding ``school_type`` splits the schools by type as well (gymnasiums, АООП), and
#: adding the seven indicator shares mostly adds noise (they are already in the index).
#: The school type is described in every cluster's profile either way.
DEFAULT_NUMERIC: tuple[str, ...] = ("social_index", "log_enrollment")
DEFAULT_CATEGORICAL: tuple[str, ...] = ("settlement_type",)
#: Columns that :func:`context_features` always carries (when the schools have them), so
#: that profiles and names can describe the clusters whatever the clustering features.
PROFILE_NUMERIC: tuple[str, ...] = ("social_index", "log_enrollment")
PROFILE_CATEGORICAL: tuple[str, ...] = ("settlement_type", "school_type")
#: Level given to a missing categorical value.
MISSING_LEVEL = "unknown"


def context_features(schools: pd.DataFrame, index: pd.DataFrame,
                     numeric: Sequence[str] = DEFAULT_NUMERIC,
                     categorical: Sequence[str] = DEFAULT_CATEGORICAL) -> pd.DataFrame:
    """Join the index onto schools and pick the clustering features.

    Parameters
    ----------
    schools : DataFrame, one row per school-year
        The prepared schools table (``year``, ``school_id``, ``log_enrollment``,
        ``settlement_type``, ``school_type``, shares ...).
    index : DataFrame
        ``year``, ``school_id``, ``social_index`` (from
        :func:`analysis.context.index.social_index_by_year`).
    numeric : sequence of str
        Numeric features: ``social_index`` or columns of ``schools`` (e.g.
        ``log_enrollment``, ``urbanicity``, any ``share_*``).  Missing values are imputed
        with the column mean; a column with no values at all becomes a constant 0, which does
        not affect the clusters.
    categorical : sequence of str
        Categorical features (``settlement_type``, ``school_type``), kept as strings; a
        missing value becomes the level :data:`MISSING_LEVEL`.

    Returns
    -------
    DataFrame indexed by (year, school_id), one row per school-year with an index
        The numeric features (float64), then the categorical ones (string), then those of
        :data:`PROFILE_NUMERIC` and :data:`PROFILE_CATEGORICAL` that are not features but are
        in ``schools`` (for the cluster profiles and names;
        :class:`~analysis.context.clusters.ContextClusters` does not cluster on them).  Rows
        without an index are dropped (they are in the index ledger).

    Raises
    ------
    InputError
        A feature is not a column (``clusters.numeric`` / ``clusters.categorical``), or a
        numeric feature is not numeric.
    """
    merged = schools.merge(index, on=list(schema.SCHOOL_KEY), how="inner")
    _check_features(merged, numeric, categorical, "the schools table and the social index")
    chosen = {*numeric, *categorical}
    extra_num = [c for c in PROFILE_NUMERIC if c in merged and c not in chosen]
    extra_cat = [c for c in PROFILE_CATEGORICAL if c in merged and c not in chosen]
    num = merged[[*numeric, *extra_num]].astype("float64")
    num = num.fillna(num.mean()).fillna(0.0)
    X = pd.DataFrame(index=merged.index)
    for col in (*numeric, *categorical, *extra_num, *extra_cat):
        X[col] = (num[col] if col in num.columns
                  else merged[col].astype("string").fillna(MISSING_LEVEL))
    X.index = pd.MultiIndex.from_frame(merged[list(schema.SCHOOL_KEY)])
    return X


def _check_features(X: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str],
                    where: str) -> None:
    problems = []
    for key, names in (("clusters.numeric", numeric), ("clusters.categorical", categorical)):
        unknown = [c for c in names if c not in X.columns]
        if unknown:
            problems.append(Problem(
                file="params.yaml", column=key, value=", ".join(unknown),
                expected=f"columns of {where}; set {key} in {SET_IN}"))
    not_numeric = [c for c in numeric
                   if c in X.columns and not pd.api.types.is_numeric_dtype(X[c])]
    if not_numeric:
        problems.append(Problem(
            file="params.yaml", column="clusters.numeric", value=", ".join(not_numeric),
            expected=f"numeric columns (list categories under clusters.categorical); set "
                     f"clusters.numeric in {SET_IN}"))
    if problems:
        raise InputError(problems)


class ContextEncoder:
    """Encode mixed context features as one float matrix where every variable weighs the same.

    - A numeric feature is standardised: ``(x - mean) / sd`` (ddof=0), so its variance is 1.
      A constant feature (range at most 1e-12 of its magnitude) becomes 0 for every school.
    - A categorical variable with levels of shares ``p_1..p_L`` becomes L one-hot dummies,
      centred (``d_l - p_l``) and divided by ``sqrt(1 - sum p_l^2)``.  Each centred dummy
      has variance ``p_l (1 - p_l)``; their sum is ``1 - sum p_l^2`` (the Gini impurity), so
      after the division the variable as a whole carries a total variance of 1 -- the same
      as one standardised numeric feature, however many levels it has.  Two schools in
      different levels are as far apart as two schools about two SDs apart on a numeric
      feature.  A variable with one level becomes all 0.  A level not seen in ``fit`` is
      encoded as no level (all dummies 0 before centring).

    Constant features (numeric or categorical) contribute 0 to every distance, so they do not
    change the clusters.

    Parameters
    ----------
    numeric, categorical : sequence of str
        Column names of the feature frame (see :func:`context_features`).

    Attributes
    ----------
    mean_, scale_ : ndarray, shape (n_numeric,)
        Means and SDs (original units) of the numeric features (``scale_`` is 1 where
        constant).
    weights_ : ndarray, shape (n_numeric,)
        ``1 / scale_``, or 0 for a constant feature.
    levels_ : dict of str to ndarray of str
        Sorted levels of each categorical variable seen in ``fit``.
    shares_ : dict of str to ndarray of float
        Their shares (sum 1).
    dummy_scale_ : dict of str to float
        ``1 / sqrt(1 - sum p^2)`` per variable (0 for a single level).
    feature_names_ : list of str
        Names of the encoded columns: the numeric features, then ``"<variable>=<level>"``.
    """

    def __init__(self, numeric: Sequence[str] = DEFAULT_NUMERIC,
                 categorical: Sequence[str] = DEFAULT_CATEGORICAL):
        self.numeric, self.categorical = tuple(numeric), tuple(categorical)

    def fit(self, X: pd.DataFrame) -> ContextEncoder:
        """Learn means, SDs, levels and their shares from ``X`` (n_schools, n_columns)."""
        num = X[list(self.numeric)].to_numpy(dtype="float64")
        self.mean_ = num.mean(axis=0) if len(num) else np.zeros(len(self.numeric))
        sd = num.std(axis=0) if len(num) else np.zeros(len(self.numeric))
        spread = (num.max(axis=0) - num.min(axis=0)) if len(num) else sd
        magnitude = np.maximum(1.0, np.abs(self.mean_))
        varies = spread > 1e-12 * magnitude
        self.scale_ = np.where(varies, sd, 1.0)
        self.weights_ = np.where(varies, 1.0 / self.scale_, 0.0)
        self.levels_, self.shares_, self.dummy_scale_ = {}, {}, {}
        for var in self.categorical:
            levels, counts = np.unique(_levels(X[var]), return_counts=True)
            shares = counts / max(1, counts.sum())
            gini = 1.0 - float(np.sum(shares ** 2))
            self.levels_[var], self.shares_[var] = levels, shares
            self.dummy_scale_[var] = 1.0 / np.sqrt(gini) if gini > 1e-12 else 0.0
        self.feature_names_ = [*self.numeric, *(f"{var}={lev}" for var in self.categorical
                                                for lev in self.levels_[var])]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encoded features, ndarray float64 of shape (n_schools, len(feature_names_))."""
        num = (X[list(self.numeric)].to_numpy(dtype="float64") - self.mean_) * self.weights_
        parts = [num]
        for var in self.categorical:
            dummies = (_levels(X[var])[:, None] == self.levels_[var][None, :]).astype("float64")
            parts.append((dummies - self.shares_[var]) * self.dummy_scale_[var])
        return np.hstack(parts) if parts else np.zeros((len(X), 0))

    def fit_transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.fit(X).transform(X)


def _levels(col: pd.Series) -> np.ndarray:
    return col.astype("string").fillna(MISSING_LEVEL).to_numpy(dtype=object).astype(str)


# --- shared by the estimator and its stability ---------------------------------------------

def distinct_rows(z: np.ndarray) -> int:
    """Number of distinct rows of ``z`` (shape (n, p)), equal up to rounding noise: the most
    clusters any method can form."""
    if len(z) == 0:
        return 0
    if z.shape[1] == 0:
        return 1
    scale = max(1.0, float(np.abs(z).max()))
    return len(np.unique(np.round(z / scale, 10), axis=0))


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
