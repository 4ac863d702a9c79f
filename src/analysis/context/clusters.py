"""Clusters of schools with similar context (k-means on standardised features).

:class:`ContextClusters` follows the scikit-learn estimator pattern; clusters are
numbered from the least to the most favourable context.  More clusters than the schools
(or their distinct context profiles) allow stop the run, naming ``clusters.k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from analysis.context.index import SET_IN, _single_year
from analysis.errors import InputError, Problem
from analysis.ingest import schema


class ContextClusters:
    """k-means clusters of schools on standardised context features.

    Features are standardised (z-scores, ddof=0) before k-means, so each weighs the same; a
    constant feature (SD 0) is divided by 1 instead, so it is 0 for every school and has no
    effect.  Clusters are numbered 1..k in increasing order of their mean ``order_by`` feature
    (by default the social index), so cluster 1 is always the least favourable context and
    the labels do not depend on k-means' arbitrary numbering.

    k-means needs more schools than clusters and at least ``k`` distinct context profiles
    (rows of standardised features); otherwise ``fit`` raises
    :class:`~analysis.errors.InputError` naming ``clusters.k``, the number of schools (and
    their year, from an index level ``year``) and the largest k the data supports.

    Parameters
    ----------
    k : int
        Number of clusters (>= 1).
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
    silhouette_ : float or None
        Mean silhouette coefficient (-1..1; higher = better separated); ``None`` when it is
        undefined (``k = 1``).
    """

    def __init__(self, k: int = 5, n_init: int = 50, seed: int = 0,
                 order_by: str = "social_index"):
        self.k, self.n_init, self.seed, self.order_by = int(k), int(n_init), int(seed), order_by

    def fit(self, X: pd.DataFrame) -> ContextClusters:
        """Cluster the rows of ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n_schools, n_features)
            Context features in their own units, no missing values (see
            :func:`context_features`), including ``order_by``.

        Raises
        ------
        InputError
            ``k`` is below 1, not below the number of schools, or above the number of
            distinct context profiles.
        """
        data = X.astype("float64")
        self.mean_, self.scale_ = data.mean(), data.std(ddof=0).replace(0.0, 1.0)
        z = ((data - self.mean_) / self.scale_).to_numpy()
        n, distinct = len(X), distinct_rows(z)
        if not 1 <= self.k <= min(n - 1, distinct):
            year = (_single_year(X.index.get_level_values("year"))
                    if "year" in X.index.names else None)
            raise InputError(self._too_many(n, distinct, year))
        km = KMeans(n_clusters=self.k, n_init=self.n_init, random_state=self.seed).fit(z)
        raw_centers = pd.DataFrame(km.cluster_centers_, columns=X.columns)
        order = raw_centers[self.order_by].sort_values(kind="stable").index.to_numpy()
        relabel = {int(old): new for new, old in enumerate(order, start=1)}
        self.labels_ = np.array([relabel[int(lab)] for lab in km.labels_])
        centers = raw_centers.loc[order].reset_index(drop=True) * self.scale_ + self.mean_
        centers.index = pd.RangeIndex(1, self.k + 1, name="cluster")
        self.centers_ = centers
        self.inertia_ = float(km.inertia_)
        self.silhouette_ = silhouette(z, self.labels_)
        self._km, self._relabel = km, relabel
        return self

    def _too_many(self, n: int, distinct: int, year: int | None) -> Problem:
        k_max = min(n - 1, distinct)
        schools = f"{n} school{'s' if n != 1 else ''} with a social index"
        if year is not None:
            schools += f" in {year}"
        if distinct < n:
            schools += f" but only {distinct} distinct context profiles"
        rule = ("k-means needs more schools than clusters and at least k distinct context "
                "profiles")
        if k_max >= 1:
            expected = (f"at most {k_max} clusters for these data: there are {schools}, and "
                        f"{rule}")
        else:
            expected = f"at least 2 schools to cluster: there are {schools}, and {rule}"
        return Problem(file="params.yaml", column="clusters.k", value=str(self.k),
                       expected=f"{expected}; set clusters.k in {SET_IN}")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster 1..k of each row of ``X`` (same feature columns as in ``fit``)."""
        z = ((X.astype("float64") - self.mean_) / self.scale_).to_numpy()
        return np.array([self._relabel[int(lab)] for lab in self._km.predict(z)])


def distinct_rows(z: np.ndarray) -> int:
    """Number of distinct rows of ``z`` (shape (n, p)), equal up to rounding noise: the most
    clusters k-means can form."""
    if len(z) == 0:
        return 0
    scale = max(1.0, float(np.abs(z).max()))
    return int(len(np.unique(np.round(z / scale, 10), axis=0)))


def silhouette(z: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean silhouette coefficient (-1..1) of ``labels`` on ``z`` (shape (n, p)); ``None``
    where it is undefined (fewer than 2 clusters, or a cluster per point)."""
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(z) - 1:
        return None
    value = float(silhouette_score(z, labels))
    return value if np.isfinite(value) else None


def context_features(schools: pd.DataFrame, index: pd.DataFrame,
                     features: Sequence[str]) -> pd.DataFrame:
    """Join the index onto schools and pick the clustering features.

    ``features`` name columns of the prepared schools table (e.g. ``log_enrollment``,
    ``urbanicity``, any ``share_*``) or ``social_index``.  Missing shares are imputed with
    the mean (a feature with no values at all becomes a constant 0, which does not affect
    the clusters).  Rows without an index are dropped (they are in the index ledger).

    Returns
    -------
    DataFrame indexed like ``schools`` rows that have an index, with the feature columns.
    """
    merged = schools.merge(index, on=list(schema.SCHOOL_KEY), how="inner")
    unknown = [f for f in features if f not in merged.columns]
    if unknown:
        raise ValueError(f"unknown clustering features: {unknown}")
    X = merged[list(features)].astype("float64")
    X = X.fillna(X.mean()).fillna(0.0)
    X.index = pd.MultiIndex.from_frame(merged[list(schema.SCHOOL_KEY)])
    return X
