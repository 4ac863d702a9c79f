"""How reproducible fitted context clusters are under resampling of the schools.

:func:`bootstrap_stability` refits a fitted model (a
:class:`~analysis.context.clusters.ContextClusters`, which calls it from its ``stability``
method) on bootstrap resamples of the schools and compares each refit with the model's
clusters: the adjusted Rand index of the two partitions and Hennig's per-cluster Jaccard
similarity, read by :data:`JACCARD_DISSOLVED` and :data:`JACCARD_STABLE`
(:class:`Stability`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from analysis.context.features import ContextEncoder, _is_int, _none_if_nan, distinct_rows
from analysis.errors import SET_IN, InputError, Problem

#: Most restarts of each bootstrap refit (:func:`bootstrap_stability`).
BOOT_N_INIT = 3
#: Hennig's (2007) reading of a cluster's mean bootstrap Jaccard similarity: at most
#: ``JACCARD_DISSOLVED`` the cluster is not reproduced; ``JACCARD_STABLE`` and above it is.
JACCARD_DISSOLVED = 0.5
JACCARD_STABLE = 0.75


class FittedClusters(Protocol):
    """What :func:`bootstrap_stability` needs of a fitted model, as
    :class:`~analysis.context.clusters.ContextClusters` has it after ``fit``: the labels
    1..k, k, the restarts, the encoding, and ``_fit_core(z, k, n_init, seed)``, which refits
    the method on encoded rows and returns an object whose ``predict`` assigns any encoded
    row to a refitted cluster."""

    labels_: np.ndarray
    k_: int
    n_init: int
    encoder_: ContextEncoder

    def _fit_core(self, z: np.ndarray, k: int, n_init: int, seed: int) -> Any: ...


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


def bootstrap_stability(model: FittedClusters, X: pd.DataFrame, n_boot: int, seed: int
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
    model : FittedClusters
        A :class:`~analysis.context.clusters.ContextClusters` fitted on ``X``.
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
