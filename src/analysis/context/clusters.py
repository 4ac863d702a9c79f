"""Clusters of schools with similar context: the estimator :class:`ContextClusters`.

:class:`ContextClusters` (scikit-learn estimator pattern) clusters the encoded context
features (:mod:`analysis.context.features`) by k-means, a Gaussian mixture or Ward's
method, with k given or chosen (``k="auto"``), a criterion curve over k for the report,
labels numbered from the least to the most favourable context, a profile and a readable
name per cluster (:mod:`analysis.context.profiles`); its ``stability`` says how
reproducible the clusters are (:mod:`analysis.context.stability`).

More clusters than the schools (or their distinct context profiles) allow stop the run,
naming ``clusters.k``.  Every random step takes its seed from ``clusters.seed``, so a re-run
gives the same labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import pairwise_distances_argmin, silhouette_score
from sklearn.mixture import GaussianMixture

from analysis.context.features import (
    DEFAULT_CATEGORICAL,
    DEFAULT_NUMERIC,
    ContextEncoder,
    _check_features,
    _is_int,
    _none_if_nan,
    distinct_rows,
)
from analysis.context.profiles import cluster_names, cluster_profile
from analysis.context.stability import Stability, bootstrap_stability
from analysis.errors import SET_IN, InputError, Problem

METHODS = ("kmeans", "gmm", "ward")
_RULE = "clustering needs more schools than clusters and at least k distinct context profiles"
#: Restarts per k of the criterion curve when k is given (the curve only informs the report).
CURVE_N_INIT = 3
#: Gaussian mixture: diagonal covariances, with this variance added to each (see
#: :class:`ContextClusters`); the encoded features have unit variance, so this is 5% of it.
GMM_COVARIANCE = "diag"
GMM_REG_COVAR = 0.05


@dataclass
class _Fit:
    """One clustering of encoded features: raw labels 0..k-1 and how to assign new rows."""

    labels: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    bic: float = float("nan")


class ContextClusters:
    """Clusters of schools on mixed context features (k-means, Gaussian mixture or Ward).

    ``fit`` takes the feature frame of
    :func:`~analysis.context.features.context_features` and encodes it with
    :class:`ContextEncoder` (z-scores; scaled one-hot dummies), so each variable weighs the
    same.  Then, by ``method``:

    - ``"kmeans"``: :class:`sklearn.cluster.KMeans`, ``n_init`` restarts, the lowest
      inertia kept.
    - ``"gmm"``: :class:`sklearn.mixture.GaussianMixture` with **diagonal** covariances and
      ``reg_covar`` = :data:`GMM_REG_COVAR` (5% of a feature's variance).  The one-hot
      dummies of a categorical variable are linearly dependent and often constant within a
      cluster, so full covariances are singular there; diagonal ones, floored by
      ``reg_covar``, stay well defined, cost O(k p) parameters (BIC penalises less) and
      cannot reward a component for sitting on one dummy value with ever higher density.
    - ``"ward"``: :class:`sklearn.cluster.AgglomerativeClustering` (``linkage="ward"``) on a
      seeded random sample of at most ``ward_sample`` schools (Ward's method needs
      O(n^2) memory); the centroid of each sample cluster is computed and **every** school
      (sample included) is assigned to the nearest centroid, as is every new row in
      ``predict``.  With no more schools than ``ward_sample`` the sample is all of them.

    **Size.**  k-means and the Gaussian mixture are fitted on a seeded random sample of at
    most ``fit_sample`` schools (all of them in a region), and every school is then assigned
    to its nearest centre / most likely component; so are the bootstrap refits.  With a few
    features, a few thousand schools place the centres as well as forty thousand do, and the
    criterion curve and the stability cost the same at national size as in a large region
    (docs/benchmarks.md).

    **Choosing k.**  Every k in ``k_range`` that the data support (``2 <= k <= min(n - 1,
    d)``, d distinct context profiles) is evaluated into ``criterion_``.  With ``k="auto"``
    the k of the highest silhouette (kmeans, ward) or the lowest BIC (gmm) is chosen (ties:
    the smallest k), the curve's fits use all ``n_init`` restarts and the chosen one is the
    final model.  With k given the curve is for the report only and uses
    ``min(n_init, CURVE_N_INIT)`` restarts; its row for k is that of the final model.  The
    silhouette is always computed on one seeded random sample of at most
    ``silhouette_sample`` schools (the same for every k), never on all pairs of schools.

    **Labels.**  Clusters are numbered 1..k in increasing order of the mean ``order_by``
    (by default the social index) of their schools, so cluster 1 is the least favourable
    context and the labels do not depend on the algorithm's arbitrary numbering.  (A Gaussian
    component or Ward centroid that gets no school at all is numbered last, with
    ``n_schools`` 0.)

    More clusters than ``min(n - 1, d)`` stop ``fit`` with an
    :class:`~analysis.errors.InputError` naming ``clusters.k``, the number of schools (and
    their year, from an index level ``year``) and the largest k the data support; so does
    ``k="auto"`` when no k of ``k_range`` is supported.

    Parameters
    ----------
    method : {"kmeans", "gmm", "ward"}
    k : int or "auto"
        Number of clusters (>= 1), or ``"auto"`` to choose it in ``k_range``.
    k_range : (int, int)
        Smallest and largest k of the criterion curve (inclusive; 2 <= low <= high).
    n_init : int
        Restarts of k-means / the Gaussian mixture (the best is kept); not used by Ward.
    seed : int
        Random state of every random step (from params.yaml), for identical labels on
        re-runs.
    silhouette_sample : int
        Most schools in the silhouette's sample.
    ward_sample : int
        Most schools in Ward's sample.
    fit_sample : int
        Most schools k-means and the Gaussian mixture are fitted on (see **Size**).
    numeric, categorical : sequence of str
        Feature columns of ``X`` (other columns of ``X`` only describe the clusters in
        ``profile_``).
    order_by : str
        Numeric column of ``X`` whose cluster means order the labels.

    Attributes
    ----------
    k_ : int
        The number of clusters (chosen, with ``k="auto"``).
    labels_ : ndarray of int, shape (n_schools,)
        Cluster 1..k of each school.
    silhouette_ : float or None
        Mean silhouette coefficient (-1..1; higher = better separated) on the sample;
        ``None`` where undefined (``k = 1``).
    inertia_ : float
        Within-cluster sum of squares of the encoded features (any method).
    criterion_ : DataFrame, one row per evaluated k
        ``k``, ``silhouette`` (sampled), ``bic`` (gmm; else NaN) and ``inertia`` (kmeans,
        ward; else NaN); no rows when the data support no k >= 2.
    profile_ : DataFrame, index 1..k (``cluster``)
        See :func:`cluster_profile`.
    centers_ : DataFrame, shape (k, n_numeric)
        Cluster means of the numeric features in their original units.
    names_ : DataFrame, index 1..k, columns ``ru`` and ``en``
        Readable names (:func:`cluster_names`).
    encoder_ : ContextEncoder
        The fitted encoding.
    feature_names_ : list of str
        Encoded columns (``encoder_.feature_names_``).
    """

    def __init__(self, method: str = "kmeans", k: int | str = 5,
                 k_range: tuple[int, int] = (2, 10), n_init: int = 10, seed: int = 0,
                 silhouette_sample: int = 2000, ward_sample: int = 3000,
                 numeric: Sequence[str] = DEFAULT_NUMERIC,
                 categorical: Sequence[str] = DEFAULT_CATEGORICAL,
                 order_by: str = "social_index", fit_sample: int = 5000):
        self.method, self.k, self.k_range = method, k, k_range
        self.n_init, self.seed = n_init, seed
        self.silhouette_sample, self.ward_sample = silhouette_sample, ward_sample
        self.fit_sample = fit_sample
        self.numeric, self.categorical, self.order_by = numeric, categorical, order_by

    # --- fitting --------------------------------------------------------------------------

    def fit(self, X: pd.DataFrame) -> ContextClusters:
        """Cluster the rows of ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n_schools, n_columns)
            Context features in their own units, no missing numeric values (see
            :func:`~analysis.context.features.context_features`), including
            ``order_by``.

        Raises
        ------
        InputError
            A parameter is invalid (``clusters.method``, ``clusters.k``,
            ``clusters.k_range``, ``clusters.n_init``, ...), a feature is not in ``X``, or
            ``k`` is more than the data support (see the class docstring).
        """
        self._check_params()
        _check_features(X, self.numeric, self.categorical, "the context features")
        if self.order_by not in X.columns or not pd.api.types.is_numeric_dtype(X[self.order_by]):
            raise InputError(Problem(
                file="params.yaml", column="clusters.order_by", value=str(self.order_by),
                expected=f"a numeric column of the context features ({', '.join(X.columns)}); "
                         f"set clusters.order_by in {SET_IN}"))
        self.encoder_ = ContextEncoder(self.numeric, self.categorical).fit(X)
        self.feature_names_ = self.encoder_.feature_names_
        z = self.encoder_.transform(X)
        n, distinct = len(z), distinct_rows(z)
        k_max = min(n - 1, distinct)
        low, high = (int(v) for v in self.k_range)
        ks = [k for k in range(low, high + 1) if 2 <= k <= k_max]
        auto = self.k == "auto"
        year = (_single_year(X.index.get_level_values("year"))
                if "year" in X.index.names else None)
        if auto and not ks:
            raise InputError(self._too_few(n, distinct, year))
        if not auto and not 1 <= int(self.k) <= k_max:
            raise InputError(self._too_many(n, distinct, year))
        sample = sample_rows(n, self.silhouette_sample, self.seed)
        n_init = self.n_init if auto else min(self.n_init, CURVE_N_INIT)
        fits = {k: self._fit_core(z, k, n_init, self.seed) for k in ks}
        rows = {k: _evaluate(z, f, sample) for k, f in fits.items()}
        if auto:
            k = _choose(rows, "bic" if self.method == "gmm" else "silhouette")
        else:
            k = int(self.k)
            fits[k] = self._fit_core(z, k, self.n_init, self.seed)
            rows[k] = _evaluate(z, fits[k], sample)
        curve = pd.DataFrame([{"k": kk, **rows[kk]} for kk in sorted(rows)],
                             columns=["k", "silhouette", "bic", "inertia"])
        if self.method != "gmm":
            curve["bic"] = np.nan
        else:
            curve["inertia"] = np.nan
        self.criterion_ = curve.astype({"k": "int64", "silhouette": "float64",
                                        "bic": "float64", "inertia": "float64"})
        fit = fits[k]
        self.k_, self._fit = k, fit
        self._relabel = _order(fit.labels, X[self.order_by].to_numpy(dtype="float64"), k)
        self.labels_ = self._relabel[fit.labels]
        self.silhouette_ = _none_if_nan(rows[k]["silhouette"])
        self.inertia_ = _wss(z, fit.labels)
        self.profile_ = cluster_profile(X, self.labels_, k)
        self.centers_ = self.profile_[list(self.numeric)]
        self.names_ = pd.DataFrame({lang: cluster_names(self.profile_, lang)
                                    for lang in ("ru", "en")})
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster 1..k of each row of ``X`` (the feature columns of ``fit``); shape (n,)."""
        return self._relabel[self._fit.predict(self.encoder_.transform(X))]

    def stability(self, X: pd.DataFrame, n_boot: int, seed: int | None = None
                  ) -> Stability | None:
        """:func:`bootstrap_stability` of this model on its training frame ``X`` (seed:
        ``seed``, by default the model's)."""
        return bootstrap_stability(self, X, n_boot, self.seed if seed is None else seed)

    def _fit_core(self, z: np.ndarray, k: int, n_init: int, seed: int) -> _Fit:
        """Fit the method with ``k`` clusters on encoded ``z`` (n, p); k-means and the
        mixture on at most ``fit_sample`` rows of it, then every row is assigned."""
        if self.method in ("kmeans", "gmm"):
            rows = sample_rows(len(z), max(int(self.fit_sample), k), seed)
            sub = z if len(rows) == len(z) else z[rows]
        if self.method == "kmeans":
            km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(sub)
            labels = km.labels_ if sub is z else km.predict(z)
            return _Fit(labels.astype("int64"), km.predict)
        if self.method == "gmm":
            gm = GaussianMixture(n_components=k, covariance_type=GMM_COVARIANCE,
                                 reg_covar=GMM_REG_COVAR, n_init=n_init,
                                 random_state=seed).fit(sub)
            return _Fit(gm.predict(z).astype("int64"), gm.predict, float(gm.bic(z)))
        rows = sample_rows(len(z), self.ward_sample, seed)
        sub = z[rows]
        sub_labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(sub)
        centroids = np.vstack([sub[sub_labels == c].mean(axis=0) for c in range(k)])

        def nearest(x: np.ndarray) -> np.ndarray:
            return pairwise_distances_argmin(x, centroids).astype("int64")

        return _Fit(nearest(z), nearest)

    # --- parameters and messages ----------------------------------------------------------

    def _check_params(self) -> None:
        problems = []

        def bad(key: str, value: Any, expected: str) -> None:
            problems.append(Problem(file="params.yaml", column=f"clusters.{key}",
                                    value=str(value),
                                    expected=f"{expected}; set clusters.{key} in {SET_IN}"))

        if self.method not in METHODS:
            bad("method", self.method, f"one of {', '.join(METHODS)}")
        if not (self.k == "auto" or (_is_int(self.k) and int(self.k) >= 1)):
            bad("k", self.k, "a number of clusters (1 or more) or auto")
        kr = self.k_range
        if not (isinstance(kr, Sequence) and len(kr) == 2 and all(_is_int(v) for v in kr)
                and 2 <= int(kr[0]) <= int(kr[1])):
            bad("k_range", kr, "two whole numbers [low, high] with 2 <= low <= high")
        for key, least in (("n_init", 1), ("silhouette_sample", 3), ("ward_sample", 3),
                           ("fit_sample", 3)):
            value = getattr(self, key)
            if not (_is_int(value) and int(value) >= least):
                bad(key, value, f"a whole number of at least {least}")
        if problems:
            raise InputError(problems)

    def _schools(self, n: int, distinct: int, year: int | None) -> str:
        schools = f"{n} school{'s' if n != 1 else ''} with a social index"
        if year is not None:
            schools += f" in {year}"
        if distinct < n:
            schools += f" but only {distinct} distinct context profiles"
        return schools

    def _too_many(self, n: int, distinct: int, year: int | None) -> Problem:
        k_max = min(n - 1, distinct)
        schools = self._schools(n, distinct, year)
        if k_max >= 1:
            expected = (f"at most {k_max} clusters for these data: there are {schools}, and "
                        f"{_RULE}")
        else:
            expected = f"at least 2 schools to cluster: there are {schools}, and {_RULE}"
        return Problem(file="params.yaml", column="clusters.k", value=str(self.k),
                       expected=f"{expected}; set clusters.k in {SET_IN}")

    def _too_few(self, n: int, distinct: int, year: int | None) -> Problem:
        low, high = self.k_range
        k_max = min(n - 1, distinct)
        fix = (f"set clusters.k to at most {k_max}" if k_max >= 1
               else "cluster at least 2 schools")
        return Problem(
            file="params.yaml", column="clusters.k", value=str(self.k),
            expected=f"data that support some k in clusters.k_range {low}..{high}: there are "
                     f"{self._schools(n, distinct, year)} (at most {max(k_max, 0)} clusters), "
                     f"and {_RULE}; {fix}, or widen clusters.k_range, in {SET_IN}")


def _single_year(years: pd.Index) -> int | None:
    """The one year among ``years``, if they hold exactly one."""
    found = pd.unique(pd.Series(np.asarray(years)).dropna())
    return int(found[0]) if len(found) == 1 else None


def _evaluate(z: np.ndarray, fit: _Fit, sample: np.ndarray) -> dict[str, float]:
    sil = silhouette(z[sample], fit.labels[sample])
    return {"silhouette": np.nan if sil is None else sil, "bic": fit.bic,
            "inertia": _wss(z, fit.labels)}


def _choose(rows: dict[int, dict[str, float]], criterion: str) -> int:
    """k of the best criterion (highest silhouette / lowest BIC); ties and all-undefined:
    the smallest k."""
    values = pd.Series({k: r[criterion] for k, r in sorted(rows.items())}, dtype="float64")
    if values.isna().all():
        return int(values.index[0])
    return int(values.idxmin() if criterion == "bic" else values.idxmax())


def _order(raw: np.ndarray, by: np.ndarray, k: int) -> np.ndarray:
    """Map raw labels 0..k-1 to 1..k by increasing mean ``by`` (empty clusters last)."""
    means = pd.Series(by).groupby(raw).mean().reindex(range(k))
    order = means.sort_values(kind="stable", na_position="last").index.to_numpy()
    relabel = np.empty(k, dtype="int64")
    relabel[order] = np.arange(1, k + 1)
    return relabel


def _wss(z: np.ndarray, labels: np.ndarray) -> float:
    """Within-cluster sum of squares of ``z`` (n, p) around the clusters' means."""
    total = 0.0
    for c in np.unique(labels):
        part = z[labels == c]
        total += float(((part - part.mean(axis=0)) ** 2).sum())
    return total


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted row numbers of a seeded random sample of ``min(n, size)`` of ``n`` rows
    (all rows, in order, when ``n <= size``)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def silhouette(z: np.ndarray, labels: np.ndarray, sample_size: int | None = None,
               seed: int = 0) -> float | None:
    """Mean silhouette coefficient (-1..1) of ``labels`` on ``z`` (shape (n, p)), on a
    seeded random sample of ``sample_size`` rows if given (:func:`sample_rows`); ``None``
    where it is undefined (fewer than 2 clusters, or a cluster per point)."""
    if sample_size is not None:
        rows = sample_rows(len(z), sample_size, seed)
        z, labels = z[rows], labels[rows]
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(z) - 1:
        return None
    value = float(silhouette_score(z, labels))
    return value if np.isfinite(value) else None
