"""Stage 02: the social well-being index and clusters of schools by context.

:class:`SocialIndex` turns the social passport indicators of a school into one number,
higher = more favourable.  :class:`ContextClusters` groups schools with k-means on
standardised context features.  Both follow the scikit-learn estimator pattern
(``fit`` / ``transform`` or ``predict``, fitted attributes end in ``_``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from . import ledger, schema

METHODS = ("mean_z", "pca")


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

    Parameters
    ----------
    indicators : mapping of column name -> sign (+1 or -1)
    method : {"mean_z", "pca"}
    min_indicators : int
        Least number of available indicators for a school to get an index.

    Attributes
    ----------
    columns_ : list of str
        Indicators present in the data the index was fitted on.
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
        """Fit on a table with one row per school and the indicator columns (shares)."""
        self.columns_ = [c for c in self.indicators if c in X.columns and X[c].notna().any()]
        if not self.columns_:
            raise ValueError("none of the index indicators is present in the data: "
                             + ", ".join(self.indicators))
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

    def transform(self, X: pd.DataFrame) -> pd.Series:
        """Index per row of ``X`` (NaN where fewer than ``min_indicators`` are available)."""
        return ((self._raw(X.astype({c: "float64" for c in self.columns_})) - self.centre_)
                / self.spread_).rename("social_index")

    def fit_transform(self, X: pd.DataFrame) -> pd.Series:
        return self.fit(X).transform(X)


def social_index_by_year(schools: pd.DataFrame, indicators: Mapping[str, int],
                         method: str = "mean_z", min_indicators: int = 2
                         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit the index separately in each year (each year's schools are its reference).

    Returns
    -------
    index : DataFrame, one row per school-year with an index
        ``year, school_id, social_index, n_indicators``.
    ledger, accounting : DataFrame
        School-years without an index (reason ``too_few_indicators``).
    """
    frames = []
    for _, grp in schools.groupby("year", sort=True):
        est = SocialIndex(indicators, method, min_indicators).fit(grp)
        frames.append(pd.DataFrame({
            "year": grp["year"], "school_id": grp["school_id"],
            "social_index": est.transform(grp),
            "n_indicators": grp[est.columns_].notna().sum(axis=1).astype("int64"),
        }))
    index = pd.concat(frames).sort_values(list(schema.SCHOOL_KEY), kind="stable")
    missing = index["social_index"].isna()
    led, acc = ledger.record(schools.loc[index.index], missing, analysis="social_index",
                             table="schools", reason="too_few_indicators")
    return index.loc[~missing].reset_index(drop=True), led, acc


class ContextClusters:
    """k-means clusters of schools on standardised context features.

    Features are standardised (z-scores, ddof=0) before k-means, so each weighs the same.
    Clusters are numbered 1..k in increasing order of their mean ``order_by`` feature
    (by default the social index), so cluster 1 is always the least favourable context and
    the labels do not depend on k-means' arbitrary numbering.

    Parameters
    ----------
    k : int
        Number of clusters.
    n_init : int
        k-means restarts; the best (lowest inertia) is kept.
    seed : int
        Random state of k-means (from params.yaml), for identical labels on re-runs.
    order_by : str
        Feature whose cluster means order the labels.

    Attributes
    ----------
    labels_ : ndarray of int, shape (n_schools,)
        Cluster 1..k of each school.
    centers_ : DataFrame, shape (k, n_features)
        Cluster centres in the features' original units, index 1..k.
    inertia_ : float
        Within-cluster sum of squares on the standardised features.
    silhouette_ : float
        Mean silhouette coefficient (-1..1; higher = better separated).
    """

    def __init__(self, k: int = 5, n_init: int = 50, seed: int = 0,
                 order_by: str = "social_index"):
        self.k, self.n_init, self.seed, self.order_by = int(k), int(n_init), int(seed), order_by

    def fit(self, X: pd.DataFrame) -> ContextClusters:
        if len(X) <= self.k:
            raise ValueError(f"k-means needs more schools ({len(X)}) than clusters ({self.k})")
        data = X.astype("float64")
        self.mean_, self.scale_ = data.mean(), data.std(ddof=0).replace(0.0, 1.0)
        z = ((data - self.mean_) / self.scale_).to_numpy()
        km = KMeans(n_clusters=self.k, n_init=self.n_init, random_state=self.seed).fit(z)
        raw_centers = pd.DataFrame(km.cluster_centers_, columns=X.columns)
        order = raw_centers[self.order_by].sort_values(kind="stable").index.to_numpy()
        relabel = {int(old): new for new, old in enumerate(order, start=1)}
        self.labels_ = np.array([relabel[int(lab)] for lab in km.labels_])
        centers = raw_centers.loc[order].reset_index(drop=True) * self.scale_ + self.mean_
        centers.index = pd.RangeIndex(1, self.k + 1, name="cluster")
        self.centers_ = centers
        self.inertia_ = float(km.inertia_)
        self.silhouette_ = float(silhouette_score(z, self.labels_)) if self.k > 1 else 0.0
        self._km, self._relabel = km, relabel
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        z = ((X.astype("float64") - self.mean_) / self.scale_).to_numpy()
        return np.array([self._relabel[int(lab)] for lab in self._km.predict(z)])


def context_features(schools: pd.DataFrame, index: pd.DataFrame,
                     features: Sequence[str]) -> pd.DataFrame:
    """Join the index onto schools and pick the clustering features.

    ``features`` name columns of the prepared schools table (e.g. ``log_enrollment``,
    ``urbanicity``, any ``share_*``) or ``social_index``.  Missing shares are imputed with
    the mean.  Rows without an index are dropped (they are in the index ledger).

    Returns
    -------
    DataFrame indexed like ``schools`` rows that have an index, with the feature columns.
    """
    merged = schools.merge(index, on=list(schema.SCHOOL_KEY), how="inner")
    unknown = [f for f in features if f not in merged.columns]
    if unknown:
        raise ValueError(f"unknown clustering features: {unknown}")
    X = merged[list(features)].astype("float64")
    X = X.fillna(X.mean())
    X.index = pd.MultiIndex.from_frame(merged[list(schema.SCHOOL_KEY)])
    return X
