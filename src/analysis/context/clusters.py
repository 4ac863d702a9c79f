"""Clusters of schools with similar context, on mixed numeric and categorical features.

- :func:`context_features` joins the social index onto the schools and picks the features:
  numeric ones (the index, ``log_enrollment``, any ``share_*``) and categorical ones
  (``settlement_type``, ``school_type``).
- :class:`ContextEncoder` turns them into one numeric matrix in which every variable
  carries the same total variance (z-scores; scaled, centred one-hot dummies).
- :class:`ContextClusters` (scikit-learn estimator pattern) clusters it by k-means, a
  Gaussian mixture or Ward's method, with k given or chosen (``k="auto"``), a criterion curve
  over k for the report, labels numbered from the least to the most favourable context, a
  profile and a readable name per cluster.
- :func:`bootstrap_stability` says how reproducible the clusters are (ARI, Hennig's
  per-cluster Jaccard).

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
from sklearn.metrics import adjusted_rand_score, pairwise_distances_argmin, silhouette_score
from sklearn.mixture import GaussianMixture

from analysis.errors import SET_IN, InputError, Problem
from analysis.i18n import t
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
#: Known levels of the categorical variables (profiles show each of them, even at 0%).
KNOWN_LEVELS: dict[str, tuple[str, ...]] = {
    "settlement_type": schema.SETTLEMENT_TYPES, "school_type": schema.SCHOOL_TYPES,
}

METHODS = ("kmeans", "gmm", "ward")
_RULE = "clustering needs more schools than clusters and at least k distinct context profiles"
#: Restarts per k of the criterion curve when k is given (the curve only informs the report).
CURVE_N_INIT = 3
#: Most restarts of each bootstrap refit (:func:`bootstrap_stability`).
BOOT_N_INIT = 3
#: Gaussian mixture: diagonal covariances, with this variance added to each (see
#: :class:`ContextClusters`); the encoded features have unit variance, so this is 5% of it.
GMM_COVARIANCE = "diag"
GMM_REG_COVAR = 0.05
#: Hennig's (2007) reading of a cluster's mean bootstrap Jaccard similarity: at most
#: ``JACCARD_DISSOLVED`` the cluster is not reproduced; ``JACCARD_STABLE`` and above it is.
JACCARD_DISSOLVED = 0.5
JACCARD_STABLE = 0.75

# --- naming rules (cluster_names) -----------------------------------------------------------
#: A settlement type that holds at least this share of a cluster names it.
SETTLEMENT_DOMINANT = 0.6
#: A group of school types that holds at least this share of a cluster names it.
TYPE_DOMINANT = 0.5
#: Groups of school types that can name a cluster (in order of precedence on a tie).
TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "elite": ("gymnasium", "lyceum", "advanced"),
    "adapted": ("adapted",),
    "basic": ("basic",),
}
#: Median enrollment (students) below which a cluster is «малокомплектные», and from which
#: it is «крупные» (in between: «среднего размера»).  Russian rural schools without
#: parallel classes have well under 150 students; a typical urban school 500-1,000+.
SMALL_ENROLLMENT = 150
LARGE_ENROLLMENT = 800
#: Mean social index (z units, region mean 0, SD 1) below which well-being is «низкое» and
#: above which «высокое» (in between: «среднее»).
LOW_WELLBEING = -0.5
HIGH_WELLBEING = 0.5


# ---------------------------------------------------------------------------------------------
# Features and their encoding
# ---------------------------------------------------------------------------------------------

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
        in ``schools`` (for the cluster profiles and names; :class:`ContextClusters` does
        not cluster on them).  Rows without an index are dropped (they are in the index
        ledger).

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


# ---------------------------------------------------------------------------------------------
# The clustering
# ---------------------------------------------------------------------------------------------

@dataclass
class _Fit:
    """One clustering of encoded features: raw labels 0..k-1 and how to assign new rows."""

    labels: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    bic: float = float("nan")


class ContextClusters:
    """Clusters of schools on mixed context features (k-means, Gaussian mixture or Ward).

    ``fit`` takes the feature frame of :func:`context_features` and encodes it with
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
            :func:`context_features`), including ``order_by``.

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


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _single_year(years: pd.Index) -> int | None:
    """The one year among ``years``, if they hold exactly one."""
    found = pd.unique(pd.Series(np.asarray(years)).dropna())
    return int(found[0]) if len(found) == 1 else None


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


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


def distinct_rows(z: np.ndarray) -> int:
    """Number of distinct rows of ``z`` (shape (n, p)), equal up to rounding noise: the most
    clusters any method can form."""
    if len(z) == 0:
        return 0
    if z.shape[1] == 0:
        return 1
    scale = max(1.0, float(np.abs(z).max()))
    return len(np.unique(np.round(z / scale, 10), axis=0))


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


# ---------------------------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------------------------

@dataclass
class Stability:
    """Bootstrap stability of a clustering (:func:`bootstrap_stability`).

    Attributes
    ----------
    ari : float
        Mean adjusted Rand index (-0.5..1; 1 = identical partitions, about 0 = chance)
        between the full-data labels and each refit's labels of all schools.
    aris : ndarray, shape (n_boot,)
        The ARI of each resample (NaN where the resample could not support k clusters).
    jaccard : Series, index 1..k (``cluster``)
        Per cluster, the mean over resamples of its best Jaccard similarity (0..1) with any
        cluster of the refit (Hennig's clusterboot): at most :data:`JACCARD_DISSOLVED` the
        cluster is not reproduced, :data:`JACCARD_STABLE` and above it is stable.
    n_boot, seed : int
    """

    ari: float
    aris: np.ndarray
    jaccard: pd.Series
    n_boot: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None)."""
        return {"ari": _none_if_nan(self.ari), "aris": [_none_if_nan(a) for a in self.aris],
                "jaccard": {str(c): _none_if_nan(v) for c, v in self.jaccard.items()},
                "n_boot": self.n_boot, "seed": self.seed}


def bootstrap_stability(model: ContextClusters, X: pd.DataFrame, n_boot: int, seed: int
                        ) -> Stability | None:
    """How reproducible a fitted model's clusters are under resampling of the schools.

    For each of ``n_boot`` resamples (n schools drawn with replacement), the model's method is
    refitted with the same k (``model.k_``) on the resample's encoded features -- the encoding
    is the full-data one (``model.encoder_``), and refits use ``min(n_init, BOOT_N_INIT)``
    restarts for speed -- and every school of ``X`` is assigned by the refit.  Compared with
    ``model.labels_``:

    - the adjusted Rand index of the two partitions (``aris``; their mean ``ari``);
    - for each reference cluster, the best Jaccard similarity ``|A ∩ B| / |A ∪ B|`` with any
      refit cluster B; ``jaccard`` is its mean over resamples (Hennig 2007, *clusterboot*).

    A resample with fewer distinct profiles than k (tiny data) counts as NaN and is left out
    of the means.

    Parameters
    ----------
    model : ContextClusters
        Fitted on ``X``.
    X : DataFrame, shape (n_schools, n_columns)
        The frame ``model`` was fitted on.
    n_boot : int
        Number of resamples; 0 -> no stability (``None``).
    seed : int
        Seed of the resampling and of the refits (same seed, same result).

    Returns
    -------
    Stability or None
    """
    if not _is_int(n_boot) or n_boot < 0:
        raise InputError(Problem(file="params.yaml", column="clusters.n_boot", value=str(n_boot),
                                 expected=f"a whole number of resamples (0 = none); set "
                                          f"clusters.n_boot in {SET_IN}"))
    if n_boot == 0:
        return None
    if len(X) != len(model.labels_):
        raise ValueError("X must be the frame the model was fitted on")
    z = model.encoder_.transform(X)
    ref, k, n = model.labels_, model.k_, len(X)
    n_init = min(int(model.n_init), BOOT_N_INIT)
    rng = np.random.default_rng(seed)
    aris = np.full(n_boot, np.nan)
    jac = np.full((n_boot, k), np.nan)
    for b in range(n_boot):
        rows = rng.integers(0, n, size=n)
        fit_seed = int(rng.integers(0, 2**31 - 1))
        zb = z[rows]
        if distinct_rows(zb) < k or n < 2:
            continue
        labels = model._fit_core(zb, k, n_init, fit_seed).predict(z)
        aris[b] = adjusted_rand_score(ref, labels)
        jac[b] = best_jaccard(ref, labels, k)
    with np.errstate(all="ignore"):
        ari = float(np.nanmean(aris)) if np.isfinite(aris).any() else float("nan")
        per = [float(np.nanmean(jac[:, c])) if np.isfinite(jac[:, c]).any() else float("nan")
               for c in range(k)]
    jaccard = pd.Series(per, index=pd.RangeIndex(1, k + 1, name="cluster"), name="jaccard")
    return Stability(ari, aris, jaccard, int(n_boot), int(seed))


def best_jaccard(reference: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """For each reference cluster 1..k, its highest Jaccard similarity with a cluster of
    ``other`` (any labels); shape (k,), NaN for an empty reference cluster."""
    _, inv = np.unique(other, return_inverse=True)
    table = np.zeros((k, inv.max() + 1 if len(inv) else 0))
    np.add.at(table, (reference - 1, inv), 1.0)
    size_a, size_b = table.sum(axis=1), table.sum(axis=0)
    union = size_a[:, None] + size_b[None, :] - table
    with np.errstate(invalid="ignore", divide="ignore"):
        best = (table / union).max(axis=1) if table.shape[1] else np.zeros(k)
    return np.where(size_a > 0, best, np.nan)


# ---------------------------------------------------------------------------------------------
# Profiles and names
# ---------------------------------------------------------------------------------------------

def cluster_profile(X: pd.DataFrame, labels: np.ndarray, k: int) -> pd.DataFrame:
    """What the schools of each cluster are like.

    Parameters
    ----------
    X : DataFrame, shape (n_schools, n_columns)
        Feature frame (:func:`context_features`): numeric and categorical (string) columns.
    labels : ndarray of int, shape (n_schools,)
        Clusters 1..k.
    k : int

    Returns
    -------
    DataFrame, index 1..k (``cluster``)
        ``n_schools``; the mean of each numeric column (original units: ``social_index`` in
        index SDs, ``log_enrollment`` in log(students + 1), shares on 0..1);
        ``median_enrollment`` (students; the median of ``exp(log_enrollment) - 1``) when
        ``log_enrollment`` is a column; for each categorical column and each of its levels
        (the known ones of :data:`KNOWN_LEVELS`, then any other seen) the share of the
        cluster's schools, ``"<column>=<level>"`` (0..1).  Statistics of an empty cluster are
        NaN.
    """
    idx = pd.RangeIndex(1, k + 1, name="cluster")
    groups = pd.Series(labels, index=X.index)
    out = pd.DataFrame({"n_schools": groups.value_counts().reindex(idx, fill_value=0)},
                       index=idx).astype("int64")
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    if numeric:
        means = X[numeric].astype("float64").groupby(labels).mean().reindex(idx)
        out = out.join(means)
    if "log_enrollment" in X.columns:
        students = np.expm1(X["log_enrollment"].astype("float64"))
        out["median_enrollment"] = students.groupby(labels).median().reindex(idx)
    for col in (c for c in X.columns if c not in numeric):
        values = pd.Series(_levels(X[col]), index=X.index)
        seen = sorted(set(values))
        known = KNOWN_LEVELS.get(col, ())
        levels = [*known, *(lev for lev in seen if lev not in known)]
        shares = pd.crosstab(labels, values, normalize="index").reindex(
            index=idx, columns=levels).fillna(0.0)
        shares.loc[out["n_schools"] == 0] = np.nan
        shares.columns = [f"{col}={lev}" for lev in levels]
        out = out.join(shares)
    return out


def cluster_names(profile: pd.DataFrame, lang: str = "ru") -> pd.Series:
    """Readable, unique names of clusters from their profile (:func:`cluster_profile`).

    A name joins (labels ``cluster_name.*`` of ``labels.yaml``, via :func:`analysis.i18n.t`):

    - the **settlement**: the settlement type holding at least :data:`SETTLEMENT_DOMINANT`
      (60%) of the schools («городские», «поселковые», «сельские»), else «смешанная
      местность»;
    - the **size**, from the median enrollment: below :data:`SMALL_ENROLLMENT` (150)
      «малокомплектные», from :data:`LARGE_ENROLLMENT` (800) «крупные», else «среднего
      размера»;
    - the **type**, if a group of :data:`TYPE_GROUPS` holds at least :data:`TYPE_DOMINANT`
      (50%): gymnasium + lyceum + advanced «гимназии, лицеи, УИОП», adapted «АООП», basic
      «ООШ» (in brackets after the size);
    - the **well-being**, from the mean social index: below :data:`LOW_WELLBEING` (-0.5)
      «низкое», above :data:`HIGH_WELLBEING` (+0.5) «высокое», else «среднее благополучие».

    e.g. «сельские малокомплектные (ООШ), низкое благополучие».  A part whose columns are not
    in the profile is left out (a cluster with nothing to say is «кластер k»).  Names that
    come out equal get the cluster's mean social index added («... (индекс -0.31)»), and if
    still equal a number «(1)», «(2)» in cluster order.

    Parameters
    ----------
    profile : DataFrame, index = clusters
    lang : {"ru", "en"}

    Returns
    -------
    Series of str, index like ``profile``, name ``"name"``
    """
    names = [_name(row, int(c), lang) for c, row in profile.iterrows()]
    names = _distinct(names, profile, lang)
    return pd.Series(names, index=profile.index, name="name")


def _name(row: pd.Series, cluster: int, lang: str) -> str:
    place, size, kind, wellbeing = _place(row), _size(row), _kind(row), _wellbeing(row)
    label = {key: t(f"cluster_name.{key}.{value}", lang) if value else ""
             for key, value in (("place", place if place != "mixed" else None),
                                ("size", size), ("kind", kind), ("wellbeing", wellbeing))}
    head = " ".join(t("cluster_name.head", lang, place=label["place"],
                      size=label["size"]).split())
    if label["kind"]:
        head = (t("cluster_name.with_kind", lang, head=head, kind=label["kind"]) if head
                else label["kind"])
    parts = [head, t("cluster_name.place.mixed", lang) if place == "mixed" else "",
             label["wellbeing"]]
    name = ", ".join(p for p in parts if p)
    return name or t("cluster_name.fallback", lang, k=cluster)


def _shares(row: pd.Series, column: str) -> dict[str, float]:
    prefix = f"{column}="
    return {c[len(prefix):]: float(row[c]) for c in row.index
            if c.startswith(prefix) and pd.notna(row[c])}


def _place(row: pd.Series) -> str | None:
    shares = _shares(row, "settlement_type")
    if not shares:
        return None
    known = {lev: shares.get(lev, 0.0) for lev in schema.SETTLEMENT_TYPES}
    best = max(known, key=lambda lev: known[lev])  # first of SETTLEMENT_TYPES on a tie
    return best if known[best] >= SETTLEMENT_DOMINANT else "mixed"


def _size(row: pd.Series) -> str | None:
    value = row.get("median_enrollment", np.nan)
    if pd.isna(value):
        return None
    if value < SMALL_ENROLLMENT:
        return "small"
    return "large" if value >= LARGE_ENROLLMENT else "medium"


def _kind(row: pd.Series) -> str | None:
    shares = _shares(row, "school_type")
    if not shares:
        return None
    groups = {g: sum(shares.get(t_, 0.0) for t_ in types) for g, types in TYPE_GROUPS.items()}
    best = max(groups, key=lambda g: groups[g])
    return best if groups[best] >= TYPE_DOMINANT else None


def _wellbeing(row: pd.Series) -> str | None:
    value = row.get("social_index", np.nan)
    if pd.isna(value):
        return None
    if value < LOW_WELLBEING:
        return "low"
    return "high" if value > HIGH_WELLBEING else "medium"


def _distinct(names: list[str], profile: pd.DataFrame, lang: str) -> list[str]:
    """Make equal names distinct: add the mean social index, then a number in order."""
    out = list(names)
    if "social_index" in profile.columns:
        counts = pd.Series(out).value_counts()
        for i, (name, value) in enumerate(zip(out, profile["social_index"], strict=True)):
            if counts[name] > 1 and pd.notna(value):
                out[i] = t("cluster_name.distinct", lang, name=name, value=float(value))
    counts = pd.Series(out).value_counts()
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        if counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            out[i] = t("cluster_name.numbered", lang, name=name, i=seen[name])
    return out
